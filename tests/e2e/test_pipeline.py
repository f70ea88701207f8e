"""The shard-event pipeline end to end: ingest -> bus -> parser(s) -> store -> counter.

Every test compares with the local run (`count_shards`, what `conceptfreq count` does) on the same
shards: the pipeline must give exactly its counts, per concept and per sample."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import redirect_stdout
from pathlib import Path

import grpc
import pytest

from conceptfreq.adapters.bus import Topics, open_bus
from conceptfreq.adapters.bus.events import shard_event
from conceptfreq.adapters.bus.retry import Backoff, Retrier
from conceptfreq.adapters.store import open_store
from conceptfreq.cli import main as cli
from conceptfreq.core.vocabulary import default, load
from conceptfreq.pipeline.run import count_shards
from conceptfreq.synthetic import brace_pattern, write_bad_shards, write_shards
from conceptfreq.v1 import events_pb2, parser_pb2, parser_pb2_grpc
from tests.paths import REPO

# A long-tailed slice of real class names: quick to build a matcher for, realistic to match.
NAMES = [c.name for c in default()][::8][:300]
KAFKA_TEST_OPTIONS = "?session_timeout_ms=2000&heartbeat_interval_ms=300&max_poll_interval_ms=10000"


def vocab_file(tmp_path: Path) -> str:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(NAMES) + "\n")
    return str(path)


class Run:
    """One pipeline run: its bus, store and topic names, the CLI, and service processes."""

    def __init__(self, bus_url: str, store_url: str, tmp_path: Path):
        self.bus_url, self.store_url, self.tmp = bus_url, store_url, tmp_path
        self.prefix = prefix = f"{uuid.uuid4().hex[:8]}-"
        self.topics = Topics().prefixed(prefix)
        # Groups of their own too: on one broker, a group shared across tests shares its members' fate.
        self.groups = {"parser": f"{prefix}parser", "counter": f"{prefix}counter"}
        self.processes: list[tuple[subprocess.Popen, Path]] = []

    @property
    def args(self) -> list[str]:
        return ["--bus", self.bus_url, "--store", self.store_url, "--topic-shards", self.topics.shards,
                "--topic-results", self.topics.results, "--topic-dead-letter", self.topics.dead_letter, "--partitions", "4"]

    def cli(self, *argv: str) -> tuple[int, str]:
        out = io.StringIO()
        with redirect_stdout(out):
            code = cli([*argv, *self.args])
        return code, out.getvalue()

    def service(self, name: str, *extra: str) -> subprocess.Popen:
        log = self.tmp / f"{name}-{len(self.processes)}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen([sys.executable, "-m", f"conceptfreq.{name}", *self.args, "--group", self.groups.setdefault(name, self.prefix + name),
                                    "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0", *extra], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=REPO)
        self.processes.append((process, log))
        return process

    def grpc_port(self, process: subprocess.Popen, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"gRPC on [\d.]+:(\d+)", self.log_of(process))
            if found:
                return int(found.group(1))
            assert process.poll() is None, self.log_of(process)
            time.sleep(0.1)
        raise AssertionError(f"no gRPC port in the log:\n{self.log_of(process)}")

    def stop_all(self) -> list[int]:
        """SIGTERM every live service and collect exit codes: a clean stop exits 0."""
        for process, _ in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        return [process.wait(30) for process, _ in self.processes]

    def log_of(self, process: subprocess.Popen) -> str:
        return next(log for p, log in self.processes if p is process).read_text()

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for _, log in self.processes)


@pytest.fixture
def kafka_run(kafka, clickhouse_url, tmp_path):
    run = Run(kafka.url + KAFKA_TEST_OPTIONS, clickhouse_url, tmp_path)
    yield run
    for process, _ in run.processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def reference(store_url: str, shards: list[str], vocab: str, dataset: str = "local") -> dict:
    """The local run's answer: counts per concept, samples, and per-sample hits of each shard."""
    vocabulary = load(vocab)
    store = open_store(store_url)
    try:
        count_shards(store, dataset, shards, vocabulary, progress=False)
        return answer(store, dataset, vocabulary.version, shards)
    finally:
        store.close()


def answer(store, dataset: str, version: str, shards: list[str]) -> dict:
    return {"frequencies": store.frequencies(dataset, version), "samples": store.samples_counted(dataset, version),
            "hits": {shard: store.text_hits(dataset, version, shard) for shard in shards}}


def pipeline_answer(store_url: str, dataset: str, vocab: str, shards: list[str]) -> tuple[dict, dict]:
    store = open_store(store_url)
    try:
        version = load(vocab).version
        return answer(store, dataset, version, shards), store.concept_totals(dataset, version)
    finally:
        store.close()


# --- Kafka + ClickHouse ---------------------------------------------------------------------------

@pytest.mark.slow
def test_two_parsers_and_a_counter_give_exactly_the_local_counts(kafka_run, tmp_path):
    run = kafka_run
    shards = write_shards(tmp_path / "shards", n_shards=8, samples_per_shard=1500, concept_names=NAMES, seed=3)
    vocab = vocab_file(tmp_path)
    expected = reference(run.store_url, shards, vocab)
    parsers = [run.service("parser", "--vocab", vocab), run.service("parser", "--vocab", vocab)]
    run.service("counter", "--batch-seconds", "0.2")

    code, out = run.cli("ingest", "--dataset", "piped", "--shards", brace_pattern(shards), "--vocab", vocab, "--wait", "--timeout", "90")
    assert code == 0, out + run.logs()
    assert "done 8/8, 12,000 samples, 0 failed" in out

    got, totals = pipeline_answer(run.store_url, "piped", vocab, shards)
    assert got == expected
    assert totals == expected["frequencies"]  # the counter's totals too

    # Ingesting again publishes nothing: every shard is done.
    code, out = run.cli("ingest", "--dataset", "piped", "--shards", brace_pattern(shards), "--vocab", vocab)
    assert code == 0 and "published 0 (0 new), 8 already done" in out

    def status() -> tuple[dict, dict]:
        code, out = run.cli("status", "--dataset", "piped", "--json")
        report = json.loads(out)
        return report["vocabularies"][0], {(r["group"], r["topic"]): r["lag"] for r in report["lag"]}

    entry, lag = status()
    assert entry["states"] == {"pending": 0, "running": 0, "done": 8, "failed": 0}
    assert entry["stages"]["text"]["done"] == 8 and entry["samples"] == 12_000
    # A shard is done once written; its offset is committed just after (parsers write a batch, then
    # publish its results, then commit), so the lag reaches 0 a moment later.
    deadline = time.monotonic() + 15
    while (lag[(run.groups["parser"], run.topics.shards)], lag[(run.groups["counter"], run.topics.results)]) != (0, 0):
        assert time.monotonic() < deadline, lag
        time.sleep(0.5)
        _, lag = status()

    # The parser processes serve gRPC too, with health checks.
    with grpc.insecure_channel(f"127.0.0.1:{run.grpc_port(parsers[0])}") as channel:
        reply = parser_pb2_grpc.ParserServiceStub(channel).ParseCaptions(
            parser_pb2.ParseCaptionsRequest(captions=[f"a photo of a {NAMES[0]}", "nothing here"]), timeout=10)
        assert [list(r.names) for r in reply.results] == [[NAMES[0]], []]
        from grpc_health.v1 import health_pb2, health_pb2_grpc
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="conceptfreq.v1.ParserService"))
        assert health.status == health_pb2.HealthCheckResponse.SERVING

    assert run.stop_all() == [0, 0, 0], run.logs()  # SIGTERM: finish, commit, leave the group, exit 0


def dead_letters(run: Run, expected: int, timeout: float = 30) -> list[events_pb2.DeadLetter]:
    consumer = open_bus(run.bus_url).consumer([run.topics.dead_letter], f"reader-{uuid.uuid4().hex}", max_records=50)
    letters = []
    deadline = time.monotonic() + timeout
    while len(letters) < expected and time.monotonic() < deadline:
        letters += [events_pb2.DeadLetter.FromString(m.value) for m in consumer.poll(0.2)]
    consumer.close()
    return letters


@pytest.mark.slow
def test_poison_reaches_dead_letter_with_reasons_and_good_shards_finish(kafka_run, tmp_path):
    run = kafka_run
    good = write_shards(tmp_path / "good", n_shards=3, samples_per_shard=500, concept_names=NAMES, seed=5)
    bad = write_bad_shards(tmp_path / "bad")
    vocab = vocab_file(tmp_path)
    expected = reference(run.store_url, good, vocab)
    not_protobuf = b"\xff\xff\xff\xff not a ShardEvent"
    unknown_vocabulary = shard_event("poisoned", good[0], "0123456789abcdef", announced_at_ms=1)
    producer = open_bus(run.bus_url)
    open_bus(run.bus_url).create_topics(run.topics.names, 4)
    producer = producer.producer()
    producer.send(run.topics.shards, not_protobuf, b"junk")
    producer.send(run.topics.shards, unknown_vocabulary.SerializeToString(), b"unknown-vocabulary")
    producer.flush()
    producer.close()
    run.service("parser")
    run.service("counter", "--batch-seconds", "0.2")

    pattern = "{" + ",".join([*good, bad["truncated_tar"], bad["not_tar"]]) + "}"
    code, out = run.cli("ingest", "--dataset", "poisoned", "--shards", pattern, "--vocab", vocab, "--wait", "--timeout", "90")
    assert code == 1, out + run.logs()  # failures make the exit status non-zero
    assert "done 3/5, 1,500 samples, 2 failed" in out, out + run.logs()

    letters = dead_letters(run, 4)
    by_type = sorted((letter.error_type, letter.shard_url) for letter in letters)
    assert by_type == sorted([("bad_event", ""), ("unknown_vocabulary", good[0]),
                              ("bad_shard", bad["truncated_tar"]), ("bad_shard", bad["not_tar"])]), letters
    reasons = {letter.shard_url or "junk": letter.error for letter in letters}
    assert "truncated" in reasons[bad["truncated_tar"]] and "not a tar" in reasons[bad["not_tar"]]
    assert "0123456789abcdef" in reasons[good[0]] and "not a conceptfreq.v1.ShardEvent" in reasons["junk"]
    assert {letter.original for letter in letters} >= {not_protobuf, unknown_vocabulary.SerializeToString()}
    assert all(letter.source_topic == run.topics.shards and letter.consumer_group == run.groups["parser"] for letter in letters)

    got, totals = pipeline_answer(run.store_url, "poisoned", vocab, good)
    assert got == expected and totals == expected["frequencies"]

    code, out = run.cli("status", "--dataset", "poisoned")
    assert "done 3, failed 2" in out and "bad-truncated_tar.tar" in out and "unknown_vocabulary" in out, out

    # A repaired shard finishes on retry; the others fail again, with their reasons.
    write_shards(tmp_path / "repaired", n_shards=1, samples_per_shard=200, concept_names=NAMES, seed=9)
    Path(bad["truncated_tar"]).write_bytes((tmp_path / "repaired" / "synthetic-00000.tar").read_bytes())
    code, out = run.cli("retry", "--dataset", "poisoned", "--failed", "--wait", "--timeout", "60")
    assert code == 0, out + run.logs()
    status = json.loads(run.cli("status", "--dataset", "poisoned", "--json")[1])
    states = {v["vocabulary_version"]: v["states"] for v in status["vocabularies"]}
    assert states[load(vocab).version] == {"pending": 0, "running": 0, "done": 4, "failed": 1}
    assert states["0123456789abcdef"]["failed"] == 1
    assert run.stop_all() == [0, 0]


# --- embedded: inproc:// + chdb:// ----------------------------------------------------------------

def test_embedded_pipeline_gives_exactly_the_local_counts(chdb_url, tmp_path):
    shards = write_shards(tmp_path / "shards", n_shards=5, samples_per_shard=800, concept_names=NAMES, seed=11)
    vocab = vocab_file(tmp_path)
    expected = reference(chdb_url, shards, vocab)  # same store, another dataset name: chDB opens one path per process
    run = Run(f"inproc://e2e-{uuid.uuid4().hex}", chdb_url, tmp_path)
    code, out = run.cli("ingest", "--dataset", "piped", "--shards", brace_pattern(shards), "--vocab", vocab, "--parsers", "2")
    assert code == 0 and "done 5/5, 4,000 samples, 0 failed" in out, out
    got, totals = pipeline_answer(chdb_url, "piped", vocab, shards)
    assert got == expected and totals == expected["frequencies"]
    code, out = run.cli("status", "--dataset", "piped")
    assert code == 0 and "done 5, failed 0" in out and "in-process bus" in out


class Crash(BaseException):
    """What kill -9 does to a handler: no except clause runs, nothing else happens after it."""


@pytest.mark.parametrize("point", ["after_data_rows", "after_ledger_row", "after_stage_result"])
def test_a_crash_at_each_step_of_a_shard_neither_loses_nor_doubles_counts(point, chdb_url, tmp_path):
    """Deterministic crash points, in process; the chaos test kills real processes at random ones."""
    from conceptfreq.pipeline.announce import Announce
    from conceptfreq.pipeline.run import run_embedded
    from conceptfreq.parser.main import parser_loop

    shards = write_shards(tmp_path / "shards", n_shards=3, samples_per_shard=300, concept_names=NAMES, seed=13)
    vocab = vocab_file(tmp_path)
    expected = reference(chdb_url, shards, vocab)
    bus = open_bus(f"inproc://crash-{uuid.uuid4().hex}")
    names = Topics(partitions=2)
    store = open_store(chdb_url)
    try:
        summary = Announce(store, bus, names).run("piped", shards, load(vocab))
        loop = parser_loop(bus, store, names, Retrier(backoff=Backoff(0.001, 0.01)))
        crash_once(point, store, loop.handler)
        outcome = []
        thread = threading.Thread(target=lambda: outcome.append(pytest.raises(Crash, loop.run).value.args))
        thread.start()
        thread.join(30)
        assert outcome == [(point,)]  # it did crash there, and took the loop down with it
        assert run_embedded(bus, store, names, summary, timeout_s=60)  # redelivered, finished
        assert answer(store, "piped", load(vocab).version, shards) == expected
        assert store.concept_totals("piped", load(vocab).version) == expected["frequencies"]
    finally:
        store.close()


def crash_once(point: str, store, handler) -> None:
    crashed = []

    def once():
        if not crashed:
            crashed.append(point)
            raise Crash(point)

    if point == "after_data_rows":  # rows inserted, the ledger never marked them done: invisible
        record_done = store.record_done
        store.record_done = lambda results: once() or record_done(results)
    elif point == "after_ledger_row":  # durable in the store, no StageResult, no commit
        write = store.write_shards
        store.write_shards = lambda results: (write(results), once())
    else:  # StageResult out, offset not committed
        publish = handler._publish
        handler._publish = lambda result, key: (publish(result, key), once())


def test_the_counter_runs_combiners_once_per_set_of_stage_attempts(chdb_url):
    """A derived stage (matched counts, in production) runs when all its stages are done, once per
    set of attempts however often the results come, and before the shard is marked counted."""
    from conceptfreq.adapters.bus import Message
    from conceptfreq.core.counting import ShardResult
    from conceptfreq.counter.service import CountStageResults
    from conceptfreq.pipeline.progress import COUNTED

    class Recorder:
        needs = frozenset({"text", "image"})

        def __init__(self):
            self.runs = []

        def run(self, store, dataset, version, shard, attempts):
            assert COUNTED not in store.stage_attempts(dataset, version, [shard]).get(shard, {}) or self.runs
            self.runs.append((shard, attempts))

    store = open_store(chdb_url)
    try:
        recorder = Recorder()
        counter = CountStageResults(store, combiners={"derived": recorder})
        store.announce("ds", "v", ["s0"], stages=("text", "image"))

        def deliver(stage, attempt):
            result = ShardResult("ds", "v", "s0", stage, samples=5, counts={1: 2}, attempt_id=attempt)
            store.write_shard(result)
            event = events_pb2.StageResult(dataset="ds", vocabulary_version="v", shard_url="s0", stage=stage, attempt_id=attempt)
            for _ in range(2):  # every result redelivered
                counter.handle(Message("shard-results", 0, 0, None, event.SerializeToString()))
                counter.flush()

        deliver("text", "t1")
        assert recorder.runs == []  # the image stage is still pending
        deliver("image", "i1")
        assert recorder.runs == [("s0", {"text": "t1", "image": "i1"})]
        deliver("text", "t2")  # a recount: the derived stage runs again, from the new attempts
        assert recorder.runs[1:] == [("s0", {"text": "t2", "image": "i1"})]
        counted = store.stage_attempts("ds", "v", ["s0"])["s0"][COUNTED]
        assert counted[:2] == ("done", "image=i1;text=t2")
        assert store.concept_totals("ds", "v") == {1: {"text": 2, "image": 2, "matched": 0}}
    finally:
        store.close()
