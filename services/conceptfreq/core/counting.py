"""Turning one shard's samples into its text hits and per-concept counts (pure: no I/O)."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Protocol

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
    hits: list[tuple[str, list[int]]] = field(default_factory=list)  # (sample key, concept ids), samples with hits only
    counts: dict[int, int] = field(default_factory=dict)  # concept id -> samples that hit it
    rule: str = ""  # matching method or tagging rule the hits were made under
    captions_from: str = ""  # text stage: "" the shard itself, "sidecar" an img2dataset tar's parquet
    attempt_id: str = field(default_factory=lambda: uuid.uuid4().hex)

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
    counts: Counter[int] = Counter()
    ambiguous: Counter[int] = Counter()  # phrase+pos: (caption, concept) hits whose sense it could not tell
    for batch in batches:
        result.samples += len(batch)
        skipped.update(batch.problems.values())
        keys, captions = batch.keys, batch.captions
        dropped = set(batch.problems)
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
        if dropped:
            kept = [i for i in range(len(keys)) if i not in dropped]
            keys, captions = [keys[i] for i in kept], [captions[i] for i in kept]
        invalid_utf8 += len(batch.invalid_utf8) - len(dropped.intersection(batch.invalid_utf8))
        if not captions:
            continue
        hits = matcher.match(captions)
        result.hits.extend((keys[index], concepts) for index, concepts in hits.grouped())
        counts.update(hits.counts())
        ambiguous.update(getattr(hits, "ambiguous", {}))
    result.skipped = dict(skipped)
    result.counts = dict(counts)
    if invalid_utf8:
        result.notes["invalid_utf8"] = invalid_utf8
    if ambiguous:
        result.notes["ambiguous"] = sum(ambiguous.values())
    return result
