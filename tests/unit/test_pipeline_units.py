"""Pure parts of the pipeline: backoff, retries, event building, publish planning, shard progress,
and the consume loop's failure policy (over the in-process bus, with a scripted handler)."""

from __future__ import annotations

import random
import threading
import uuid
from types import SimpleNamespace

import pytest

from conceptfreq.adapters.bus import Topics, open_bus
from conceptfreq.adapters.bus.events import (BadEvent, BadShard, dead_letter, read_shard_event, read_stage_result, shard_event,
                                             shard_key, wants_stage)
from conceptfreq.adapters.bus.retry import Abandoned, Backoff, Retrier
from conceptfreq.adapters.bus.worker import ConsumeLoop
from conceptfreq.pipeline.announce import plan
from conceptfreq.commands.status import summarize
from conceptfreq.core.counting import ShardResult
from conceptfreq.pipeline.stages import ShardStageHandler
from conceptfreq.pipeline.progress import finished_since, shard_progress
from conceptfreq.pipeline.progress import COUNTED, counted_attempt
from conceptfreq.errors import UnavailableError
from conceptfreq.v1 import events_pb2

FAST = Backoff(initial_s=0.001, maximum_s=0.005)


# --- backoff and retries ------------------------------------------------------------------------

def test_backoff_grows_exponentially_up_to_its_cap():
    backoff = Backoff(initial_s=0.1, maximum_s=5, multiplier=2)
    assert [backoff.ceiling(n) for n in range(8)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5, 5]
    assert backoff.ceiling(10_000) == 5  # no overflow on a very long outage


def test_backoff_jitter_spreads_clients_within_half_to_full_ceiling():
    backoff = Backoff(initial_s=1, maximum_s=8)
    rng = random.Random(7)
    delays = [backoff.delay(3, rng) for _ in range(200)]
    assert all(4 <= d <= 8 for d in delays)
    assert max(delays) - min(delays) > 2  # really jittered, not one value


def test_retrier_retries_transient_errors_until_success():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise UnavailableError("store down")
        return "ok"

    assert Retrier(backoff=FAST).call(flaky, "write") == "ok"
    assert len(calls) == 4


def test_retrier_gives_up_other_errors_after_a_few_attempts_and_permanent_ones_at_once():
    calls = []

    def buggy():
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        Retrier(backoff=FAST, other_attempts=3).call(buggy, "handle")
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(BadShard):
        Retrier(backoff=FAST).call(lambda: calls.append(1) or (_ for _ in ()).throw(BadShard("corrupt")), "handle",
                                   permanent=(BadShard,))
    assert len(calls) == 1


def test_retrier_never_retries_a_user_error():
    """A bad model name or store URL at start-up fails at once, with its one-line message."""
    from conceptfreq.errors import UserError

    calls = []
    with pytest.raises(UserError, match="unknown model"):
        Retrier(backoff=FAST).call(lambda: calls.append(1) or (_ for _ in ()).throw(UserError("unknown model 'nope'")), "connect")
    assert len(calls) == 1


def test_retrier_abandons_when_stopped_while_waiting():
    stop = threading.Event()
    retrier = Retrier(stop, Backoff(initial_s=10, maximum_s=10))
    threading.Timer(0.1, stop.set).start()
    with pytest.raises(Abandoned):
        retrier.call(lambda: (_ for _ in ()).throw(UnavailableError("down")), "write")


# --- events --------------------------------------------------------------------------------------

def test_shard_event_round_trip_and_validation():
    event = shard_event("cc3m", "s3://b/00001.tar", "abc", announced_at_ms=5, size_bytes=10, checksum="etag:x", stages=["text"])
    again = read_shard_event(event.SerializeToString())
    assert (again.dataset, again.shard_url, again.size_bytes, again.checksum, list(again.stages)) == ("cc3m", "s3://b/00001.tar", 10, "etag:x", ["text"])
    assert wants_stage(again, "text") and not wants_stage(again, "image")
    assert wants_stage(shard_event("d", "s", "v", announced_at_ms=0), "image")  # no stages: all of them
    assert shard_key("cc3m", "s3://b/1.tar") == b"cc3m/s3://b/1.tar"
    with pytest.raises(BadEvent, match="not a conceptfreq.v1.ShardEvent"):
        read_shard_event(b"\xff\xff\xff\xff")
    with pytest.raises(BadEvent, match="without vocabulary_version"):
        read_shard_event(shard_event("d", "s", "", announced_at_ms=0).SerializeToString())
    with pytest.raises(BadEvent):
        read_stage_result(events_pb2.StageResult(dataset="d").SerializeToString())


def test_dead_letter_keeps_the_original_bytes_and_a_kind():
    letter = dead_letter(b"\x00raw", source_topic="shards", consumer_group="parser", error=BadShard("x.tar: truncated"),
                         failed_at_ms=1, dataset="d", shard_url="x.tar")
    assert (letter.original, letter.error_type, letter.error) == (b"\x00raw", "bad_shard", "x.tar: truncated")
    assert dead_letter(b"", source_topic="t", consumer_group="g", error=KeyError("k"), failed_at_ms=1).error_type == "internal"


# --- planning and progress ------------------------------------------------------------------------

def test_plan_publishes_new_and_unfinished_shards_only():
    states = {"a": "done", "b": "failed", "c": "pending", "d": "running"}
    assert plan(["a", "b", "c", "d", "e"], states) == (["c", "d", "e"], ["a"], ["b"])
    assert plan(["a", "b", "e"], states, force=True) == (["a", "b", "e"], [], [])


def row(stage, state, attempt="", samples=0, reason="", at=0, shard="s"):
    return SimpleNamespace(shard=shard, stage=stage, state=state, attempt_id=attempt, samples=samples, skipped=0,
                           reason=reason, updated_at_ms=at, vocabulary_version="v", captions_from="")


def test_shard_progress_follows_the_ledger():
    assert shard_progress({"text": row("text", "pending")}).state == "pending"
    assert shard_progress({"text": row("text", "running")}).state == "running"
    assert shard_progress({"text": row("text", "done", "a1")}).state == "running"  # not counted yet
    counted = row(COUNTED, "done", counted_attempt({"text": "a1"}), samples=10, at=9)
    assert shard_progress({"text": row("text", "done", "a1"), COUNTED: counted}) .state == "done"
    # counted from an older attempt: the new one is not in the totals yet
    assert shard_progress({"text": row("text", "done", "a2"), COUNTED: counted}).state == "running"
    failed = shard_progress({"text": row("text", "failed", reason="bad_shard: truncated", at=7), COUNTED: counted})
    assert (failed.state, failed.reason, failed.finished_at_ms) == ("failed", "text: bad_shard: truncated", 7)
    # with two stages, both must be in
    assert shard_progress({"text": row("text", "done", "a1"), "image": row("image", "running")}).state == "running"


def test_finished_since_waits_for_this_runs_outcome():
    done = {"text": row("text", "done", "a1", at=5), COUNTED: row(COUNTED, "done", "text=a1", at=6)}
    assert finished_since(done, since_ms=10)
    assert not finished_since(done, since_ms=10, recount=True)  # a recount needs a newer attempt
    assert not finished_since({"text": row("text", "failed", at=5)}, since_ms=10)  # an old failure
    assert finished_since({"text": row("text", "failed", at=15)}, since_ms=10)


def test_counted_attempt_is_order_independent():
    assert counted_attempt({"text": "a", "image": "b"}) == counted_attempt({"image": "b", "text": "a"}) == "image=b;text=a"


def test_status_summary_counts_states_samples_and_failures():
    rows = [row("text", "done", "a", samples=100, at=1_000, shard="s0"), row(COUNTED, "done", "text=a", 100, at=1_100, shard="s0"),
            row("text", "done", "b", samples=300, at=3_000, shard="s1"),
            row("text", "failed", reason="bad_shard: not a tar", at=2_000, shard="s2"), row("text", "pending", shard="s3")]
    report = summarize(rows, now_ms=30_000)
    assert report["states"] == {"pending": 1, "running": 1, "done": 1, "failed": 1}
    assert report["stages"]["text"] == {"pending": 1, "running": 0, "done": 2, "failed": 1}
    assert report["samples"] == 400 and report["captions_from"] == {"shard": 2}
    assert report["rate"] == {"last_minute": round(400 / 60, 1), "overall": 150.0}  # 300 samples in the 2 s after the first
    assert report["failures"] == [{"shard": "s2", "reason": "text: bad_shard: not a tar"}]


# --- the consume loop's failure policy ------------------------------------------------------------

class Scripted:
    """A handler that fails as told per message value; records what it did."""

    stage = "test"

    def __init__(self, script: dict[bytes, list[BaseException]], committed=lambda: None):
        self.script = {k: list(v) for k, v in script.items()}
        self.handled: list[bytes] = []
        self.given_up: list[bytes] = []
        self.flushes = 0
        self.committed_during_failures: list = []
        self.committed = committed

    def handle(self, message):
        errors = self.script.get(message.value, [])
        if errors:
            self.committed_during_failures.append(self.committed())
            raise errors.pop(0)
        self.handled.append(message.value)

    def give_up(self, message, error):
        self.given_up.append(message.value)
        return "ds", message.value.decode()

    def flush(self):
        self.flushes += 1


def _bus_and_topics():
    bus = open_bus(f"inproc://unit-{uuid.uuid4().hex}")
    names = Topics(partitions=1)
    bus.create_topics(names.names, 1)
    return bus, names


def _run_until_drained(bus, names, handler, group="g", batch_s=0.0, stop=None):
    stop = stop or threading.Event()
    loop = ConsumeLoop(bus.consumer([names.shards], group, max_records=10), bus.producer(), handler, group=group,
                       dead_letter_topic=names.dead_letter, retrier=Retrier(stop, FAST), batch_s=batch_s, poll_s=0.02)
    thread = threading.Thread(target=loop.run)
    thread.start()
    return stop, thread


def _wait(predicate, timeout=5.0):
    import time
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_transient_failure_is_retried_and_nothing_commits_until_it_succeeds():
    bus, names = _bus_and_topics()
    producer = bus.producer()
    for value in (b"a", b"b"):
        producer.send(names.shards, value)
    lag = lambda: bus.group_lag([names.shards]).get(("g", names.shards))  # noqa: E731
    handler = Scripted({b"a": [UnavailableError("store down")] * 3}, committed=lag)
    stop, thread = _run_until_drained(bus, names, handler)
    _wait(lambda: lag() == 0)
    stop.set()
    thread.join()
    assert handler.handled == [b"a", b"b"] and handler.given_up == []
    assert handler.committed_during_failures == [2, 2, 2]  # `a` stayed uncommitted while it failed


def test_permanent_failure_goes_to_dead_letter_and_is_committed():
    bus, names = _bus_and_topics()
    producer = bus.producer()
    for value in (b"bad", b"good"):
        producer.send(names.shards, value, key=value)
    handler = Scripted({b"bad": [BadShard("bad: truncated tar")]})
    stop, thread = _run_until_drained(bus, names, handler)
    _wait(lambda: bus.group_lag([names.shards]).get(("g", names.shards)) == 0)
    stop.set()
    thread.join()
    assert handler.handled == [b"good"] and handler.given_up == [b"bad"]
    letters = bus.consumer([names.dead_letter], "reader", max_records=10).poll(1)
    [letter] = [events_pb2.DeadLetter.FromString(m.value) for m in letters]
    assert (letter.original, letter.error_type, letter.error, letter.shard_url, letter.consumer_group) == (
        b"bad", "bad_shard", "bad: truncated tar", "bad", "g")


def test_stop_while_retrying_abandons_and_a_new_consumer_gets_the_message_again():
    bus, names = _bus_and_topics()
    bus.producer().send(names.shards, b"a")
    handler = Scripted({b"a": [UnavailableError("down")] * 1000})
    stop, thread = _run_until_drained(bus, names, handler)
    _wait(lambda: len(handler.committed_during_failures) >= 2)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    again = bus.consumer([names.shards], "g").poll(1)
    assert [m.value for m in again] == [b"a"]  # redelivered: it was never committed


def test_batches_flush_once_before_each_commit():
    bus, names = _bus_and_topics()
    producer = bus.producer()
    for i in range(20):
        producer.send(names.shards, str(i).encode())
    handler = Scripted({})
    stop, thread = _run_until_drained(bus, names, handler, batch_s=5.0)
    _wait(lambda: bus.group_lag([names.shards]).get(("g", names.shards)) == 0)
    stop.set()
    thread.join()
    assert len(handler.handled) == 20
    assert 1 <= handler.flushes <= 3  # batches, not one flush per message


# --- batched stage handlers (the parser) ------------------------------------------------------------

class LedgerFake:
    """The store calls a stage handler makes, recorded; `write_shards` fails `failures` times first."""

    def __init__(self, done: dict[str, str] | None = None, failures: int = 0):
        self.done = dict(done or {})
        self.failures = failures
        self.running: list[str] = []
        self.written: list[list[str]] = []
        self.reads = 0

    def stage_attempts(self, dataset, version, shards):
        self.reads += 1
        return {s: {"text": ("done", self.done[s], 5)} for s in shards if s in self.done}

    def record_states(self, dataset, version, stage, state, shards, reason=""):
        self.running += [shard for shard, _, _ in shards]

    def write_shards(self, results):
        if self.failures:
            self.failures -= 1
            raise UnavailableError("store away")
        self.written.append([r.attempt_id for r in results])


class BatchedStage(ShardStageHandler):
    """A parser-like handler whose shards take no reading: `runs` lists the shards it parsed."""

    stage, batched = "text", True

    def __init__(self, store, producer):
        super().__init__(store, producer, "results", SimpleNamespace(get=lambda version: object()))
        self.runs: list[str] = []

    def prepare(self, event, vocabulary):
        self.runs.append(event.shard_url)
        return lambda: ShardResult(event.dataset, event.vocabulary_version, event.shard_url, "text", samples=5)

    def write_many(self, results):
        self.store.write_shards(results)


class ProducerFake:
    def __init__(self):
        self.sent: list[events_pb2.StageResult] = []

    def send(self, topic, value, key=None):
        self.sent.append(read_stage_result(value))

    def flush(self):
        pass


def _message(shard: str) -> SimpleNamespace:
    return SimpleNamespace(value=shard_event("d", shard, "v", announced_at_ms=1).SerializeToString(), key=shard.encode())


def test_a_batched_stage_reads_the_ledger_once_per_poll_and_writes_once_per_batch():
    store, producer = LedgerFake(done={"s3": "old"}), ProducerFake()
    handler = BatchedStage(store, producer)
    messages = [_message(s) for s in ("s1", "s2", "s1", "s3")]
    handler.before(messages)
    for message in messages:
        handler.handle(message)
    assert store.reads == 1 and store.running == ["s1", "s2"]
    assert handler.runs == ["s1", "s2"]  # s1 twice in the batch: parsed once; s3 done already
    assert [r.shard_url for r in producer.sent] == ["s3"] and store.written == []  # nothing durable yet
    handler.flush()
    assert len(store.written) == 1 and len(store.written[0]) == 2
    assert sorted(r.shard_url for r in producer.sent) == ["s1", "s1", "s2", "s3"]  # both s1 events answered


def test_a_retried_batch_write_uses_fresh_attempts():
    store, producer = LedgerFake(failures=1), ProducerFake()
    handler = BatchedStage(store, producer)
    handler.before([_message("s1")])
    handler.handle(_message("s1"))
    first = handler._queued[("d", "v", "s1")].result.attempt_id
    with pytest.raises(UnavailableError):
        handler.flush()
    assert producer.sent == []  # nothing announced for a write that failed
    handler.flush()
    [[attempt]] = store.written
    assert attempt != first and [r.attempt_id for r in producer.sent] == [attempt]
