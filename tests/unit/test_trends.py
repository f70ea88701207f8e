"""Trend fits on synthetic data with known answers: slopes, intervals, bounds, budgets, degenerate input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from conceptfreq.core import longtail, trends
from conceptfreq.core.trends import TrendData, TrendError


def linear_data(slope=10.0, intercept=20.0, n=600, noise=5.0, seed=1) -> TrendData:
    """Accuracy = intercept + slope * log10(frequency) + noise, kept well inside 0-100 so clipping cannot bias it."""
    rng = np.random.default_rng(seed)
    frequency = np.round(10 ** rng.uniform(0, 5, n))
    accuracy = np.clip(intercept + slope * np.log10(frequency) + rng.normal(0, noise, n), 0, 100)
    return TrendData(tuple(f"c{i}" for i in range(n)), frequency, accuracy)


def logistic_data(a=-3.0, b=1.2, n=800, seed=2) -> TrendData:
    rng = np.random.default_rng(seed)
    frequency = np.round(10 ** rng.uniform(0, 6, n))
    z = a + b * np.log10(frequency) + rng.normal(0, 0.3, n)
    return TrendData(tuple(f"c{i}" for i in range(n)), frequency, 100 * special.expit(z))


def test_per_concept_recovers_a_known_slope_and_covers_it():
    fit = trends.fit(linear_data(slope=10.0), "per-concept", n_boot=500, seed=7)
    low, high = fit.slope_ci
    assert fit.slope_per_decade == pytest.approx(10.0, abs=0.5)
    assert low < 10.0 < high and high - low < 1.5
    assert fit.intercept == pytest.approx(20.0, abs=1.5)
    assert fit.n_concepts == 600 and fit.r2 > 0.8 and fit.spearman > 0.85
    assert fit.details["robust"]["slope_per_decade"] == pytest.approx(10.0, abs=0.5)
    assert fit.slope_unit == "accuracy points per 10x"


def test_bootstrap_is_seeded_and_reproducible():
    data = linear_data()
    first = trends.fit(data, "per-concept", n_boot=300, seed=3).slope_ci
    again = trends.fit(data, "per-concept", n_boot=300, seed=3).slope_ci
    other = trends.fit(data, "per-concept", n_boot=300, seed=4).slope_ci
    assert first == again
    assert first != other


def test_robust_slopes_resist_outliers():
    data = linear_data(slope=10.0, n=400)
    accuracy = data.accuracy.copy()
    rare = np.argsort(data.frequency)[:40]
    accuracy[rare] = 100.0  # a cluster of rare concepts the model gets right anyway
    spoiled = TrendData(data.names, data.frequency, accuracy)
    ols = trends.fit(spoiled, "per-concept", n_boot=0)
    for estimator in trends.ROBUST:
        robust = trends.fit(spoiled, "per-concept", n_boot=0, robust=estimator).details["robust"]["slope_per_decade"]
        assert abs(robust - 10.0) < abs(ols.slope_per_decade - 10.0), estimator


def _papers_loop(counts, accuracies):
    """The paper's notebook, step by step (zero_shot_integrated_search_results.ipynb)."""
    x = np.log([c if c > 0 else 1 for c in counts])
    bins = np.linspace(min(x), max(x), num=12)
    assigned = np.digitize(x, bins, right=True)
    means = np.zeros(12)
    for key in set(assigned):
        means[key] = np.mean([a for a, b in zip(accuracies, assigned) if b == key])
    return stats.pearsonr(bins[1:-1], means[1:-1])


def test_binned_is_the_papers_estimator():
    data = linear_data(noise=15.0, n=2000, seed=5)
    counts = data.frequency.copy()
    counts[:50] = 0  # the paper replaces 0 by 1
    data = TrendData(data.names, counts, data.accuracy)
    fit = trends.fit(data, "binned")
    r, p = _papers_loop(counts, data.accuracy)
    assert fit.pearson == pytest.approx(r, abs=1e-12) and fit.p_value == pytest.approx(p, rel=1e-9)
    assert len(fit.details["bins"]) == 12 and sum(b["inner"] for b in fit.details["bins"]) == 10
    assert fit.slope_per_decade == pytest.approx(10.0, abs=1.5)
    assert fit.predictor is None


def test_logit_fit_recovers_log_odds_and_stays_bounded():
    fit = trends.fit(logistic_data(b=1.2), "logit")
    assert fit.slope_per_decade == pytest.approx(1.2, abs=0.05)
    assert fit.slope_ci[0] < 1.2 < fit.slope_ci[1]
    predictions = trends.predict(fit, [0, 1, 1e3, 1e9, 1e14])
    for p in predictions:
        assert 0 <= p["lower"] <= p["mean_lower"] <= p["accuracy"] <= p["mean_upper"] <= p["upper"] <= 100
    assert predictions[-1]["accuracy"] > 99 and predictions[0]["accuracy"] < 10


def test_logit_handles_0_and_100_percent_and_uses_test_set_sizes():
    data = linear_data(slope=25.0, intercept=-10.0)
    assert data.accuracy.min() == 0 and data.accuracy.max() == 100
    fit = trends.fit(data, "logit")
    assert math.isfinite(fit.slope_per_decade) and fit.slope_per_decade > 0
    sized = TrendData(data.names, data.frequency, data.accuracy, totals=np.full(len(data), 50.0))
    assert trends.fit(sized, "logit").details["eps_percent"] is None


def test_exponential_summary_is_the_frequency_multiplier_for_10_points():
    fit = trends.fit(linear_data(slope=10.0), "per-concept", n_boot=300)
    summary = fit.details["exponential"]
    assert summary["multiplier"] == pytest.approx(10 ** (10 / fit.slope_per_decade))
    low, high = summary["multiplier_ci"]
    assert low < summary["multiplier"] < high
    assert trends.multiplier_for_gain(5.0) == pytest.approx(100.0)
    assert trends.multiplier_for_gain(-1.0) == math.inf
    assert trends.multiplier_for_gain(1e-9) == math.inf  # nearly flat: saturates instead of overflowing


def test_predictions_have_intervals_that_widen_with_the_level():
    fit = trends.fit(linear_data(), "per-concept", n_boot=0)
    narrow = trends.predict(fit, [1000], level=0.5)[0]
    wide = trends.predict(fit, [1000], level=0.99)[0]
    assert narrow["accuracy"] == pytest.approx(wide["accuracy"])
    assert wide["upper"] - wide["lower"] > narrow["upper"] - narrow["lower"]
    assert narrow["accuracy"] == pytest.approx(20 + 10 * 3, abs=1.0)


def test_data_budget_inverts_the_trend():
    fit = trends.fit(linear_data(slope=10.0, intercept=20.0, noise=1.0), "per-concept", n_boot=0)
    budget = trends.data_budget(fit, 60.0, current=1000, observed=40.0)
    expected = 10 ** ((60.0 - fit.intercept) / fit.slope_per_decade)
    assert budget["required_frequency"] == pytest.approx(expected)
    assert budget["required_frequency"] == pytest.approx(1e4, rel=0.15)
    optimistic, conservative = budget["interval"]
    assert optimistic < budget["required_frequency"] < conservative
    assert budget["additional_samples"] == math.ceil(expected - 1000)
    assert budget["multiplier"] == pytest.approx(expected / 1000)
    # At 1000 samples the trend says ~50%: a concept already at 40% needs more than the trend says.
    assert budget["concept_adjusted"]["required_frequency"] > expected


def test_data_budget_when_the_trend_does_not_rise():
    falling = linear_data(slope=-5.0, intercept=80.0)
    budget = trends.data_budget(trends.fit(falling, "logit"), 60.0, current=10)
    assert budget["reachable"] is False and "does not rise" in budget["note"]


@pytest.mark.parametrize("make, method, message", [
    (lambda: TrendData((), [], []), "binned", "no concepts"),
    (lambda: TrendData(("a", "b", "c", "d"), [7, 7, 7, 7], [1, 50, 3, 90]), "per-concept", "same count"),
    (lambda: TrendData(("a", "b", "c", "d"), [7, 7, 7, 7], [1, 50, 3, 90]), "binned", "same count"),
    (lambda: TrendData(("a", "b", "c", "d"), [1, 1, 1000, 1000], [1, 5, 80, 90]), "binned", "inner bins"),
    (lambda: TrendData(("a", "b"), [1, 10], [1, 5]), "logit", "at least 3 concepts"),
    (lambda: TrendData(("a",), [1], [150]), "binned", "percentages"),
    (lambda: TrendData(("a",), [-1], [15]), "binned", "counts >= 0"),
    (lambda: linear_data(), "quadratic", "unknown fit method"),
])
def test_degenerate_input_is_a_clear_error(make, method, message):
    with pytest.raises(TrendError, match=message):
        trends.fit(make(), method)


def test_one_bin_and_non_predicting_fits_are_errors():
    data = linear_data()
    with pytest.raises(TrendError, match="at least 5 bins"):
        trends.fit(data, "binned", n_bins=1)
    with pytest.raises(TrendError, match="does not predict"):
        trends.predict(trends.fit(data, "binned"), [10])
    with pytest.raises(TrendError, match="between 0 and 100"):
        trends.data_budget(trends.fit(data, "logit"), 100.0)


def test_json_is_plain_and_finite():
    fit = trends.fit(linear_data(slope=-3.0, intercept=60), "per-concept", n_boot=50).to_json()
    assert fit["exponential"]["multiplier"] is None  # infinite: no amount of data buys the gain
    assert isinstance(fit["slope_per_decade"], float) and isinstance(fit["n_concepts"], int)


# --- long tail -----------------------------------------------------------------------------------------

FREQS = {
    "small": {"dog": 900, "cat": 300, "axolotl": 0, "Great_White_Shark": 2, "quokka": 0},
    "large": {"dog": 90000, "cat": 50000, "axolotl": 40, "great white shark": 300, "quokka": 0, "only here": 1},
}


def test_long_tail_ranks_by_normalized_frequency_across_datasets():
    entries, candidates = longtail.rank_long_tail(FREQS, 3)
    assert candidates == 5  # "only here" is not counted in both datasets
    assert [e.name for e in entries] == ["quokka", "axolotl", "Great_White_Shark"]
    assert entries[0].counts == {"small": 0, "large": 0}
    assert entries[1].normalized["large"] == pytest.approx(40 / 90000)


def test_long_tail_tie_break_and_filters():
    text = {"small": {"axolotl": 5, "quokka": 50}, "large": {"axolotl": 5, "quokka": 50}}
    tied = {"small": {"axolotl": 0, "quokka": 0, "dog": 9}, "large": {"axolotl": 0, "quokka": 0, "dog": 9}}
    assert [e.name for e in longtail.rank_long_tail(tied, 2)[0]] == ["axolotl", "quokka"]  # by name
    text["small"]["axolotl"], text["large"]["axolotl"] = 500, 500
    assert [e.name for e in longtail.rank_long_tail(tied, 2, tie_break=[text])[0]] == ["quokka", "axolotl"]
    entries, candidates = longtail.rank_long_tail(FREQS, 10, keep=["dog", "axolotl"])
    assert [e.name for e in entries] == ["axolotl", "dog"] and candidates == 2
    with pytest.raises(Exception, match="no concept"):
        longtail.rank_long_tail(FREQS, 10, keep=["unicorn"])


def test_overlap_spearman_and_curve():
    result = longtail.overlap(["quokka", "Great White Shark", "dog"], ["great_white_shark", "quokka", "tardigrade"],
                              candidates=["quokka", "great white shark", "dog"])
    assert result["overlap"] == 2 and result["reference_in_candidates"] == 2 and result["recall"] == 1.0
    cross = longtail.cross_dataset_spearman(FREQS)
    assert cross["datasets"] == ["small", "large"] and cross["n_concepts"] == 5
    assert cross["spearman"][0][1] == pytest.approx(stats.spearmanr([900, 300, 0, 2, 0], [90000, 50000, 40, 300, 0]).statistic)
    curve = longtail.long_tail_curve(FREQS["large"])
    assert curve[0] == 1.0 and list(curve) == sorted(curve, reverse=True) and len(curve) == 5
