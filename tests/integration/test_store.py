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
    store._insert("shard_concept_counts", ["dataset", "vocabulary_version", "shard", "stage", "attempt_id", "kind", "rule", "concept_id", "count"],
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
    store.advance_totals("ds", V)
    assert store.concept_totals("ds", V) == store.frequencies("ds", V)


def test_totals_follow_rewrites_failures_and_crashes_exactly_once(store):
    """Totals are advanced from the changed shards only, and after every change they equal the
    full aggregation over the visible counts, whatever was rewritten, failed, replayed or cut short."""

    def check(expected_shards: int, expected_samples: int) -> None:
        assert store.concept_totals("ds", V) == store.frequencies("ds", V)
        snapshot = store.totals_snapshot("ds", V)
        assert (snapshot.shards, snapshot.samples) == (expected_shards, expected_samples)

    store.write_shard(result("s0", {0: 3, 1: 1}))
    store.write_shard(result("s1", {0: 2, 2: 5}, samples=7))
    store.advance_totals("ds", V, ["s0", "s1"])
    check(2, 17)
    first = store.totals_snapshot("ds", V)
    assert store.advance_totals("ds", V, ["s0", "s1"]) == first  # replayed: nothing changed, no new snapshot

    store.write_shard(result("s0", {0: 1}, samples=4))  # rewritten: concept 1 must not linger
    store.advance_totals("ds", V, ["s0"])
    check(2, 11)
    store.write_shard(ShardResult("ds", V, "s1", "image", samples=7, counts={0: 6}, rule="softmax:p=0.5"))
    store.advance_totals("ds", V, ["s1"])
    check(2, 11)
    assert store.totals("ds", V).rules == {"text": {"phrase": 2}, "image": {"softmax:p=0.5": 1}}

    store.fail_shard("ds", V, "s1", "text", "recount failed")  # its text drops out; its image stays
    store.advance_totals("ds", V, ["s1"])
    check(1, 4)

    # A crash after a snapshot's rows but before its count_snapshots row: nothing of it is read.
    store.write_shard(result("s2", {2: 9}, samples=3))
    before = store.totals_snapshot("ds", V)
    store._insert("totals_inclusions", ["dataset", "vocabulary_version", "shard", "snapshot", "stages", "attempts", "samples", "seq"],
                  [("ds", V, "s2", "crashed", ["text"], [store.shard_states("ds", V, ["s2"])[0].attempt_id], [3], 1)])
    store._insert("snapshot_counts", ["dataset", "vocabulary_version", "snapshot", "kind", "rule", "concept_id", "count"],
                  [("ds", V, "crashed", "text", "phrase", 2, 9)])
    assert store.totals_snapshot("ds", V) == before
    store.advance_totals("ds", V, ["s2"])  # the redone advance counts s2 once
    check(2, 7)
    assert store.prune_totals("ds", V, keep=1) >= 1
    check(2, 7)


def test_totals_cost_follows_the_changed_shards(store):
    """A first advance with no snapshot yet takes every shard of the ledger (a store upgraded from
    earlier totals, or an import); later ones only the shards named."""
    for i in range(5):
        store.write_shard(result(f"s{i}", {0: 1}))
    store.advance_totals("ds", V, ["s0"])  # no snapshot yet: all five
    assert store.totals_snapshot("ds", V).shards == 5
    store.write_shard(result("s5", {1: 1}))
    store.advance_totals("ds", V, ["s0"])  # s5 not named: not in the totals yet
    assert store.concept_totals("ds", V) == {0: {"text": 5, "image": 0, "matched": 0}}
    store.advance_totals("ds", V, ["s5"])
    assert store.concept_totals("ds", V) == store.frequencies("ds", V)


def test_a_snapshot_made_with_a_slow_clock_is_still_the_latest(store, monkeypatch):
    import conceptfreq.adapters.store.totals as totals

    store.write_shard(result("s0", {0: 3}))
    store.advance_totals("ds", V, ["s0"])
    monkeypatch.setattr(totals, "now_seq", lambda: 1)  # a counter on a host whose clock is far behind
    store.write_shard(result("s1", {0: 2}))
    store.advance_totals("ds", V, ["s1"])
    assert store.concept_totals("ds", V) == store.frequencies("ds", V) == {0: {"text": 5, "image": 0, "matched": 0}}


def test_announcing_tens_of_thousands_of_shards_stays_under_the_query_size_limit(store):
    """Shard names travel in the SQL text: a LAION-size announcement must be sliced, not refused."""
    shards = [f"s3://laion400m-data/part-{i:05d}/{i:09d}.tar" for i in range(12_000)]
    assert store.announce("big", V, shards) == len(shards)
    assert store.done_shards("big", V) == (0, 0)
    store.record_states("big", V, "text", "done", [(s, "a", 1) for s in shards])
    assert store.done_shards("big", V) == (len(shards), len(shards))


def test_closing_the_store_waits_for_a_query_in_flight(store_url):
    """A service's threads may still be querying when it shuts down: close() must wait for them,
    not pull the connection out from under a query (clickhouse-driver then fails on a None socket)."""
    import threading
    import time

    store = open_store(store_url)
    outcome = []
    query = threading.Thread(target=lambda: outcome.append(store.backend.execute("SELECT sleep(1)")))
    query.start()
    time.sleep(0.3)
    started = time.monotonic()
    store.close()
    query.join()
    assert outcome == [[(0,)]] and time.monotonic() - started > 0.3
