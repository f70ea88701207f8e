"""The count store, with identical assertions on the ClickHouse 18.16 server and embedded chDB."""

from __future__ import annotations

import pytest

from conceptfreq.adapters.store import open_store
from conceptfreq.adapters.store.migrations import MIGRATIONS
from conceptfreq.core.counting import ShardResult
from conceptfreq.core.vocabulary import from_names
from conceptfreq.errors import UserError

VOCAB = from_names([["dog"], ["cat"], ["great white shark", "white pointer"]])
V = VOCAB.version


def result(shard: str, counts: dict[int, int], hits=None, samples=10, **extra) -> ShardResult:
    return ShardResult("ds", V, shard, "text", samples=samples, counts=counts, hits=hits or [], rule="phrase", **extra)


def test_migrations_apply_once(store):
    assert store.schema_version() == max(m.version for m in MIGRATIONS)
    assert store.migrate() == []  # already applied: nothing to do


def test_vocabulary_round_trip(store):
    store.save_vocabulary(VOCAB)
    store.save_vocabulary(VOCAB)  # idempotent
    loaded = store.load_vocabulary(V)
    assert loaded.version == V and [c.names for c in loaded] == [c.names for c in VOCAB]
    assert store.load_vocabulary("nope") is None


def test_counts_sum_over_done_shards(store):
    store.write_shard(result("s0", {0: 3, 1: 1}))
    store.write_shard(result("s1", {0: 2, 2: 5}, samples=7))
    assert store.frequencies("ds", V) == {0: {"text": 5, "image": 0, "matched": 0}, 1: {"text": 1, "image": 0, "matched": 0},
                                          2: {"text": 5, "image": 0, "matched": 0}}
    assert store.frequencies("ds", V, [2]) == {2: {"text": 5, "image": 0, "matched": 0}}
    assert store.samples_counted("ds", V) == 17


def test_writing_a_shard_again_replaces_it(store):
    store.write_shard(result("s0", {0: 3, 1: 1}, hits=[("a", [0, 1]), ("b", [0])]))
    store.write_shard(result("s0", {0: 1}, hits=[("a", [0])]))  # concept 1 vanished: must not linger
    store.write_shard(result("s0", {0: 1}, hits=[("a", [0])]))
    assert store.frequencies("ds", V) == {0: {"text": 1, "image": 0, "matched": 0}}
    assert store.text_hits("ds", V, "s0") == {"a": [0]}
    assert store.samples_counted("ds", V) == 10


def test_rows_without_a_done_ledger_entry_are_invisible(store):
    """A crash between the data insert and the ledger row must not count anything."""
    store.write_shard(result("s0", {0: 3}))
    crashed = result("s0", {0: 100})
    store._insert("shard_counts", ["dataset", "vocabulary_version", "shard", "stage", "attempt_id", "kind", "rule", "concept_id", "count"],
                 [("ds", V, "s0", "text", crashed.attempt_id, "text", "phrase", 0, 100)])
    assert store.frequencies("ds", V)[0]["text"] == 3


def test_failed_shard_hides_its_old_counts_and_keeps_the_reason(store):
    store.write_shard(result("s0", {0: 3}))
    store.write_shard(result("s1", {0: 4}))
    store.fail_shard("ds", V, "s1", "text", "truncated tar: unexpected end of data")
    assert store.frequencies("ds", V)[0]["text"] == 3
    failed = [s for s in store.shard_states("ds") if s.state == "failed"]
    assert [(s.shard, s.reason) for s in failed] == [("s1", "truncated tar: unexpected end of data")]


def test_ledger_announce_and_states(store):
    assert store.announce("ds", V, ["s0", "s1"]) == 2
    store.write_shard(result("s0", {0: 1}, skipped={"empty_caption": 2}, notes={"invalid_utf8": 1}))
    assert store.announce("ds", V, ["s0", "s1", "s2"]) == 1  # announcing again is harmless
    states = {s.shard: s for s in store.shard_states("ds", V)}
    assert {k: s.state for k, s in states.items()} == {"s0": "done", "s1": "pending", "s2": "pending"}
    assert states["s0"].skip_reasons == {"empty_caption": 2} and states["s0"].skipped == 2
    assert states["s0"].notes == {"invalid_utf8": 1}
    [summary] = store.datasets()
    assert (summary.dataset, summary.states, summary.samples) == ("ds", {"text:done": 1, "text:pending": 2}, 10)


def test_vocabulary_versions_latest_first(store):
    other = from_names([["zebra"]])
    store.write_shard(result("s0", {0: 1}))
    store.write_shard(ShardResult("ds", other.version, "s0", "text", samples=1, counts={0: 1}))
    assert store.vocabulary_versions("ds") == [other.version, V]
    assert store.vocabulary_versions("unknown") == []


def test_strings_with_quotes_and_unicode_survive(store):
    shard = "s3://bucket/it's \"quoted\"/café-{0}.tar"
    store.write_shard(result(shard, {0: 1}, hits=[("ké'y", [0])]))
    assert store.text_hits("ds", V, shard) == {"ké'y": [0]}


@pytest.mark.parametrize("url, message", [
    ("mysql://localhost/db", "unknown store URL"),
    ("clickhouse://localhost:9000/bad-name!", "invalid ClickHouse database name"),
])
def test_bad_store_urls(url, message):
    with pytest.raises(UserError, match=message):
        open_store(url)


def test_counts_under_different_rules_are_never_added(store):
    store.write_shard(result("s0", {0: 3}))
    for rule, count, shards in (("softmax:p=0.5", 4, ("s0", "s1")), ("softmax:p=0.9", 1, ("s0",))):
        for shard in shards:
            store.write_shard(ShardResult("ds", V, f"{shard}#{rule}", "image", samples=10, counts={0: count}, rule=rule))
    assert store.rules("ds", V) == {"text": {"phrase": 1}, "image": {"softmax:p=0.5": 2, "softmax:p=0.9": 1}}
    assert store.frequencies("ds", V)[0] == {"text": 3, "image": 8, "matched": 0}  # default: the rule on most shards
    assert store.frequencies("ds", V, rules={"image": "softmax:p=0.9"})[0] == {"text": 3, "image": 1, "matched": 0}


def test_totals_snapshot_equals_frequencies_under_several_rules(store):
    store.write_shard(result("s0", {0: 3, 1: 2}))
    for rule, count in (("softmax:p=0.5", 4), ("softmax:p=0.9", 1)):
        store.write_shard(ShardResult("ds", V, f"s0#{rule}", "image", samples=10, counts={0: count}, rule=rule))
    store.refresh_totals("ds", V)
    assert store.concept_totals("ds", V) == store.frequencies("ds", V)
