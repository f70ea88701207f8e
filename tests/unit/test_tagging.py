"""Scoring, top-k, rules and matched counts (core/tagging.py, core/tagging_rules.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conceptfreq.core.tagging import (DEFAULT_RULE, TAGGING_RULES, PerConceptRule, RuleError, TopScores, apply_rule,
                                      match_samples, parse_rule, parse_thresholds, rule_from_json, tag_shard, top_scores)


def embeddings(seed: int, n: int, m: int, d: int = 16):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.normal(size=(m, d)).astype(np.float32)


def full_softmax(images, concepts, scale):
    images = images / np.linalg.norm(images, axis=1, keepdims=True)
    concepts = concepts / np.linalg.norm(concepts, axis=1, keepdims=True)
    logits = scale * (images @ concepts.T).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return images @ concepts.T, p / p.sum(axis=1, keepdims=True)


def test_top_scores_are_the_k_best_cosines_in_order_with_ids_mapped():
    images, concepts = embeddings(0, 20, 50)
    ids = np.arange(1000, 1050)
    top = top_scores(images, concepts, ids, logit_scale=100.0, k=5)
    cosines, _ = full_softmax(images, concepts, 100.0)
    expected = np.argsort(-cosines, axis=1, kind="stable")[:, :5]
    assert top.concept_ids.dtype == np.uint32 and top.concept_ids.shape == (20, 5)
    np.testing.assert_array_equal(top.concept_ids, ids[expected])
    np.testing.assert_allclose(top.cosines, np.take_along_axis(cosines, expected, 1), atol=1e-6)
    assert np.all(np.diff(top.cosines, axis=1) <= 0)


def test_stored_probabilities_equal_the_full_vocabulary_softmax():
    images, concepts = embeddings(1, 30, 400)
    top = top_scores(images, concepts, np.arange(400), logit_scale=100.0, k=8)
    _, p = full_softmax(images, concepts, 100.0)
    expected = np.take_along_axis(p, top.concept_ids.astype(np.int64), 1)
    np.testing.assert_allclose(top.probabilities(), expected, rtol=1e-4, atol=1e-7)


def test_vocabulary_smaller_than_k_keeps_every_concept():
    images, concepts = embeddings(2, 4, 3)
    top = top_scores(images, concepts, [7, 8, 9], logit_scale=10.0, k=32)
    assert top.k == 3 and top.vocabulary_size == 3
    assert sorted(top.concept_ids[0].tolist()) == [7, 8, 9]
    assert not apply_rule(parse_rule("cosine:t=-1"), ["a", "b", "c", "d"], top).truncated


def test_rule_strings_are_stable_and_parse_back():
    for text, canonical in [("softmax:p=.50", "softmax:p=0.5"), ("softmax: p = 0.25", "softmax:p=0.25"),
                            ("cosine:t=0.3", "cosine:t=0.3"), ("topk:k=3", "topk:k=3"), ("topk:k=3.0", "topk:k=3")]:
        rule = parse_rule(text)
        assert str(rule) == canonical
        assert parse_rule(str(rule)) == rule
        assert rule_from_json(rule.to_json()) == rule
    assert DEFAULT_RULE == "softmax:p=0.5" and str(parse_rule(DEFAULT_RULE)) == DEFAULT_RULE
    assert set(TAGGING_RULES) == {"softmax", "cosine", "topk", "per-concept"}


@pytest.mark.parametrize("text, message", [
    ("sigmoid:p=0.5", "unknown tagging rule"), ("softmax", "needs p="), ("softmax:p=2", "between"),
    ("softmax:p=x", "not a number"), ("softmax:p=0.5,q=1", "unknown parameters"), ("topk:k=2.5", "whole number"),
    ("softmax:p", "key=value"), ("per-concept:score=cosine", "from a file"),
])
def test_bad_rules_say_what_to_fix(text, message):
    with pytest.raises(RuleError, match=message):
        parse_rule(text)


def test_softmax_rule_hits_equal_the_full_softmax_threshold():
    images, concepts = embeddings(3, 200, 300, d=8)
    top = top_scores(images, concepts, np.arange(300), logit_scale=100.0, k=32)
    _, p = full_softmax(images, concepts, 100.0)
    for threshold in (0.05, 0.2, 0.5, 0.9):
        rule = parse_rule(f"softmax:p={threshold}")
        assert rule.exact_within(32)
        hits = apply_rule(rule, [str(i) for i in range(200)], top)
        expected = {str(i): sorted(np.flatnonzero(p[i] >= threshold).tolist()) for i in range(200) if (p[i] >= threshold).any()}
        got = dict(hits.hits)
        assert set(got) == set(expected)
        # float32 against float64: a probability a hair from the threshold may fall either way
        for key in expected:
            border = np.abs(p[int(key)] - threshold) < 1e-5
            assert set(got[key]) ^ set(expected[key]) <= set(np.flatnonzero(border).tolist())
        assert sum(hits.counts.values()) == sum(len(v) for v in got.values())
        assert hits.truncated == 0


def test_softmax_exactness_bound_is_floor_one_over_p():
    assert parse_rule("softmax:p=0.5").exact_within(2)
    assert not parse_rule("softmax:p=0.3").exact_within(2)
    assert parse_rule("softmax:p=0.0304").exact_within(32)   # floor(1/0.0304) = 32
    assert not parse_rule("softmax:p=0.03").exact_within(32)  # 33 concepts could reach 0.03


def test_cosine_and_topk_rules_and_truncation():
    keys = ["a", "b"]
    top = TopScores(np.array([[5, 6, 7], [8, 9, 10]], np.uint32), np.array([[0.9, 0.5, 0.4], [0.3, 0.2, 0.1]], np.float32),
                    np.zeros(2, np.float32), 100.0, vocabulary_size=50)
    hits = apply_rule(parse_rule("cosine:t=0.4"), keys, top)
    assert hits.hits == [("a", [5, 6, 7])] and hits.counts == {5: 1, 6: 1, 7: 1}
    assert hits.truncated == 1  # a's third score still clears 0.4: a fourth concept might too
    assert apply_rule(parse_rule("topk:k=2"), keys, top).hits == [("a", [5, 6]), ("b", [8, 9])]
    assert apply_rule(parse_rule("topk:k=5"), keys, top).truncated == 2


def test_per_concept_thresholds_from_a_file_and_their_rule_string():
    names = {"dog": 5, "cat": 9}
    thresholds = parse_thresholds("concept,threshold\ndog,0.45\n# cats are easy\ncat,0.15\n7,0.35\n", names.get)
    assert thresholds == {5: 0.45, 9: 0.15, 7: 0.35}
    assert parse_thresholds('{"dog": 0.45, "9": 0.15, "7": 0.35}', names.get) == thresholds
    rule = PerConceptRule(thresholds)
    assert str(rule).startswith("per-concept:default=none,score=cosine,sha256=") and len(rule.digest) == 12
    assert rule_from_json(rule.to_json()) == rule and rule_from_json(rule.to_json()).thresholds == thresholds
    top = TopScores(np.array([[5, 6, 7], [9, 8, 10]], np.uint32), np.array([[0.5, 0.4, 0.3], [0.2, 0.1, 0.05]], np.float32),
                    np.zeros(2, np.float32), 100.0, vocabulary_size=3)
    assert apply_rule(rule, ["a", "b"], top).hits == [("a", [5]), ("b", [9])]  # 7 is under its 0.35, 6 has none
    assert apply_rule(PerConceptRule(thresholds, default=0.35), ["a", "b"], top).hits == [("a", [5, 6]), ("b", [9])]
    with pytest.raises(RuleError, match="not in the vocabulary: 'cow'"):
        parse_thresholds("cow,0.3", names.get)
    with pytest.raises(RuleError, match="no thresholds"):
        parse_thresholds("# nothing\n", names.get)


def test_tag_shard_applies_every_rule_to_the_same_scores_active_first():
    images, concepts = embeddings(4, 10, 40)
    top = top_scores(images, concepts, np.arange(40), logit_scale=100.0)
    keys = [f"k{i}" for i in range(10)]
    result = tag_shard(dataset="d", vocabulary_version="v", shard="s", keys=keys, top=top, samples=12,
                       skipped={"undecodable": 2}, rules=[parse_rule("topk:k=2"), parse_rule("softmax:p=0.5")])
    assert list(result.rules) == ["topk:k=2", "softmax:p=0.5"]
    assert result.rule == "topk:k=2" and result.stage == "image" and sum(result.counts.values()) == 20
    assert result.writes_scores and result.skipped_total == 2 and result.samples == 12


def test_matched_counts_are_the_per_sample_intersection_and_misalignment_counts_the_rest():
    text = {"a": [1, 2], "b": [3], "d": [4]}
    image = {"a": [2, 5], "b": [6], "c": [7]}
    matched = match_samples("softmax:p=0.5", ["a", "b", "c", "e"], text, image)
    assert matched.counts == {2: 1}
    assert (matched.pairs, matched.misaligned, matched.no_concepts, matched.samples_with_hits) == (4, 3, 1, 1)
    assert math.isclose(matched.misalignment, 0.75)
    # a caption whose image was not decoded ("d") is not a pair
    assert match_samples("r", [], text, image).pairs == 0
