"""The image side of the count store on ClickHouse 18.16 and chDB: scores, hits per rule, rule
selection, retag from stored scores, matched counts and misalignment (adapters/store/images.py)."""

from __future__ import annotations

import numpy as np
import pytest

from conceptfreq.core.counting import ShardResult
from conceptfreq.core.tagging import PerConceptRule, match_samples, parse_rule, tag_shard, top_scores
from conceptfreq.tagger.retag import Retag

V = "v1"
N_CONCEPTS = 60


def shard_scores(seed: int, n: int = 40):
    rng = np.random.default_rng(seed)
    concepts = rng.normal(size=(N_CONCEPTS, 12)).astype(np.float32)
    images = concepts[rng.integers(0, N_CONCEPTS, n)] * 0.25 + rng.normal(size=(n, 12)).astype(np.float32)
    keys = [f"{seed:02d}{i:04d}" for i in range(n)]
    return keys, top_scores(images, concepts, np.arange(100, 100 + N_CONCEPTS), logit_scale=20.0, k=8)


def tag(store, shard: int, rules, **kwargs):
    keys, top = shard_scores(shard)
    result = tag_shard(dataset="ds", vocabulary_version=V, shard=f"s{shard}", keys=keys, top=top, rules=rules,
                       samples=len(keys) + 2, skipped={"undecodable": 2}, notes={"converted_cmyk": 1}, model_id="m/x", **kwargs)
    store.write_image_shard(result)
    return result


def expected(rule_text: str, shards=(0, 1, 2)) -> dict[int, int]:
    totals: dict[int, int] = {}
    for shard in shards:
        keys, top = shard_scores(shard)
        for concept, n in tag_shard(dataset="ds", vocabulary_version=V, shard="x", keys=keys, top=top, samples=0,
                                    rules=[parse_rule(rule_text)]).counts.items():
            totals[concept] = totals.get(concept, 0) + n
    return totals


def image_counts(store, rule: str | None = None) -> dict[int, int]:
    rules = {"image": rule} if rule else None
    return {c: k["image"] for c, k in store.frequencies("ds", V, rules=rules).items() if k["image"]}


def test_image_attempts_round_trip_their_scores_and_hits(store):
    rule = parse_rule("softmax:p=0.5")
    store.record_rule("ds", V, rule)
    written = tag(store, 0, [rule, parse_rule("topk:k=2")])
    attempts = store.visible_image_attempts("ds", V)
    attempt = attempts["s0"]
    assert attempt.attempt_id == attempt.scores_attempt == written.attempt_id
    assert attempt.rules == ["softmax:p=0.5", "topk:k=2"] and attempt.top_k == 8 and attempt.vocabulary_size == N_CONCEPTS
    assert (attempt.samples, attempt.skipped, attempt.notes) == (42, {"undecodable": 2}, {"converted_cmyk": 1})
    assert attempt.model_id == "m/x" and attempt.logit_scale == pytest.approx(20.0)
    keys, top = store.read_scores("ds", V, attempt)
    order = np.argsort(written.keys)
    assert keys == sorted(written.keys)
    np.testing.assert_array_equal(top.concept_ids, written.top.concept_ids[order])
    np.testing.assert_array_equal(top.cosines, written.top.cosines[order])  # float32 survives the round trip exactly
    np.testing.assert_array_equal(top.lse, written.top.lse[order])
    assert sorted(store.image_keys("ds", V, "s0", attempt.scores_attempt)) == sorted(written.keys)
    hits = store.image_hits("ds", V, "s0", attempt.attempt_id)
    assert hits["softmax:p=0.5"] == dict(written.rules["softmax:p=0.5"].hits)
    assert sum(len(v) for v in hits["topk:k=2"].values()) == 2 * len(written.keys)


def test_counts_are_read_under_the_active_rule_and_old_rules_stay_queryable(store):
    first, second = parse_rule("softmax:p=0.5"), parse_rule("softmax:p=0.2")
    assert store.ensure_rule("ds", V, first) == [first]
    for shard in (0, 1, 2):
        tag(store, shard, [first])
    assert store.active_rule("ds", V) == str(first)
    assert image_counts(store) == expected(str(first))
    report = Retag(store, "ds", V, second, recount=None).run()
    assert (report.shards, report.retagged, report.previous) == (3, 3, str(first))
    assert report.images == 120 and report.truncated == 0 and report.inexact_k == []
    assert store.active_rule("ds", V) == str(second) and store.tagging_rules("ds", V) == [str(second), str(first)]
    assert image_counts(store) == expected(str(second)) != expected(str(first))
    assert image_counts(store, str(first)) == expected(str(first))
    # A tagger restarted with its old configured rule does not undo the retag.
    assert [str(r) for r in store.ensure_rule("ds", V, first)] == [str(second), str(first)]
    # Repeating is harmless: every shard already carries the rule.
    again = Retag(store, "ds", V, second, recount=None).run()
    assert again.retagged == 0 and image_counts(store) == expected(str(second))
    # Going back re-activates the first rule without rewriting anything.
    Retag(store, "ds", V, first, recount=None).run()
    assert store.active_rule("ds", V) == str(first) and image_counts(store) == expected(str(first))


def test_retag_equals_tagging_under_the_new_rule(store):
    rule = parse_rule("cosine:t=0.6")
    for shard in (0, 1):
        tag(store, shard, [parse_rule("softmax:p=0.5")])
    store.record_rule("ds", V, parse_rule("softmax:p=0.5"))
    Retag(store, "ds", V, rule, recount=None).run()
    retagged = store.visible_image_attempts("ds", V)
    for shard in (0, 1):
        fresh = tag_shard(dataset="ds", vocabulary_version=V, shard=f"s{shard}", keys=shard_scores(shard)[0],
                          top=shard_scores(shard)[1], samples=0, rules=[rule])
        stored = store.image_hits("ds", V, f"s{shard}", retagged[f"s{shard}"].attempt_id)
        assert stored[str(rule)] == dict(fresh.hits)
        # the retag attempt points at the tagger's scores instead of copying them
        assert retagged[f"s{shard}"].scores_attempt != retagged[f"s{shard}"].attempt_id


def test_per_concept_rules_are_recorded_with_their_thresholds(store):
    rule = PerConceptRule({100 + c: 0.3 for c in range(0, N_CONCEPTS, 2)}, default=0.9)
    store.record_rule("ds", V, rule)
    (back,) = store.recorded_rules("ds", V)
    assert back == rule and back.thresholds == rule.thresholds and back.default == 0.9


def test_matched_counts_and_misalignment_follow_the_matched_attempt(store):
    rule = parse_rule("topk:k=1")
    written = tag(store, 0, [rule])
    store.record_rule("ds", V, rule)
    image_hits = dict(written.rules[str(rule)].hits)
    text = {key: concepts + [999] for key, concepts in list(image_hits.items())[:10]}  # 10 aligned samples
    text.update({"000020": [1], "nokey": [2]})
    text_result = ShardResult("ds", V, "s0", "text", samples=42, hits=sorted(text.items()),
                              counts={c: 1 for v in text.values() for c in v}, rule="phrase")
    store.write_shard(text_result)
    assert store.text_hits("ds", V, "s0", text_result.attempt_id) == text
    matched = match_samples(str(rule), written.keys, text, image_hits)
    store.write_matched("ds", V, "s0", [matched])
    store.write_matched("ds", V, "s0", [matched])  # a redone matched stage replaces, never adds
    (row,) = store.misalignment("ds", V)
    assert (row.rule, row.shards, row.pairs, row.misaligned) == (str(rule), 1, 40, 30)
    counts = store.frequencies("ds", V)
    assert sum(k["matched"] for k in counts.values()) == 10
    assert sum(k["text"] for k in counts.values()) == sum(text_result.counts.values())


def test_the_report_source_reads_the_stored_misalignment(store):
    """What `status` prints is what a report shows: the active rule's degree first, every rule beside it."""
    from conceptfreq.reporter.store_source import StoreSource

    source = StoreSource(store)
    assert source.misalignment("ds") is None  # nothing matched yet
    first, second = parse_rule("topk:k=1"), parse_rule("topk:k=2")
    written = tag(store, 0, [first, second])
    store.record_rule("ds", V, first)
    store.record_rule("ds", V, second)  # recorded last: the active rule
    text = {key: [999] for key in written.keys[:8]}  # captions that share no concept with their image
    store.write_shard(ShardResult("ds", V, "s0", "text", samples=len(written.keys), hits=sorted(text.items()),
                                  counts={999: len(text)}, rule="phrase"))
    matched = [match_samples(str(r), written.keys, text, dict(written.rules[str(r)].hits)) for r in (second, first)]
    store.write_matched("ds", V, "s0", matched)
    found = source.misalignment("ds")
    assert found["rule"] == str(second)
    assert [r["rule"] for r in found["rules"]] == [str(second), str(first)]
    by_rule = {m.rule: m for m in store.misalignment("ds", V)}
    assert found["degree"] == round(by_rule[str(second)].degree, 6) and found["pairs"] == by_rule[str(second)].pairs > 0
