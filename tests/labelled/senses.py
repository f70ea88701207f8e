"""The hand-labelled caption set (cc3m_val_senses.tsv) and precision/recall of a matcher on it.

Shared by the unit test that holds phrase+pos to its target and by the benchmark that prints the
table for every method, so both measure the same thing the same way.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

PATH = Path(__file__).with_name("cc3m_val_senses.tsv")


@dataclass(frozen=True)
class Row:
    line: int
    concept: str
    meant: bool
    caption: str


def rows(path: Path = PATH) -> list[Row]:
    with open(path, encoding="utf-8", newline="") as f:
        lines = [l for l in f if not l.startswith("#")]
    reader = csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    return [Row(int(r["line"]), r["concept"], r["meant"] == "1", r["caption"]) for r in reader]


@dataclass(frozen=True)
class Score:
    method: str
    tp: int
    fp: int
    fn: int
    tn: int
    ambiguous: int  # hits the matcher set aside as ambiguous (neither counted nor dropped)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def score(matcher, vocabulary, labelled: list[Row]) -> Score:
    """A labelled concept counts as found when the matcher reports it for its caption; an
    ambiguous hit is not counted (that is what the count does with it)."""
    hits = matcher.match([r.caption for r in labelled])
    found = hits.per_caption()
    tp = fp = fn = tn = ambiguous = 0
    for row, concepts in zip(labelled, found):
        concept = vocabulary.get(row.concept)
        if concept is None:
            raise ValueError(f"labelled concept {row.concept!r} is not in the vocabulary")
        predicted = concept.id in concepts
        tp += predicted and row.meant
        fp += predicted and not row.meant
        fn += (not predicted) and row.meant
        tn += (not predicted) and not row.meant
    # Per-caption ambiguity needs one caption per call: Hits.ambiguous is per batch.
    for row in labelled:
        concept = vocabulary.get(row.concept)
        ambiguous += concept.id in matcher.match([row.caption]).ambiguous
    return Score(matcher.name, tp, fp, fn, tn, ambiguous)
