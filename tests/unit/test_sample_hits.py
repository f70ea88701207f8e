"""The text stage's hits as columns (core/counting.py: SampleHits): the same hits and counts as the
(key, concept ids) pairs the matcher's `grouped()` gives, and cheap to send between processes."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest

from conceptfreq.core.counting import CaptionBatch, SampleHits, ShardResult, count_caption_batches
from conceptfreq.core.matching import PhraseMatcher
from conceptfreq.core.vocabulary import from_names

VOCABULARY = from_names([["dog"], ["cat"], ["great white shark"], ["white shark"], ["shark"], ["car"], ["sports car"],
                         ["person", "people"], ["café"]])
MATCHER = PhraseMatcher(VOCABULARY)
CAPTIONS = ["a dog and a cat", "nothing here", "a great white shark", None, "", "people in a café", "   ",
            "red sports car, red car", "dogs dogs dogs", "a cat", "x" * 70_000, "the shark and the car"]


def batches(size: int) -> list[CaptionBatch]:
    out, batch = [], CaptionBatch()
    for i, caption in enumerate(CAPTIONS):
        batch.add(f"k{i:02d}", caption, problem="no_caption" if caption is None else None)
        if len(batch) == size:
            out.append(batch)
            batch = CaptionBatch()
    return out + ([batch] if len(batch) else [])


def reference(size: int) -> tuple[list[tuple[str, list[int]]], Counter]:
    """What the text stage made before its hits were columns: the matcher's grouped pairs, batch by batch."""
    pairs, counts = [], Counter()
    for batch in batches(size):
        kept = [i for i, c in enumerate(batch.captions) if c and not c.isspace() and len(c) < 64 * 1024]
        if not kept:
            continue
        hits = MATCHER.match([batch.captions[i] for i in kept])
        pairs += [(batch.keys[kept[i]], concepts) for i, concepts in hits.grouped()]
        counts.update(hits.counts())
    return pairs, counts


@pytest.mark.parametrize("size", [1, 3, 5, 100])
def test_column_hits_equal_the_grouped_pairs(size):
    result = count_caption_batches(batches(size), MATCHER, dataset="d", vocabulary_version="v", shard="s")
    pairs, counts = reference(size)
    assert pairs, "the captions must hit something for this test to mean anything"
    assert list(result.hits) == pairs
    assert dict(result.hits) == dict(pairs)
    assert result.counts == dict(counts)
    assert len(result.hits) == len(pairs) and result.samples == len(CAPTIONS)
    assert result.skipped == {"no_caption": 1, "empty_caption": 2, "caption_too_long": 1}
    assert result.hits.concepts.dtype == np.uint32 and result.hits.offsets.dtype == np.int64


def test_pairs_given_to_a_result_become_columns():
    pairs = [("a", [5, 6, 7]), ("b", [9]), ("c\x00\n\"'\\é", [4_294_967_295])]
    result = ShardResult("d", "v", "s", "text", hits=pairs)
    assert isinstance(result.hits, SampleHits)
    assert result.hits.sample_keys == ["a", "b", "c\x00\n\"'\\é"]
    assert result.hits.offsets.tolist() == [0, 3, 4, 5]
    assert result.hits.concepts.tolist() == [5, 6, 7, 9, 4_294_967_295]
    assert result.hits == pairs and list(result.hits) == pairs
    assert ShardResult("d", "v", "s", "text").hits == []


def test_concat_and_pickle_keep_every_hit():
    a = SampleHits.from_pairs([("a", [1, 2]), ("b", [3])])
    b = SampleHits.from_pairs([])
    c = SampleHits.from_pairs([("c", [4, 5, 6])])
    joined = SampleHits.concat([a, b, c])
    assert list(joined) == [("a", [1, 2]), ("b", [3]), ("c", [4, 5, 6])]
    assert joined.offsets.tolist() == [0, 2, 3, 6]
    assert pickle.loads(pickle.dumps(joined)) == joined
    assert len(SampleHits.concat([])) == 0


def test_offsets_that_do_not_fit_the_concepts_are_refused():
    with pytest.raises(ValueError):
        SampleHits(["a"], np.array([0, 3]), np.array([1, 2], np.uint32))


@pytest.mark.parametrize("captions, usable", [
    ([], True), (["a dog", "a cat"], True), (["a dog", None], False), (["a dog", ""], False), (["\u3000"], False),
    (["a dog", " \t"], False), (["x" * 16_384], True), (["x" * 70_000], False), (["é" * 16_385], False)])
def test_a_batch_skips_the_per_caption_check_only_when_every_caption_is_usable(captions, usable):
    from conceptfreq.core.counting import _all_usable

    assert _all_usable(captions) is usable
