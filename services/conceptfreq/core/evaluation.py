"""Zero-shot metrics, pure: embeddings in, counts and recalls out (no I/O, no torch).

Classification keeps integer counts per class (top-1 and top-5 correct, and samples), never
accuracies: counts of disjoint shards add up, so an evaluation split into shards any way gives the
same totals, and accuracies are computed once at the end.

- **Overall top-1** is over samples (sum correct / sum total): the paper's `full`.
- **Mean per-class recall** is the mean of per-class top-1 over classes that have samples (the
  balanced accuracy clip_benchmark reports).
- **Ties** go to the lower class index (a stable sort), so a result never depends on the batch.

Retrieval ranks by strict comparison: an item's rank is the number of candidates scoring strictly
higher than it, and hit@k means rank < k. That needs no global sort, works on chunks of queries,
and is independent of how the queries are chunked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

TOP_K = 5
RECALL_KS = (1, 5, 10)


@dataclass
class ClassTally:
    """Per-class counts over some samples: int64 arrays of length n_classes."""

    correct_top1: np.ndarray
    correct_top5: np.ndarray
    total: np.ndarray
    skipped: dict[str, int] = field(default_factory=dict)

    @classmethod
    def zeros(cls, n_classes: int) -> "ClassTally":
        return cls(*(np.zeros(n_classes, np.int64) for _ in range(3)))

    @property
    def samples(self) -> int:
        return int(self.total.sum())

    def __iadd__(self, other: "ClassTally") -> "ClassTally":
        self.correct_top1 += other.correct_top1
        self.correct_top5 += other.correct_top5
        self.total += other.total
        for reason, n in other.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + n
        return self

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n


def top_k(image_embeddings: np.ndarray, class_embeddings: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """(N, min(k, C)) class indices, best first; ties to the lower index. The logit scale is left
    out: a positive scale never changes a ranking."""
    scores = np.asarray(image_embeddings, np.float32) @ np.asarray(class_embeddings, np.float32).T
    return np.argsort(-scores, axis=1, kind="stable")[:, :min(k, scores.shape[1])]


def tally(labels: Sequence[int], predictions: np.ndarray, n_classes: int) -> ClassTally:
    """Counts from true labels (N,) and ranked predictions (N, k)."""
    labels = np.asarray(labels, np.int64)
    result = ClassTally.zeros(n_classes)
    if not len(labels):
        return result
    predictions = np.asarray(predictions)
    np.add.at(result.total, labels, 1)
    np.add.at(result.correct_top1, labels, (predictions[:, 0] == labels).astype(np.int64))
    np.add.at(result.correct_top5, labels, (predictions[:, :TOP_K] == labels[:, None]).any(axis=1).astype(np.int64))
    return result


@dataclass(frozen=True)
class ClassResult:
    index: int
    name: str
    concept_id: int | None
    correct_top1: int
    correct_top5: int
    total: int

    @property
    def accuracy(self) -> float:
        """Top-1 accuracy in percent (the paper's unit); NaN for a class without samples."""
        return 100.0 * self.correct_top1 / self.total if self.total else float("nan")

    @property
    def top5_accuracy(self) -> float:
        return 100.0 * self.correct_top5 / self.total if self.total else float("nan")


@dataclass(frozen=True)
class ClassificationSummary:
    classes: list[ClassResult]
    top1: float                   # percent, over samples
    top5: float
    mean_per_class_recall: float  # percent, over classes with samples
    samples: int

    def worst_first(self) -> list[ClassResult]:
        return sorted((c for c in self.classes if c.total), key=lambda c: (c.accuracy, c.name))


def summarize(counts: ClassTally, names: Sequence[str], concept_ids: Sequence[int | None] | None = None) -> ClassificationSummary:
    concept_ids = list(concept_ids) if concept_ids is not None else [None] * len(names)
    classes = [ClassResult(i, names[i], concept_ids[i], int(counts.correct_top1[i]), int(counts.correct_top5[i]), int(counts.total[i]))
               for i in range(len(names))]
    samples = int(counts.total.sum())
    seen = [c for c in classes if c.total]
    return ClassificationSummary(
        classes=classes,
        top1=100.0 * float(counts.correct_top1.sum()) / samples if samples else float("nan"),
        top5=100.0 * float(counts.correct_top5.sum()) / samples if samples else float("nan"),
        mean_per_class_recall=float(np.mean([c.accuracy for c in seen])) if seen else float("nan"),
        samples=samples,
    )


# --- the paper's zero_shot_evaluations JSON ------------------------------------------------------


def model_key(model: str, pretrained: str) -> str:
    return f"backbone{model}_pretrained{pretrained}"


def paper_json(model: str, pretrained: str, summary: ClassificationSummary, digits: int = 2) -> dict:
    """`{"backbone{MODEL}_pretrained{PRETRAIN}": {"full": top1, "classwise": {class: accuracy %}}}`,
    the layout of the paper's `zero_shot_evaluations/{downstream}_{prompts}_results.json`."""
    return {model_key(model, pretrained): {
        "full": round(summary.top1, digits),
        "classwise": {c.name: round(c.accuracy, digits) for c in summary.classes if c.total},
    }}


# --- retrieval ------------------------------------------------------------------------------------


def text_to_image_ranks(text_embeddings: np.ndarray, image_embeddings: np.ndarray, caption_image: Sequence[int],
                        chunk: int = 1024) -> np.ndarray:
    """For each caption, the rank of its own image among all images (0 = best)."""
    images = np.asarray(image_embeddings, np.float32)
    owner = np.asarray(caption_image, np.int64)
    ranks = np.empty(len(owner), np.int64)
    for start in range(0, len(owner), chunk):
        scores = np.asarray(text_embeddings[start:start + chunk], np.float32) @ images.T
        own = scores[np.arange(len(scores)), owner[start:start + chunk]]
        ranks[start:start + chunk] = (scores > own[:, None]).sum(axis=1)
    return ranks


def image_to_text_ranks(text_embeddings: np.ndarray, image_embeddings: np.ndarray, caption_image: Sequence[int],
                        chunk: int = 512) -> np.ndarray:
    """For each image, the best rank of any of its captions among all captions (0 = best)."""
    texts = np.asarray(text_embeddings, np.float32)
    owner = np.asarray(caption_image, np.int64)
    n_images = len(image_embeddings)
    ranks = np.full(n_images, np.iinfo(np.int64).max, np.int64)
    for start in range(0, n_images, chunk):
        scores = np.asarray(image_embeddings[start:start + chunk], np.float32) @ texts.T   # (chunk, T)
        for row, image in enumerate(range(start, start + len(scores))):
            own = scores[row, owner == image]
            if own.size:
                ranks[image] = int((scores[row][None, :] > own[:, None]).sum(axis=1).min())
    return ranks


@dataclass(frozen=True)
class ConceptRecall:
    concept_id: int
    direction: str        # "t2i" | "i2t"
    k: int
    hits: int
    total: int

    @property
    def recall(self) -> float:
        return 100.0 * self.hits / self.total if self.total else float("nan")


def per_concept_recall(ranks: np.ndarray, concepts: Iterable[Iterable[int]], direction: str,
                       ks: Sequence[int] = RECALL_KS) -> list[ConceptRecall]:
    """Recall@k per concept: over the items (captions for t2i, images for i2t) whose concepts
    include it, the share with rank < k. `concepts[i]` are item i's concepts."""
    hits: dict[int, np.ndarray] = {}
    totals: dict[int, int] = {}
    ks = tuple(ks)
    for rank, item_concepts in zip(np.asarray(ranks).tolist(), concepts):
        hit = np.array([rank < k for k in ks], np.int64)
        for concept in set(item_concepts):
            hits[concept] = hits.get(concept, 0) + hit
            totals[concept] = totals.get(concept, 0) + 1
    return [ConceptRecall(concept, direction, k, int(hits[concept][i]), totals[concept])
            for concept in sorted(totals) for i, k in enumerate(ks)]


def overall_recall(ranks: np.ndarray, ks: Sequence[int] = RECALL_KS) -> dict[int, float]:
    ranks = np.asarray(ranks)
    return {k: 100.0 * float((ranks < k).mean()) if len(ranks) else float("nan") for k in ks}


# --- classes and concepts -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassMapping:
    """Each class's concept in a vocabulary, and what is doubtful about the mapping."""

    concept_ids: list[int | None]
    unmapped: list[str]                          # classes no concept stands for
    ambiguous: list[tuple[str, list[str]]]       # (class, concepts it could be); the first is chosen
    shared: list[tuple[str, list[str]]]          # (concept, classes mapped to it)

    def report(self) -> list[str]:
        lines = []
        if self.unmapped:
            lines.append(f"{len(self.unmapped)} classes map to no concept: {', '.join(self.unmapped[:20])}"
                         + (" ..." if len(self.unmapped) > 20 else ""))
        for name, candidates in self.ambiguous:
            lines.append(f"class {name!r} is ambiguous: {' | '.join(candidates)} (chose {candidates[0]!r})")
        for concept, names in self.shared:
            lines.append(f"classes {', '.join(repr(n) for n in names)} all map to concept {concept!r}")
        return lines


def map_classes(names: Sequence[str], vocabulary) -> ClassMapping:
    """Map class names to concepts with the vocabulary's own rule (Vocabulary.get: any alias, any
    case or punctuation, plurals), and report names that several concepts claim."""
    from conceptfreq.core.text import phrase_key

    claims: dict[str, list] = {}
    for concept in vocabulary:
        for surface in concept.names:
            owners = claims.setdefault(phrase_key(surface), [])
            if concept not in owners:
                owners.append(concept)
    concept_ids: list[int | None] = []
    unmapped, ambiguous = [], []
    by_concept: dict[int, list[str]] = {}
    for name in names:
        concept = vocabulary.get(name)
        if concept is None:
            concept_ids.append(None)
            unmapped.append(name)
            continue
        concept_ids.append(concept.id)
        by_concept.setdefault(concept.id, []).append(name)
        others = [c for c in claims.get(phrase_key(name), []) if c.id != concept.id]
        if others:
            ambiguous.append((name, [concept.name] + [c.name for c in others]))
    names_by_id = {c.id: c.name for c in vocabulary}
    shared = [(names_by_id[cid], classes) for cid, classes in by_concept.items() if len(classes) > 1]
    return ClassMapping(concept_ids, unmapped, ambiguous, shared)
