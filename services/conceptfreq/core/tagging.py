"""Image tagging (pure numpy): score images against concepts, keep each image's top-k, and decide
hits with a tagging rule.

**Scores.** An image's score for a concept is the cosine similarity of their L2-normalized
embeddings (the concept's is the mean of its prompt ensemble). Softmax rules read the scores as
CLIP's zero-shot classifier does: logits = logit_scale * cosine, a softmax over the whole
vocabulary. `logit_scale` is the model's own learned value (100 for every trained CLIP).

**What is stored** per image (`TopScores`): the k best concepts by cosine (k = 32 by default) with
their cosines, and `lse`, the log-sum-exp of the logits over the *whole* vocabulary. A softmax
probability needs the whole vocabulary's normalizer, which the top-k alone cannot give back; with
`lse` kept, p(concept) = exp(logit_scale * cosine - lse) for every stored concept, so any softmax
threshold can be applied later without the model ("re-thresholding needs no GPU").

**Hits come from the stored top-k only**, in the tagger and in `retag` alike, so a re-threshold
gives exactly what a re-run would. That caps hits at k per image, which loses nothing for:
- softmax with p >= t: at most floor(1/t) concepts can reach t (probabilities sum to 1), so
  k >= floor(1/t) is exact; k = 32 covers every t > 1/33;
- top-n with n <= k.
For cosine and per-concept thresholds an image whose k-th stored cosine still clears the lowest
threshold may have more hits than were stored; `truncated` counts such images per shard.

**Rules are data**: a registered name plus parameters, with one stable string form recorded with
the counts (`softmax:p=0.5`, `cosine:t=0.3`, `topk:k=3`,
`per-concept:default=none,score=cosine,sha256=1a2b3c4d5e6f`); see core/tagging_rules.py.

**The default, `softmax:p=0.5`**: a concept is an image hit when CLIP's zero-shot classifier over
the whole vocabulary gives it more than even odds against all other concepts together.
- It is the zero-shot decision the paper measures performance with (argmax over class prompts),
  made confident: above 0.5 the concept is necessarily the argmax.
- It favours precision, as matched counts should: at most one hit per image, so an image count
  never exceeds the number of images, and a clutter of weak concepts is never counted.
- It is exact to re-threshold from the top-k (needs k >= 2) and comparable across vocabularies of
  a few thousand concepts, where a cosine threshold would shift with every model.
- Lower values (0.1-0.3) admit a few concepts per image; `retag` makes that a query.
A softmax is relative: a random-weights model at logit scale 100 is as "confident" as a trained
one (about 40% of random images clear 0.5 with the tiny test model), so a softmax rule never
detects that a model is useless; that is what the zero-shot evaluation is for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from conceptfreq.core.counting import IMAGE, ShardResult
from conceptfreq.core.tagging_rules import (DEFAULT_RULE, SCORE_KINDS, TAGGING_RULES, PerConceptRule, Rule, RuleError,
                                            parse_rule, parse_thresholds, rule_from_json)

DEFAULT_TOP_K = 32

__all__ = ["DEFAULT_RULE", "DEFAULT_TOP_K", "SCORE_KINDS", "TAGGING_RULES", "ImageShardResult", "Matched", "PerConceptRule", "Rule",
           "RuleError", "RuleHits", "TopScores", "apply_rule", "match_samples", "parse_rule", "parse_thresholds",
           "rule_from_json", "tag_shard", "top_scores"]
# --- scores -----------------------------------------------------------------------------------------


@dataclass
class TopScores:
    """The k best concepts of n images, best first, and each image's softmax normalizer."""

    concept_ids: np.ndarray   # (n, k) uint32
    cosines: np.ndarray       # (n, k) float32, descending per row
    lse: np.ndarray           # (n,) float32: log-sum-exp of logit_scale * cosine over the whole vocabulary
    logit_scale: float
    vocabulary_size: int

    def __len__(self) -> int:
        return int(self.concept_ids.shape[0])

    @property
    def k(self) -> int:
        return int(self.concept_ids.shape[1]) if self.concept_ids.ndim == 2 else 0

    def probabilities(self) -> np.ndarray:
        """Softmax probabilities of the stored concepts, (n, k)."""
        return np.exp(np.float32(self.logit_scale) * self.cosines - self.lse[:, None]).astype(np.float32)

    def take(self, rows: Sequence[int] | np.ndarray) -> "TopScores":
        rows = np.asarray(rows, dtype=np.int64)
        return TopScores(self.concept_ids[rows], self.cosines[rows], self.lse[rows], self.logit_scale, self.vocabulary_size)

    @classmethod
    def concat(cls, parts: Sequence["TopScores"], *, k: int, logit_scale: float, vocabulary_size: int) -> "TopScores":
        if not parts:
            return cls.empty(k, logit_scale, vocabulary_size)
        return cls(np.concatenate([p.concept_ids for p in parts]), np.concatenate([p.cosines for p in parts]),
                   np.concatenate([p.lse for p in parts]), logit_scale, vocabulary_size)

    @classmethod
    def empty(cls, k: int, logit_scale: float, vocabulary_size: int) -> "TopScores":
        return cls(np.zeros((0, k), np.uint32), np.zeros((0, k), np.float32), np.zeros(0, np.float32), logit_scale, vocabulary_size)


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero) in float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, np.float32(1e-12))


def cosine_scores(image_embeddings: np.ndarray, concept_embeddings: np.ndarray) -> np.ndarray:
    """(n, m) cosine similarities of every image with every concept."""
    return normalized(image_embeddings) @ normalized(concept_embeddings).T


def top_scores(image_embeddings: np.ndarray, concept_embeddings: np.ndarray, concept_ids: Sequence[int] | np.ndarray,
               *, logit_scale: float, k: int = DEFAULT_TOP_K) -> TopScores:
    """Score every image against every concept; keep the k best per image and the softmax normalizer.

    `concept_ids[j]` is the id of row j of concept_embeddings. Ties are broken by the lower row, so
    the result does not depend on the platform's sort."""
    if k < 1:
        raise RuleError("k (scores kept per image) must be at least 1")
    ids = np.asarray(concept_ids, dtype=np.uint32)
    cosines = cosine_scores(image_embeddings, concept_embeddings)
    n, m = cosines.shape
    if len(ids) != m:
        raise ValueError(f"{m} concept embeddings but {len(ids)} concept ids")
    logits = np.float32(logit_scale) * cosines
    peak = logits.max(axis=1, keepdims=True) if m else np.zeros((n, 1), np.float32)
    lse = (peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1))).astype(np.float32) if m else np.full(n, -np.inf, np.float32)
    keep = min(k, m)
    if keep < m:
        # argpartition finds the k best in O(m); only those k are then sorted.
        candidates = np.argpartition(-cosines, keep - 1, axis=1)[:, :keep]
    else:
        candidates = np.broadcast_to(np.arange(m), (n, m))
    candidate_scores = np.take_along_axis(cosines, candidates, axis=1)
    order = np.lexsort((candidates, -candidate_scores), axis=1) if n else np.zeros((0, keep), np.int64)
    best = np.take_along_axis(candidates, order, axis=1)
    # A vocabulary smaller than k keeps all its concepts: rows are then m long, not k.
    top_ids = ids[best].astype(np.uint32, copy=False)
    top_cos = np.take_along_axis(cosines, best, axis=1).astype(np.float32, copy=False)
    return TopScores(top_ids, top_cos, lse, float(logit_scale), m)


# --- hits and counts --------------------------------------------------------------------------------


@dataclass
class RuleHits:
    """What one rule makes of a shard's stored scores."""

    rule: str
    hits: list[tuple[str, list[int]]] = field(default_factory=list)  # (sample key, concept ids), images with hits only
    counts: dict[int, int] = field(default_factory=dict)             # concept id -> images that show it
    truncated: int = 0                                                # images that may have hits beyond the top-k


def apply_rule(rule: Rule, keys: Sequence[str], top: TopScores) -> RuleHits:
    """Hits and per-concept image counts of `rule` on the images `keys` (row i of top is keys[i])."""
    mask = rule.mask(top) & np.isfinite(top.cosines)
    result = RuleHits(str(rule), truncated=int(rule.truncated(top).sum()))
    rows = np.flatnonzero(mask.any(axis=1))
    for row in rows:
        # A concept appears once per image, so these ids are distinct; sorted for stable storage.
        result.hits.append((keys[row], sorted(int(c) for c in top.concept_ids[row][mask[row]])))
    hit_ids = top.concept_ids[mask]
    if hit_ids.size:
        ids, counts = np.unique(hit_ids, return_counts=True)
        result.counts = {int(c): int(n) for c, n in zip(ids, counts)}
    return result


@dataclass
class Matched:
    """Caption and image of the same samples, compared under one tagging rule."""

    rule: str
    counts: dict[int, int] = field(default_factory=dict)  # concept id -> samples whose caption and image both show it
    pairs: int = 0          # samples with a decoded image: the denominator of the misalignment degree
    misaligned: int = 0     # of those, samples whose caption concepts and image concepts do not intersect
    no_concepts: int = 0    # of the misaligned, samples with no concept on either side
    samples_with_hits: int = 0

    @property
    def misalignment(self) -> float:
        return self.misaligned / self.pairs if self.pairs else 0.0


def match_samples(rule: str, image_keys: Iterable[str], text_hits: Mapping[str, Sequence[int]],
                  image_hits: Mapping[str, Sequence[int]]) -> Matched:
    """Matched counts and misalignment over the samples whose image was decoded (`image_keys`).

    A sample is misaligned when its caption's concepts and its image's concepts do not intersect,
    the paper's "misalignment degree" (samples with no concept on either side included; they are
    also counted apart in `no_concepts`, for the stricter reading)."""
    result = Matched(rule)
    counts: dict[int, int] = {}
    for key in image_keys:
        result.pairs += 1
        text = text_hits.get(key, ())
        image = image_hits.get(key, ())
        both = set(text).intersection(image)
        if not both:
            result.misaligned += 1
            result.no_concepts += not text and not image
            continue
        result.samples_with_hits += 1
        for concept in both:
            counts[concept] = counts.get(concept, 0) + 1
    result.counts = dict(sorted(counts.items()))
    return result


# --- one shard's image stage -------------------------------------------------------------------------


@dataclass
class ImageShardResult(ShardResult):
    """The image stage's result for one shard. Beyond ShardResult (whose hits, counts and rule are
    the active rule's): the decoded images' keys and stored scores, and every rule's hits.
    `scores_attempt` is the attempt whose image_scores rows hold `top`: this attempt's own when the
    tagger wrote them, an earlier one for a retag."""

    keys: list[str] = field(default_factory=list)
    top: TopScores | None = None
    rules: dict[str, RuleHits] = field(default_factory=dict)  # rule string -> hits, the active rule first
    model_id: str = ""
    scores_attempt: str = ""

    @property
    def writes_scores(self) -> bool:
        return not self.scores_attempt or self.scores_attempt == self.attempt_id


def tag_shard(*, dataset: str, vocabulary_version: str, shard: str, keys: Sequence[str], top: TopScores,
              rules: Sequence[Rule], samples: int, skipped: Mapping[str, int] | None = None,
              notes: Mapping[str, int] | None = None, model_id: str = "", scores_attempt: str = "") -> ImageShardResult:
    """Apply every rule to the same stored scores; the first rule is the active one."""
    if not rules:
        raise RuleError("at least one tagging rule is needed")
    applied: dict[str, RuleHits] = {}
    for rule in rules:
        applied.setdefault(str(rule), apply_rule(rule, keys, top))
    active = applied[str(rules[0])]
    result = ImageShardResult(dataset, vocabulary_version, shard, IMAGE, samples=samples, skipped=dict(skipped or {}),
                              notes=dict(notes or {}), hits=active.hits, counts=active.counts, rule=active.rule,
                              keys=list(keys), top=top, rules=applied, model_id=model_id)
    result.scores_attempt = scores_attempt or result.attempt_id
    if active.truncated:
        result.notes["truncated"] = active.truncated
    return result
