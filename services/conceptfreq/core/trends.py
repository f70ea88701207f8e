"""Scaling trends of zero-shot accuracy against concept frequency (pure: no I/O).

Every fit takes one `TrendData` (per-concept frequency and accuracy in percent) and is selected by
name from `FITS`:
- `binned`: the paper's estimator, exactly (12 equal-width bins of ln(count), Pearson over the inner
  bin means). It is a correlation summary, so it does not predict.
- `per-concept`: OLS of accuracy on log10(frequency) over the concepts themselves, with a seeded
  bootstrap interval of the slope (resampling concepts) and a robust (Huber or Theil-Sen) variant.
- `logit`: OLS on the empirical-logit scale, so predictions and their intervals stay inside 0-100%.

Counts of 0 become 1 everywhere, as in the paper, so log10 frequency starts at 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import statsmodels.api as sm
from scipy import optimize, special, stats

from conceptfreq.errors import UserError

LN10 = math.log(10)
PAPER_BINS = 12
GAIN_POINTS = 10.0  # the exponential-data summary: frequency multiplier for +10 accuracy points
MIN_CONCEPTS = 3


class TrendError(UserError, ValueError):
    """Input a trend cannot be fitted on; the message says why and what to try."""


@dataclass(frozen=True)
class TrendData:
    """One accuracy (percent) and one frequency (samples) per concept; `groups` names the downstream set
    of each concept, `totals` its number of test images when known (it sharpens the logit fit)."""

    names: tuple[str, ...]
    frequency: np.ndarray
    accuracy: np.ndarray
    groups: tuple[str, ...] = ()
    totals: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "frequency", np.asarray(self.frequency, dtype=float))
        object.__setattr__(self, "accuracy", np.asarray(self.accuracy, dtype=float))
        n = len(self.names)
        if n == 0:
            raise TrendError("no concepts to fit: the selection has no concept with both a count and an accuracy "
                             "(check the dataset, model, prompts and count kind)")
        if self.frequency.shape != (n,) or self.accuracy.shape != (n,) or (self.groups and len(self.groups) != n):
            raise TrendError("names, frequencies, accuracies and groups must have one entry per concept")
        if not np.all(np.isfinite(self.frequency)) or np.any(self.frequency < 0):
            raise TrendError("frequencies must be finite counts >= 0")
        if not np.all(np.isfinite(self.accuracy)) or np.any((self.accuracy < 0) | (self.accuracy > 100)):
            raise TrendError("accuracies must be percentages between 0 and 100")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def log10_frequency(self) -> np.ndarray:
        return np.log10(np.maximum(self.frequency, 1.0))

    def require_spread(self, method: str) -> None:
        if len(self) < MIN_CONCEPTS:
            raise TrendError(f"{method} needs at least {MIN_CONCEPTS} concepts, got {len(self)}")
        if np.ptp(self.log10_frequency) == 0:
            raise TrendError(f"{method}: every concept has the same count ({int(self.frequency[0])}), "
                             "so there is no trend to fit")


# --- links: how accuracy maps to the scale the line is fitted on ------------------------------------

@dataclass(frozen=True)
class Link:
    name: str
    forward: Callable[[np.ndarray], np.ndarray]  # percent -> fitted scale
    inverse: Callable[[np.ndarray], np.ndarray]  # fitted scale -> percent


LINKS = {
    "identity": Link("identity", lambda p: np.asarray(p, dtype=float), lambda z: np.asarray(z, dtype=float)),
    "logit": Link("logit", lambda p: special.logit(np.asarray(p, dtype=float) / 100), lambda z: 100 * special.expit(z)),
}


@dataclass
class LinearPredictor:
    """A line on a link scale, with statsmodels' confidence (mean) and prediction (new concept) intervals."""

    result: object  # statsmodels RegressionResults
    link: Link

    @property
    def intercept(self) -> float:
        return float(self.result.params[0])

    @property
    def slope(self) -> float:
        return float(self.result.params[1])

    def predict(self, log10_frequency, level: float = 0.95) -> dict[str, np.ndarray]:
        """Percent accuracy at each log10 frequency: mean, its confidence band and the prediction interval."""
        x = np.atleast_1d(np.asarray(log10_frequency, dtype=float))
        frame = self.result.get_prediction(np.column_stack([np.ones_like(x), x])).summary_frame(alpha=1 - level)

        def back(column: str) -> np.ndarray:
            return np.clip(self.link.inverse(frame[column].to_numpy()), 0, 100)

        return {"mean": back("mean"), "mean_lower": back("mean_ci_lower"), "mean_upper": back("mean_ci_upper"),
                "lower": back("obs_ci_lower"), "upper": back("obs_ci_upper")}

    def residual(self, log10_frequency: float, accuracy: float, eps: float) -> float:
        """How far one concept sits from the line, on the link scale (used to adjust its data budget)."""
        observed = self.link.forward(np.clip(accuracy, eps, 100 - eps))
        return float(observed - (self.intercept + self.slope * log10_frequency))


@dataclass
class TrendFit:
    method: str
    n_concepts: int
    pearson: float
    p_value: float
    slope_per_decade: float
    slope_unit: str
    intercept: float
    slope_ci: tuple[float, float] | None = None
    r2: float | None = None
    spearman: float | None = None
    spearman_p: float | None = None
    details: dict = field(default_factory=dict)
    predictor: LinearPredictor | None = field(default=None, repr=False, compare=False)
    level: float = 0.95

    def to_json(self) -> dict:
        out = {"method": self.method, "pearson": self.pearson, "p_value": self.p_value, "n_concepts": self.n_concepts,
               "slope_per_decade": self.slope_per_decade, "slope_unit": self.slope_unit, "intercept": self.intercept,
               "slope_ci": list(self.slope_ci) if self.slope_ci else None, "confidence_level": self.level,
               "r2": self.r2, "spearman": self.spearman, "spearman_p": self.spearman_p}
        out.update(self.details)
        return jsonable(out)

    def require_predictor(self) -> LinearPredictor:
        if self.predictor is None:
            raise TrendError(f"the {self.method} fit summarises a correlation and does not predict: "
                             "use --method logit (bounded) or per-concept")
        return self.predictor


def jsonable(value):
    """Plain floats for JSON: numpy scalars become Python numbers, NaN and infinity become null."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def pow10(exponent: float) -> float:
    """10**x that saturates at infinity instead of raising OverflowError (a nearly flat trend)."""
    return 10.0 ** exponent if exponent < 300 else math.inf


def multiplier_for_gain(slope: float, gain: float = GAIN_POINTS) -> float:
    """How many times more data buys `gain` accuracy points on a line of `slope` points per decade."""
    return pow10(gain / slope) if slope > 0 else math.inf


def _exponential_summary(slope: float, ci: tuple[float, float] | None, gain: float = GAIN_POINTS) -> dict:
    # The multiplier falls as the slope rises, so the interval's ends swap; a slope interval that
    # reaches 0 means no finite amount of data is guaranteed to buy the gain.
    interval = [multiplier_for_gain(ci[1], gain), multiplier_for_gain(ci[0], gain)] if ci else None
    return {"gain_points": gain, "multiplier": multiplier_for_gain(slope, gain), "multiplier_ci": interval}


# --- the fits ---------------------------------------------------------------------------------------

def fit_binned(data: TrendData, *, n_bins: int = PAPER_BINS, **_) -> TrendFit:
    """The paper's estimator: Pearson between the inner bin edges (ln count) and the inner bin means."""
    data.require_spread("binned")
    if n_bins < 5:
        raise TrendError(f"binned needs at least 5 bins (3 inner bins to correlate), got {n_bins}")
    x = np.log(np.maximum(data.frequency, 1.0))
    edges = np.linspace(x.min(), x.max(), n_bins)
    assigned = np.digitize(x, edges, right=True)
    counts = np.bincount(assigned, minlength=n_bins)
    sums = np.bincount(assigned, weights=data.accuracy, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    inner = np.arange(1, n_bins - 1)
    used = inner[counts[inner] > 0]  # the paper's data fills every bin; sparse data may not
    if len(used) < 3:
        raise TrendError(f"binned: only {len(used)} of the {len(inner)} inner bins hold concepts, too few distinct "
                         "frequencies to correlate; use --method per-concept")
    bin_x, bin_y = edges[used], means[used]
    if np.ptp(bin_y) == 0:
        raise TrendError("binned: every bin has the same mean accuracy, so the correlation is undefined")
    pearson, p_value = stats.pearsonr(bin_x, bin_y)
    line = stats.linregress(bin_x / LN10, bin_y)
    bins = [{"edge_frequency": math.exp(e), "mean_accuracy": m if c else None, "n": int(c), "inner": bool(0 < i < n_bins - 1)}
            for i, (e, m, c) in enumerate(zip(edges, means, counts))]
    return TrendFit("binned", len(data), float(pearson), float(p_value), float(line.slope), "accuracy points per 10x",
                    float(line.intercept), r2=float(line.rvalue ** 2),
                    details={"bins": bins, "empty_inner_bins": int(len(inner) - len(used)),
                             "exponential": _exponential_summary(float(line.slope), None)})


def _slope(x, y, axis=-1):
    """OLS slope along `axis`, vectorized so the bootstrap resamples in batches."""
    xm = x - x.mean(axis=axis, keepdims=True)
    ym = y - y.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xm * ym).sum(axis=axis) / (xm * xm).sum(axis=axis)


def _huber(x, y, level):
    result = sm.RLM(y, sm.add_constant(x), M=sm.robust.norms.HuberT()).fit()
    low, high = result.conf_int(alpha=1 - level)[1]
    return float(result.params[1]), float(result.params[0]), (float(low), float(high))


def _theil_sen(x, y, level):
    # O(n^2) pairs: fine for the paper's few thousand concepts, slow beyond ~20k.
    result = stats.theilslopes(y, x, alpha=level)
    return float(result.slope), float(result.intercept), (float(result.low_slope), float(result.high_slope))


ROBUST = {"huber": _huber, "theil-sen": _theil_sen}


def fit_per_concept(data: TrendData, *, level: float = 0.95, n_boot: int = 1000, seed: int = 0,
                    robust: str = "huber", **_) -> TrendFit:
    """Accuracy points per 10x frequency over the concepts, with a percentile bootstrap over concepts."""
    data.require_spread("per-concept")
    if robust not in ROBUST:
        raise TrendError(f"unknown robust estimator {robust!r}: choose one of {', '.join(ROBUST)}")
    x, y = data.log10_frequency, data.accuracy
    ols = sm.OLS(y, sm.add_constant(x)).fit()
    slope = float(ols.params[1])
    ci = None
    if n_boot > 0:
        boot = stats.bootstrap((x, y), _slope, paired=True, vectorized=True, n_resamples=n_boot, batch=200,
                               confidence_level=level, method="percentile", rng=np.random.default_rng(seed))
        ci = (float(boot.confidence_interval.low), float(boot.confidence_interval.high))
    pearson, p_value = stats.pearsonr(x, y)
    spearman = stats.spearmanr(x, y)
    r_slope, r_intercept, r_ci = ROBUST[robust](x, y, level)
    details = {"bootstrap": {"resamples": n_boot, "seed": seed, "method": "percentile"},
               "ols_slope_p_value": float(ols.pvalues[1]),
               "robust": {"estimator": robust, "slope_per_decade": r_slope, "intercept": r_intercept, "slope_ci": list(r_ci)},
               "exponential": _exponential_summary(slope, ci)}
    return TrendFit("per-concept", len(data), float(pearson), float(p_value), slope, "accuracy points per 10x",
                    float(ols.params[0]), slope_ci=ci, r2=float(ols.rsquared), spearman=float(spearman.statistic),
                    spearman_p=float(spearman.pvalue), details=details,
                    predictor=LinearPredictor(ols, LINKS["identity"]), level=level)


def empirical_logit(data: TrendData, eps: float = 0.5) -> np.ndarray:
    """Logit of accuracy that stays finite at 0% and 100%: with test-set sizes, the +0.5 correction;
    without them, accuracies clipped to [eps, 100-eps] percent."""
    if data.totals is not None:
        correct = data.accuracy / 100 * data.totals
        return np.log((correct + 0.5) / (data.totals - correct + 0.5))
    return LINKS["logit"].forward(np.clip(data.accuracy, eps, 100 - eps))


def fit_logit(data: TrendData, *, level: float = 0.95, eps: float = 0.5, **_) -> TrendFit:
    """A line on the log-odds scale: the bounded model to predict with."""
    data.require_spread("logit")
    x, z = data.log10_frequency, empirical_logit(data, eps)
    if np.ptp(z) == 0:
        raise TrendError("logit: every concept has the same accuracy, so there is no trend to fit")
    ols = sm.OLS(z, sm.add_constant(x)).fit()
    pearson, p_value = stats.pearsonr(x, z)
    spearman = stats.spearmanr(x, data.accuracy)
    low, high = ols.conf_int(alpha=1 - level)[1]
    predictor = LinearPredictor(ols, LINKS["logit"])
    # The accuracy slope of a logistic curve depends on where you stand; report it at the median concept.
    median = float(np.median(x))
    at_median = float(predictor.predict(median, level)["mean"][0])
    points = float(ols.params[1]) * at_median * (100 - at_median) / 100
    details = {"eps_percent": eps if data.totals is None else None, "ols_slope_p_value": float(ols.pvalues[1]),
               "at_median_frequency": {"frequency": 10 ** median, "accuracy": at_median, "points_per_decade": points}}
    return TrendFit("logit", len(data), float(pearson), float(p_value), float(ols.params[1]), "log-odds per 10x",
                    float(ols.params[0]), slope_ci=(float(low), float(high)), r2=float(ols.rsquared),
                    spearman=float(spearman.statistic), spearman_p=float(spearman.pvalue), details=details,
                    predictor=predictor, level=level)


FITS: dict[str, Callable[..., TrendFit]] = {"binned": fit_binned, "per-concept": fit_per_concept, "logit": fit_logit}


def fit(data: TrendData, method: str = "binned", **options) -> TrendFit:
    try:
        fitter = FITS[method]
    except KeyError:
        raise TrendError(f"unknown fit method {method!r}: choose one of {', '.join(FITS)}") from None
    return fitter(data, **options)


# --- predictions and data budgets -------------------------------------------------------------------

def predict(trend: TrendFit, frequencies: Sequence[float], level: float | None = None) -> list[dict]:
    predictor = trend.require_predictor()
    frequencies = np.asarray(frequencies, dtype=float)
    if np.any(~np.isfinite(frequencies)) or np.any(frequencies < 0):
        raise TrendError("frequencies to predict at must be counts >= 0")
    out = predictor.predict(np.log10(np.maximum(frequencies, 1.0)), level or trend.level)
    return [{"frequency": float(f), "accuracy": float(out["mean"][i]), "lower": float(out["lower"][i]),
             "upper": float(out["upper"][i]), "mean_lower": float(out["mean_lower"][i]), "mean_upper": float(out["mean_upper"][i])}
            for i, f in enumerate(frequencies)]


# Counts below 1 do not exist (the fits floor them at 1), and beyond 10^15 samples a budget is not
# an answer anyone can act on.
_SEARCH = (0.0, 15.0)


def _solve(curve: Callable[[float], float], target: float) -> float | None:
    """log10 frequency where a rising curve first reaches `target`, or None outside the search range."""
    low, high = _SEARCH
    f_low, f_high = curve(low) - target, curve(high) - target
    if f_low >= 0:
        return low
    if f_high < 0:
        return None
    return float(optimize.brentq(lambda x: curve(x) - target, low, high, xtol=1e-9))


def data_budget(trend: TrendFit, target: float, *, current: float | None = None, observed: float | None = None,
                level: float | None = None, eps: float = 0.5) -> dict:
    """The frequency at which the trend reaches `target` percent, with the range in which a new concept
    would reach it (prediction interval), and how many samples that is beyond `current`."""
    predictor = trend.require_predictor()
    level = level or trend.level
    if not 0 < target < 100:
        raise TrendError(f"target accuracy must be a percentage strictly between 0 and 100, got {target}")
    out = {"target_accuracy": target, "method": trend.method, "confidence_level": level, "current_frequency": current,
           "reachable": predictor.slope > 0}
    if predictor.slope <= 0:
        out["note"] = "the fitted trend does not rise with frequency, so no amount of data reaches the target"
        return out
    goal = float(predictor.link.forward(target))
    log_needed = (goal - predictor.intercept) / predictor.slope

    def bound(side: str) -> Callable[[float], float]:
        return lambda x: float(predictor.predict(x, level)[side][0])

    # A concept lucky enough to sit at the top of the interval gets there first; one at the bottom, last.
    optimistic, conservative = _solve(bound("upper"), target), _solve(bound("lower"), target)
    needed = pow10(log_needed)
    out.update({"required_frequency": needed,
                "interval": [10 ** optimistic if optimistic is not None else None,
                             10 ** conservative if conservative is not None else None]})
    if current is not None:
        out["additional_samples"] = max(0, math.ceil(needed - current)) if math.isfinite(needed) else None
        # "How many times the data" has no meaning for a concept the dataset does not have yet.
        out["multiplier"] = needed / current if current > 0 else None
        if observed is not None:
            # A concept that already sits above or below the trend likely stays there: shift the line by its residual.
            shift = predictor.residual(math.log10(max(current, 1.0)), observed, eps)
            adjusted = pow10((goal - shift - predictor.intercept) / predictor.slope)
            out["concept_adjusted"] = {"observed_accuracy": observed, "required_frequency": adjusted,
                                       "additional_samples": max(0, math.ceil(adjusted - current)) if math.isfinite(adjusted) else None}
    return jsonable(out)
