"""The ledger's order does not depend on writers' clocks: each writer here runs with its clock
skewed by up to +-10 minutes (the seq source is faked per write), and the outcome must equal the
clean run's. On the ClickHouse server and on chDB alike."""

from __future__ import annotations

import pytest

from conceptfreq.adapters.store import ledger
from conceptfreq.adapters.store.ledger import LedgerEntry
from conceptfreq.adapters.store.tables import now_seq
from conceptfreq.core.counting import DONE, FAILED, PENDING, RUNNING, TEXT

MINUTES_10 = 600 * 10**9
SKEWS = {"clean": (0, 0, 0), "ingest fast": (MINUTES_10, 0, 0), "parser slow": (0, -MINUTES_10, 0),
         "retry fast": (0, 0, MINUTES_10), "all apart": (MINUTES_10, -MINUTES_10, MINUTES_10 // 2)}


class Clock:
    """The seq source of the writer that writes next, skewed by `skew` ns."""

    def __init__(self, monkeypatch):
        self.skew = 0
        monkeypatch.setattr(ledger, "now_seq", lambda: now_seq() + self.skew)


def outcome(store, dataset: str, version: str) -> dict:
    return {s.shard: (s.state, s.attempt_id, s.samples) for s in store.shard_states(dataset, version)}


@pytest.mark.parametrize("case", list(SKEWS))
def test_skewed_writers_give_the_clean_runs_states(store, monkeypatch, case):
    ingest, parser, retry = SKEWS[case]
    clock = Clock(monkeypatch)
    d, v = "skew", "v1"
    clock.skew = ingest
    assert store.announce(d, v, ["a", "b", "c"]) == 3
    clock.skew = parser
    for shard in ("a", "b", "c"):
        store.record_state(d, v, shard, TEXT, RUNNING)
    store.record_state(d, v, "a", TEXT, DONE, attempt_id="a1", samples=10)
    store.record_state(d, v, "b", TEXT, DONE, attempt_id="b1", samples=20)
    store.fail_shard(d, v, "c", TEXT, "transient: connection refused")
    store.record_state(d, v, "a", TEXT, DONE, attempt_id="a2", samples=10)  # a redelivered parse: replaces a1
    clock.skew = retry
    store.record_states(d, v, TEXT, PENDING, [("c", "", 0)], reason="retry requested")
    assert outcome(store, d, v)["c"][0] == PENDING
    clock.skew = parser
    store.record_state(d, v, "c", TEXT, DONE, attempt_id="c2", samples=30)
    # Ingest run again (fast clock): known shards keep their state.
    clock.skew = ingest
    assert store.announce(d, v, ["a", "b", "c"]) == 0

    assert outcome(store, d, v) == {"a": (DONE, "a2", 10), "b": (DONE, "b1", 20), "c": (DONE, "c2", 30)}
    assert store.done_shards(d, v) == (3, 60)


def test_an_evaluation_shard_done_by_a_slow_clock_outranks_its_fast_announcement(store, monkeypatch):
    clock = Clock(monkeypatch)
    clock.skew = MINUTES_10
    store.record_evaluation_states("e1", [LedgerEntry("s0", PENDING), LedgerEntry("s1", PENDING)])
    clock.skew = -MINUTES_10
    store.record_evaluation_states("e1", [LedgerEntry("s0", DONE, "x", 5)])
    store.record_evaluation_states("e1", [LedgerEntry("s1", FAILED, reason="bad")])
    progress = store.evaluation_progress("e1", ["s0", "s1"])
    assert {shard: e.state for shard, e in progress.states.items()} == {"s0": DONE, "s1": FAILED}


def test_the_latest_recorded_event_wins_whatever_the_clocks(store, monkeypatch):
    clock = Clock(monkeypatch)
    clock.skew = MINUTES_10
    store.record_events("d", "v", [("s", b"from ingest")])
    clock.skew = -MINUTES_10
    store.record_events("d", "v", [("s", b"from retry")])
    assert store.announced_events("d", "v") == {"s": b"from retry"}


def test_without_skew_seq_follows_the_clock(store):
    """The clock floor: a key's first row takes the writer's clock, so seq stays near time order."""
    before = now_seq()
    store.announce("d", "v", ["s"])
    (seq,), = store._execute("SELECT max(seq) FROM {db}.shard_ledger WHERE dataset = 'd'")
    assert before <= int(seq) <= now_seq()
