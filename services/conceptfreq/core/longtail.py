"""Long-tail views across pretraining datasets (pure: no I/O).

Concepts are joined across datasets by their normalized name (`phrase_key`), since each dataset
may have been counted with a different vocabulary version. Frequencies are normalized per dataset
before they are combined, so a 400M-sample corpus does not drown a 3M one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

from conceptfreq.core.text import phrase_key
from conceptfreq.errors import UserError

# {dataset: {concept name: count}}
Frequencies = Mapping[str, Mapping[str, int]]


def _by_max(counts: np.ndarray, total: int | None) -> np.ndarray:
    # The paper's normalization: the most frequent concept of the vocabulary is 1.
    top = counts.max()
    return counts / top if top > 0 else counts.astype(float)


def _by_samples(counts: np.ndarray, total: int | None) -> np.ndarray:
    if not total:
        raise UserError("normalize=samples needs each dataset's sample count; use normalize=max instead")
    return counts / total


NORMALIZERS: dict[str, Callable[[np.ndarray, int | None], np.ndarray]] = {"max": _by_max, "samples": _by_samples}


def _geomean(matrix: np.ndarray) -> np.ndarray:
    return 10 ** np.log10(matrix).mean(axis=1)


DATASET_COMBINERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "geomean": _geomean,              # rare on average, in the log domain (one outlier dataset cannot dominate)
    "max": lambda m: m.max(axis=1),   # rare in every dataset
    "mean": lambda m: m.mean(axis=1),
}


@dataclass
class LongTailEntry:
    name: str
    score: float
    counts: dict[str, int] = field(default_factory=dict)
    normalized: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"name": self.name, "score": self.score, "counts": self.counts, "normalized": self.normalized}


def align(frequencies: Frequencies) -> tuple[list[str], list[str], np.ndarray]:
    """(datasets, concept names, counts[concept, dataset]) over the concepts every dataset counted."""
    datasets = list(frequencies)
    if not datasets:
        raise UserError("no datasets given: pass at least one dataset with counts")
    keyed: list[dict[str, tuple[str, int]]] = []
    for dataset in datasets:
        table: dict[str, tuple[str, int]] = {}
        for name, count in frequencies[dataset].items():
            key = phrase_key(name)
            # The paper counts a class once per downstream set, with tiny differences: keep the largest,
            # so a concept only looks rare if it is rare everywhere it was counted.
            if key not in table or count > table[key][1]:
                table[key] = (name, int(count))
        if not table:
            raise UserError(f"dataset {dataset!r} has no concept counts")
        keyed.append(table)
    common = sorted(set.intersection(*(set(t) for t in keyed)))
    if not common:
        raise UserError(f"the datasets {', '.join(datasets)} share no concept: were they counted with related vocabularies?")
    names = [keyed[0][k][0] for k in common]
    counts = np.array([[t[k][1] for t in keyed] for k in common], dtype=float)
    return datasets, names, counts


def normalize(counts: np.ndarray, datasets: list[str], how: str = "max", totals: Mapping[str, int] | None = None) -> np.ndarray:
    if how not in NORMALIZERS:
        raise UserError(f"unknown normalization {how!r}: choose one of {', '.join(NORMALIZERS)}")
    totals = totals or {}
    return np.column_stack([NORMALIZERS[how](counts[:, j], totals.get(d)) for j, d in enumerate(datasets)])


def combined_scores(frequencies: Frequencies, normalize_by: str = "max", combine: str = "geomean",
                    totals: Mapping[str, int] | None = None) -> tuple[list[str], list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(datasets, names, counts, normalized, score) of the concepts every dataset counted.

    A count of 0 counts as 1 before normalizing (as in the trend fits), so the log-domain combiner
    stays finite."""
    if combine not in DATASET_COMBINERS:
        raise UserError(f"unknown combiner {combine!r}: choose one of {', '.join(DATASET_COMBINERS)}")
    datasets, names, counts = align(frequencies)
    normalized = normalize(np.maximum(counts, 1.0), datasets, normalize_by, totals)
    return datasets, names, counts, normalized, DATASET_COMBINERS[combine](normalized)


def rank_long_tail(frequencies: Frequencies, k: int, *, normalize_by: str = "max", combine: str = "geomean",
                   totals: Mapping[str, int] | None = None, keep: Iterable[str] | None = None,
                   tie_break: Sequence[Frequencies] = ()) -> tuple[list[LongTailEntry], int]:
    """The `k` rarest concepts across datasets, rarest first, and how many candidates there were.

    On small corpora most tail concepts have the same count (often 0), so ties are common: they break
    on `tie_break` (other count kinds, e.g. text then image, scored the same way; a concept they lack
    sorts last), then on the raw total count and the name, so the order is stable."""
    if k <= 0:
        raise UserError(f"k must be a positive number of concepts, got {k}")
    datasets, names, counts, normalized, scores = combined_scores(frequencies, normalize_by, combine, totals)
    secondary = []
    for other in tie_break:
        _, other_names, _, _, other_scores = combined_scores(other, normalize_by, combine, totals)
        secondary.append(dict(zip(map(phrase_key, other_names), other_scores)))
    rows = list(range(len(names)))
    if keep is not None:
        wanted = {phrase_key(n) for n in keep}
        rows = [i for i in rows if phrase_key(names[i]) in wanted]
        if not rows:
            raise UserError("the filters leave no concept to rank")

    def rarity(i: int) -> tuple:
        key = phrase_key(names[i])
        return (scores[i], *(table.get(key, math.inf) for table in secondary), counts[i].sum(), names[i])

    order = sorted(rows, key=rarity)
    entries = [LongTailEntry(names[i], float(scores[i]), {d: int(counts[i, j]) for j, d in enumerate(datasets)},
                             {d: float(normalized[i, j]) for j, d in enumerate(datasets)}) for i in order[:k]]
    return entries, len(rows)


def overlap(selected: Iterable[str], reference: Iterable[str], candidates: Iterable[str] | None = None) -> dict:
    """How many selected concepts are in a reference list (e.g. Let It Wag!), by normalized name.
    `recall` counts only reference concepts that were candidates at all, so a vocabulary that
    lacks some of them is not blamed for missing them."""
    chosen = {phrase_key(n): n for n in selected}
    ref = {phrase_key(n) for n in reference}
    hits = sorted(chosen[k] for k in chosen.keys() & ref)
    reachable = ref & {phrase_key(n) for n in candidates} if candidates is not None else ref
    return {"overlap": len(hits), "k": len(chosen), "reference_size": len(ref), "reference_in_candidates": len(reachable),
            "precision": len(hits) / len(chosen) if chosen else None,
            "recall": len(hits) / len(reachable) if reachable else None, "concepts": hits}


def cross_dataset_spearman(frequencies: Frequencies) -> dict:
    """Spearman rank correlation of concept frequencies between every pair of datasets."""
    datasets, names, counts = align(frequencies)
    n = len(datasets)
    matrix = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            rho = stats.spearmanr(counts[:, i], counts[:, j]).statistic if len(names) > 2 else math.nan
            matrix[i, j] = matrix[j, i] = rho
    return {"datasets": datasets, "n_concepts": len(names),
            "spearman": [[None if math.isnan(v) else float(v) for v in row] for row in matrix]}


def long_tail_curve(counts: Mapping[str, int]) -> np.ndarray:
    """Normalized frequencies sorted from most to least frequent, zeros left out (they have no place
    on a log axis), as in the paper's long-tail figure."""
    values = np.array([c for c in counts.values() if c > 0], dtype=float)
    if values.size == 0:
        return values
    return np.sort(values / values.max())[::-1]
