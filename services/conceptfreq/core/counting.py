"""Turning one shard's samples into its text hits and per-concept counts (pure: no I/O)."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Protocol, Sequence

import numpy as np

from conceptfreq.core.matching import Hits

# Shard states in the ledger.
PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
STATES = (PENDING, RUNNING, DONE, FAILED)

# Count kinds; `matched` is text and image together for the same sample.
TEXT, IMAGE, MATCHED = "text", "image", "matched"
KINDS = (TEXT, IMAGE, MATCHED)

# The count the paper reports for each kind (its figures use RAM++ at 0.7): the rule its imported
# counts are read under by default (core/rules.py).
PAPER_RULES = {TEXT: "lemmatized", IMAGE: "rampp0.7", MATCHED: "integrated_tlemmatized_i0.7"}

# Longer "captions" are page dumps or base64 blobs, not alt-text; matching them would only add noise.
MAX_CAPTION_BYTES = 64 * 1024


class CaptionSample(Protocol):
    key: str
    caption: str | None
    invalid_utf8: bool
    problem: str | None


class Matcher(Protocol):
    name: str

    def match(self, captions: list[str]) -> Hits: ...


class SampleHits:
    """The samples of a shard that hit a concept, as columns: sample `sample_keys[i]` hits the concept ids
    `concepts[offsets[i]:offsets[i + 1]]` (ascending). Built straight from the matcher's arrays, so
    the text stage makes no Python list per sample, and it pickles as two numpy buffers and a list of
    keys (what worker processes send the writing parent). Iterating gives (key, [concept ids]) pairs,
    what the row-shaped readers of the old list of tuples expect, so `dict(hits)` is {key: ids}. (The keys
    are not called `keys`: dict() would take an object with a `keys` attribute for a mapping.)"""

    __slots__ = ("sample_keys", "offsets", "concepts")

    def __init__(self, keys: list[str] | None = None, offsets: np.ndarray | None = None, concepts: np.ndarray | None = None):
        self.sample_keys = [] if keys is None else keys if isinstance(keys, list) else list(keys)
        self.offsets = np.zeros(len(self.sample_keys) + 1, np.int64) if offsets is None else np.asarray(offsets, np.int64)
        self.concepts = np.zeros(0, np.uint32) if concepts is None else np.asarray(concepts, np.uint32)
        if len(self.offsets) != len(self.sample_keys) + 1 or self.offsets[0] != 0 or self.offsets[-1] != len(self.concepts):
            raise ValueError("offsets must run from 0 to len(concepts), one more than there are keys")

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, Sequence[int]]]) -> "SampleHits":
        """From (sample key, concept ids) pairs (the tagger's rows, tests)."""
        keys: list[str] = []
        lengths: list[int] = []
        flat: list[int] = []
        for key, concepts in pairs:
            keys.append(key)
            lengths.append(len(concepts))
            flat.extend(concepts)
        offsets = np.zeros(len(keys) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(keys, offsets, np.array(flat, np.uint32))

    @classmethod
    def from_hits(cls, hits: Hits, keys: Sequence[str]) -> "SampleHits":
        """One batch's matcher output; `keys[i]` is the key of caption i of the batch. Hits' arrays are
        grouped by caption (sorted), so a sample's run starts wherever the caption index changes."""
        caption = hits.caption
        if caption.size == 0:
            return cls()
        starts = np.flatnonzero(np.concatenate(([True], caption[1:] != caption[:-1])))
        rows = caption[starts].tolist()
        offsets = np.empty(len(rows) + 1, np.int64)
        offsets[:-1], offsets[-1] = starts, caption.size
        return cls([keys[i] for i in rows], offsets, hits.concept.astype(np.uint32))

    @classmethod
    def concat(cls, parts: Sequence["SampleHits"]) -> "SampleHits":
        parts = [p for p in parts if len(p)]
        if len(parts) <= 1:
            return parts[0] if parts else cls()
        keys = [k for p in parts for k in p.sample_keys]
        bases = np.cumsum([0] + [len(p.concepts) for p in parts[:-1]])
        offsets = np.concatenate([np.zeros(1, np.int64)] + [p.offsets[1:] + base for p, base in zip(parts, bases)])
        return cls(keys, offsets, np.concatenate([p.concepts for p in parts]))

    def __len__(self) -> int:
        return len(self.sample_keys)

    def lists(self) -> list[list[int]]:
        """Each sample's concept ids as a Python list (for row-shaped writers and readers)."""
        flat = self.concepts.tolist()
        bounds = self.offsets.tolist()
        return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def __iter__(self) -> Iterator[tuple[str, list[int]]]:
        return iter(zip(self.sample_keys, self.lists()))

    def __eq__(self, other) -> bool:
        if isinstance(other, SampleHits):
            return (self.sample_keys == other.sample_keys and np.array_equal(self.offsets, other.offsets)
                    and np.array_equal(self.concepts, other.concepts))
        try:
            return list(self) == [(k, list(c)) for k, c in other]
        except TypeError:
            return NotImplemented

    __hash__ = None  # mutable, compared by value

    def __repr__(self) -> str:
        return f"SampleHits({len(self.sample_keys)} samples, {len(self.concepts)} hits)"

    def __getstate__(self):
        return self.sample_keys, self.offsets, self.concepts

    def __setstate__(self, state) -> None:
        self.sample_keys, self.offsets, self.concepts = state


@dataclass
class ShardResult:
    """Everything one stage wrote for one shard. `attempt_id` names this write; the ledger points
    at the visible attempt, so writing a shard again replaces the old rows instead of adding."""

    dataset: str
    vocabulary_version: str
    shard: str
    stage: str
    samples: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)  # counted, yet the sample was used (e.g. invalid UTF-8)
    # Samples with hits only. (key, concept ids) pairs given here are turned into columns.
    hits: SampleHits = field(default_factory=SampleHits)
    counts: dict[int, int] = field(default_factory=dict)  # concept id -> samples that hit it
    rule: str = ""  # matching method or tagging rule the hits were made under
    captions_from: str = ""  # text stage: "shard" itself or "sidecar" (an img2dataset tar's parquet)
    attempt_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if not isinstance(self.hits, SampleHits):
            self.hits = SampleHits.from_pairs(self.hits)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


def skip_reason(sample: CaptionSample) -> str | None:
    if sample.problem:
        return sample.problem
    caption = sample.caption
    if caption is None:
        return "no_caption"
    if not caption.strip():
        return "empty_caption"
    if _too_long(caption):
        return "caption_too_long"
    return None


@dataclass(slots=True)
class CaptionBatch:
    """Consecutive samples of one shard, column by column: what shard readers hand the text stage.
    A Python object per sample would cost more than matching its caption does."""

    keys: list[str] = field(default_factory=list)
    captions: list[str | None] = field(default_factory=list)  # stripped; None where `problems` says why there is none
    problems: dict[int, str] = field(default_factory=dict)  # index -> no_caption | empty_caption | bad_json
    invalid_utf8: list[int] = field(default_factory=list)  # indices whose caption had undecodable bytes (replaced)

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: str, caption: str | None, problem: str | None = None, invalid_utf8: bool = False) -> None:
        index = len(self.keys)
        self.keys.append(key)
        self.captions.append(None if problem else caption)
        if problem:
            self.problems[index] = problem
        if invalid_utf8:
            self.invalid_utf8.append(index)


def batches_of(samples: Iterable[CaptionSample], size: int = 8192) -> Iterator[CaptionBatch]:
    """Samples regrouped as CaptionBatches (for readers that yield one sample at a time)."""
    batch = CaptionBatch()
    for sample in samples:
        batch.add(sample.key, sample.caption, sample.problem, sample.invalid_utf8)
        if len(batch) >= size:
            yield batch
            batch = CaptionBatch()
    if len(batch):
        yield batch


def _all_usable(captions: list) -> bool:
    """True when no caption is None, blank or too long: the usual batch, checked with C-level passes
    (map, max, `in`) instead of a Python step per caption; any other batch takes the exact loop."""
    if not captions or None in captions or "" in captions:
        return not captions
    return max(map(len, captions)) * 4 <= MAX_CAPTION_BYTES and not any(map(str.isspace, captions))


def _drop_unusable(captions: list, dropped: set[int], skipped: Counter[str]) -> None:
    """Add each caption that cannot be matched to `dropped`, and its reason to `skipped` (one its
    reader already dropped, in `dropped` on the way in, was counted with the reader's reason)."""
    for index, caption in enumerate(captions):
        if caption is None:
            reason = None if index in dropped else "no_caption"
        elif not caption or caption.isspace():
            reason = "empty_caption"
        else:
            reason = "caption_too_long" if _too_long(caption) else None
        if reason:
            skipped[reason] += 1
            dropped.add(index)


def _too_long(caption: str) -> bool:
    # A UTF-8 character is at most 4 bytes: only long strings need the exact (costly) byte count.
    return len(caption) * 4 > MAX_CAPTION_BYTES and len(caption.encode("utf-8", "surrogatepass")) > MAX_CAPTION_BYTES


def count_text(samples: Iterable[CaptionSample], matcher: Matcher, *, dataset: str, vocabulary_version: str,
               shard: str, batch_size: int = 8192) -> ShardResult:
    """Match every usable caption of a shard's samples; count skipped samples by reason."""
    return count_caption_batches(batches_of(samples, batch_size), matcher, dataset=dataset,
                                 vocabulary_version=vocabulary_version, shard=shard)


def count_caption_batches(batches: Iterable[CaptionBatch], matcher: Matcher, *, dataset: str, vocabulary_version: str,
                          shard: str) -> ShardResult:
    """Match every usable caption of a shard; count skipped samples by reason (see skip_reason)."""
    result = ShardResult(dataset, vocabulary_version, shard, stage=TEXT, rule=matcher.name)
    skipped: Counter[str] = Counter()
    invalid_utf8 = 0
    parts: list[SampleHits] = []
    ambiguous: Counter[int] = Counter()  # phrase+pos: (caption, concept) hits whose sense it could not tell
    for batch in batches:
        result.samples += len(batch)
        skipped.update(batch.problems.values())
        keys, captions = batch.keys, batch.captions
        dropped = set(batch.problems)
        if not _all_usable(captions):
            _drop_unusable(captions, dropped, skipped)
        if dropped:
            kept = [i for i in range(len(keys)) if i not in dropped]
            keys, captions = [keys[i] for i in kept], [captions[i] for i in kept]
        invalid_utf8 += len(batch.invalid_utf8) - len(dropped.intersection(batch.invalid_utf8))
        if not captions:
            continue
        hits = matcher.match(captions)
        parts.append(SampleHits.from_hits(hits, keys))
        ambiguous.update(getattr(hits, "ambiguous", {}))
    result.hits = SampleHits.concat(parts)
    result.skipped = dict(skipped)
    # A concept is at most once per sample in the hits, so its occurrences are its sample count.
    ids, counts = np.unique(result.hits.concepts, return_counts=True)
    result.counts = dict(zip(ids.tolist(), counts.tolist()))
    if invalid_utf8:
        result.notes["invalid_utf8"] = invalid_utf8
    if ambiguous:
        result.notes["ambiguous"] = sum(ambiguous.values())
    return result
