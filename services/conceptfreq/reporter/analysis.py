"""What the CLI and the gRPC service ask of a report source: fits, predictions, data budgets, long-tail
sets and cross-dataset views, as JSON-ready dicts. A source is `PaperArtifacts` or `StoreSource`;
both give `trend_data`, `concept_counts`, `models`, `datasets` and the optional extras."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from conceptfreq.core import longtail, trends
from conceptfreq.core.counting import IMAGE, KINDS, MATCHED, TEXT
from conceptfreq.core.text import phrase_key
from conceptfreq.errors import NotFoundError, UserError
from conceptfreq.reporter.paper import METHOD_ALIASES, method_kind
from conceptfreq.reporter.source import ReportSource


@dataclass
class Selection:
    """Which accuracies against which counts: one (pretraining dataset, model, count, prompts)."""

    dataset: str
    model: str
    count: str
    prompts: str = "ensemble"
    rule: str | None = None
    downstream: list[str] | None = None
    pretrained: str | None = None

    def validate(self) -> "Selection":
        for name in ("dataset", "model", "count", "prompts"):
            if not getattr(self, name):
                raise UserError(f"{name} is required")
        return self


@dataclass
class FitOptions:
    method: str = "binned"
    level: float = 0.95
    n_boot: int = 1000
    seed: int = 0
    robust: str = "huber"
    extra: dict = field(default_factory=dict)

    def validate(self) -> "FitOptions":
        if self.method not in trends.FITS:
            raise UserError(f"unknown fit method {self.method!r}: choose one of {', '.join(trends.FITS)}")
        if not 0.5 <= self.level < 1:
            raise UserError(f"confidence level must be in [0.5, 1), got {self.level}")
        if self.n_boot < 0:
            raise UserError("bootstrap resamples must be >= 0")
        return self

    def kwargs(self) -> dict:
        return {"level": self.level, "n_boot": self.n_boot, "seed": self.seed, "robust": self.robust, **self.extra}


def _data(source: ReportSource, selection: Selection):
    selection.validate()
    return source.trend_data(selection.dataset, selection.model, selection.count, selection.prompts,
                             downstream=selection.downstream, rule=selection.rule, pretrained=selection.pretrained)


def fit_selection(source: ReportSource, selection: Selection, options: FitOptions | None = None):
    """(data, fit, info) for one selection."""
    options = (options or FitOptions()).validate()
    data, info = _data(source, selection)
    return data, trends.fit(data, options.method, **options.kwargs()), info


def fit_trend(source: ReportSource, selection: Selection, options: FitOptions | None = None) -> dict:
    data, fit, info = fit_selection(source, selection, options)
    return {**fit.to_json(), "selection": info}


def _lookup(data: trends.TrendData, concept: str) -> list[int]:
    key = phrase_key(concept)
    return [i for i, name in enumerate(data.names) if phrase_key(name) == key]


def _concept_state(source: ReportSource, selection: Selection, data: trends.TrendData, concept: str) -> tuple[float, float | None]:
    """(count, observed accuracy or None) of a concept: from the evaluated classes, else from all counts."""
    rows = _lookup(data, concept)
    if rows:
        # A name in several downstream sets (`dog` in cifar10 and oxfordpets): its largest count, its mean accuracy.
        return float(max(data.frequency[i] for i in rows)), float(sum(data.accuracy[i] for i in rows) / len(rows))
    counts = source.concept_counts(selection.dataset, selection.count, rule=selection.rule)
    by_key = {phrase_key(n): c for n, c in counts.items()}
    if phrase_key(concept) not in by_key:
        raise NotFoundError(f"concept {concept!r} is not counted in {selection.dataset!r} under {selection.count!r}")
    return float(by_key[phrase_key(concept)]), None


def predict(source: ReportSource, selection: Selection, options: FitOptions | None = None, *, concepts: Iterable[str] = (),
            frequencies: Iterable[float] = ()) -> dict:
    concepts, frequencies = list(concepts), list(frequencies)
    if not concepts and not frequencies:
        raise UserError("give at least one concept or frequency to predict for")
    data, fit, info = fit_selection(source, selection, options)
    rows = []
    for concept in concepts:
        count, observed = _concept_state(source, selection, data, concept)
        rows.append({"concept": concept, **trends.predict(fit, [count])[0], "observed_accuracy": observed})
    rows += [{"concept": None, **p, "observed_accuracy": None} for p in trends.predict(fit, frequencies)]
    return {"method": fit.method, "confidence_level": fit.level, "predictions": rows, "selection": info}


def budget(source: ReportSource, selection: Selection, options: FitOptions | None, *, concept: str | None, target: float,
           current: float | None = None) -> dict:
    if concept is None and current is None:
        raise UserError("give a concept (its current count is looked up) or a current count")
    data, fit, info = fit_selection(source, selection, options)
    observed = None
    if concept:
        count, observed = _concept_state(source, selection, data, concept)
        current = count if current is None else current
    return {"concept": concept, **trends.data_budget(fit, target, current=current, observed=observed), "selection": info}


def _datasets(source: ReportSource, datasets: list[str] | None) -> list[str]:
    known = source.datasets()
    chosen = list(datasets) if datasets else known
    unknown = [d for d in chosen if d not in known]
    if unknown:
        raise NotFoundError(f"unknown dataset(s) {', '.join(unknown)}: known: {', '.join(known) or 'none'}")
    if not chosen:
        raise NotFoundError("the source has no datasets with counts")
    return chosen


def _frequencies(source: ReportSource, datasets, count, rule, downstream) -> dict[str, dict[str, int]]:
    return {d: source.concept_counts(d, count, rule=rule, downstream=downstream) for d in datasets}


@dataclass
class LongTailOptions:
    datasets: list[str] | None = None
    k: int = 300
    count: str = "matched"
    rule: str | None = None
    normalize: str = "max"
    combine: str = "geomean"
    downstream: list[str] | None = None   # vocabulary subset: classes of these downstream sets
    concepts: list[str] | None = None     # vocabulary subset: these names
    min_evaluations: int = 0              # keep concepts evaluated by at least this many models
    model: str | None = None              # predict accuracies with this model's trend (logit)
    prompts: str = "ensemble"
    reference: list[str] | None = None    # e.g. the Let It Wag! class list
    tie_break: list[str] | None = None    # counts that order equally rare concepts; None: the other kinds


def long_tail(source: ReportSource, options: LongTailOptions) -> dict:
    datasets = _datasets(source, options.datasets)
    frequencies = _frequencies(source, datasets, options.count, options.rule, options.downstream)
    keep = None
    if options.concepts is not None:
        keep = set(options.concepts)
    if options.min_evaluations > 0:
        covered = {phrase_key(n) for n, c in source.evaluated_concepts(options.prompts, options.downstream).items()
                   if c >= options.min_evaluations}
        keep = {n for n in (keep if keep is not None else (n for d in frequencies.values() for n in d))
                if phrase_key(n) in covered}
    totals = {d: source.dataset_size(d) for d in datasets} if options.normalize == "samples" else None
    tie_names, tie_tables = _tie_breaks(source, options, datasets)
    entries, candidates = longtail.rank_long_tail(frequencies, options.k, normalize_by=options.normalize,
                                                  combine=options.combine, totals=totals, keep=keep, tie_break=tie_tables)
    out = {"datasets": datasets, "count": options.count, "normalize": options.normalize, "combine": options.combine,
           "tie_break": tie_names, "k": options.k, "candidates": candidates, "concepts": [e.to_json() for e in entries]}
    if options.model:
        _add_predictions(source, options, datasets, out["concepts"])
    reference = options.reference if options.reference is not None else source.let_it_wag()
    if reference:
        names = [n for d in frequencies.values() for n in d]
        out["reference_overlap"] = longtail.overlap([e.name for e in entries], reference, names)
    return out


def _tie_breaks(source: ReportSource, options: LongTailOptions, datasets: list[str]) -> tuple[list[str], list[dict]]:
    """The tie-break counts that every dataset has. By default the kinds other than the ranked one,
    text before image: on CC-3M/CC-12M this lifts the overlap of the 290 rarest with Let It Wag!
    from 23 to 54, because most tail concepts have 0 matched hits."""
    if options.tie_break is not None:
        wanted, required = options.tie_break, True
    else:
        primary = _kind(options.count)
        wanted, required = [k for k in (TEXT, IMAGE, MATCHED) if k != primary], False
    names, tables = [], []
    for count in wanted:
        try:
            tables.append(_frequencies(source, datasets, count, None, options.downstream))
            names.append(count)
        except UserError:  # NotFoundError too: this kind was not counted for some dataset
            if required:
                raise
    return names, tables


def _kind(count: str) -> str | None:
    try:
        return count if count in KINDS else method_kind(METHOD_ALIASES.get(count, count))
    except UserError:
        return None


def _add_predictions(source: ReportSource, options: LongTailOptions, datasets: list[str], concepts: list[dict]) -> None:
    """Predicted accuracy of each long-tail concept in each dataset, from the model's logit trend there."""
    for dataset in datasets:
        try:
            _, fit, _ = fit_selection(source, Selection(dataset, options.model, options.count, options.prompts, options.rule),
                                      FitOptions(method="logit", n_boot=0))
        except NotFoundError:
            continue  # the model was not trained on this dataset
        predictions = trends.predict(fit, [c["counts"][dataset] for c in concepts])
        for concept, prediction in zip(concepts, predictions):
            concept.setdefault("predicted", {})[dataset] = {k: prediction[k] for k in ("accuracy", "lower", "upper")}


def cross_dataset(source: ReportSource, datasets: list[str] | None, count: str, rule: str | None = None,
                  downstream: list[str] | None = None) -> dict:
    datasets = _datasets(source, datasets)
    frequencies = _frequencies(source, datasets, count, rule, downstream)
    out = {"count": count, "curves": {d: longtail.long_tail_curve(f).tolist() for d, f in frequencies.items()},
           "misalignment": {d: source.misalignment(d) for d in datasets}}
    out.update(longtail.cross_dataset_spearman(frequencies) if len(datasets) > 1 else
               {"datasets": datasets, "spearman": [[1.0]], "n_concepts": len(frequencies[datasets[0]])})
    return out
