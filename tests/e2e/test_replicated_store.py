"""The pipeline on a replicated ClickHouse: one ZooKeeper and two ClickHouse 18.16 replicas (one
shard) on loopback, the real broker (tansu), parser and counter processes. The store URL names
the cluster, so the schema is created ON CLUSTER with Replicated engines, and it lists the
other replica to fail over to.

1. A replica stops while the parser works through the shards: the counts complete on the
   surviving replica and equal a clean run's; the stopped replica, back, catches up to the
   same counts.
2. The replica every service is connected to stops between runs: the services move to the other
   one, the next dataset is counted there, and the returning replica catches up.
3. That replica stops again in the middle of a run: the services carry on on the other one. The
   writes it took just before it stopped may not have reached the other replica yet
   (replication is asynchronous), so the run finishes once it is back; then both replicas hold
   exactly a clean run's counts: nothing lost, nothing counted twice.
"""

from __future__ import annotations

import time
import uuid

import pytest

from conceptfreq.adapters.store import open_store
from conceptfreq.core.vocabulary import load
from conceptfreq.devservers.replicated import clickhouse_cluster
from conceptfreq.synthetic import brace_pattern, write_shards
from tests.e2e.test_pipeline import KAFKA_TEST_OPTIONS, NAMES, Run, answer, reference, vocab_file


@pytest.fixture(scope="module")
def cluster():
    with clickhouse_cluster(replicas=2) as cluster:
        yield cluster


def on_replica(cluster, index: int, database: str, dataset: str, version: str, shards: list[str]) -> tuple[dict, dict]:
    """What one replica alone holds: the visible counts, and the counter's totals."""
    store = open_store(cluster.replica_url(index, database), migrate=False)
    try:
        return answer(store, dataset, version, shards), store.concept_totals(dataset, version)
    finally:
        store.close()


def wait_parsed(run, parser, count: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while run.log_of(parser).count("parsed ") < count:
        assert time.monotonic() < deadline and parser.poll() is None, run.logs()
        time.sleep(0.05)


def totals_settle(cluster, index, database, dataset, version, shards, expected, timeout: float = 30) -> tuple[dict, dict]:
    """The counter refreshes totals a moment after the ledger says done: wait for that moment."""
    deadline = time.monotonic() + timeout
    while True:
        got, totals = on_replica(cluster, index, database, dataset, version, shards)
        if totals == expected["frequencies"] or time.monotonic() > deadline:
            return got, totals
        time.sleep(0.2)


@pytest.mark.slow
def test_counts_survive_a_replica_outage_and_both_replicas_agree_after(kafka, cluster, tmp_path):
    database = f"test_{uuid.uuid4().hex[:12]}"
    run = Run(kafka.url + KAFKA_TEST_OPTIONS, cluster.url(database), tmp_path)
    try:
        # 48 shards: a parser writes what it parsed in batches of up to 16 polled events, so the
        # replica can stop after the first batch is written and before the last.
        shards = write_shards(tmp_path / "shards", n_shards=48, samples_per_shard=2000, concept_names=NAMES, seed=23)
        vocab = vocab_file(tmp_path)
        version = load(vocab).version
        expected = reference(run.store_url, shards, vocab)  # a clean in-process run, same store
        engines = {row[0] for row in open_store(cluster.replica_url(1, database), migrate=False)._execute(
            "SELECT engine FROM system.tables WHERE database = %(d)s", d=database)}
        assert engines and all(e.startswith("Replicated") for e in engines), engines

        parser = run.service("parser", "--vocab", vocab)
        run.service("counter", "--batch-seconds", "0.2")
        code, out = run.cli("ingest", "--dataset", "outage", "--shards", brace_pattern(shards[:len(shards) // 2]), "--vocab", vocab)
        assert code == 0, out

        # 1. Replica 2 stops once the parser is into the shards (its first batch written); the
        # second half is announced after the stop.
        deadline = time.monotonic() + 90
        while run.log_of(parser).count("parsed ") < 1:
            assert time.monotonic() < deadline and parser.poll() is None, run.logs()
            time.sleep(0.05)
        cluster.replicas[1].stop()
        parsed_before = run.log_of(parser).count("parsed ")
        code, out = run.cli("ingest", "--dataset", "outage", "--shards", brace_pattern(shards), "--vocab", vocab,
                            "--wait", "--timeout", "90")
        assert code == 0 and "0 failed" in out, out + run.logs()
        assert parsed_before < len(shards), "the replica stopped after the parser's last shard, not during the run"

        got, totals = totals_settle(cluster, 0, database, "outage", version, shards, expected)
        assert got == expected and totals == expected["frequencies"], "the surviving replica"
        cluster.replicas[1].start()
        cluster.sync(database)
        got, totals = on_replica(cluster, 1, database, "outage", version, shards)
        assert got == expected and totals == expected["frequencies"], "the returned replica"

        # 2. Replica 1, which the services and the CLI connect to first, stops between runs.
        cluster.replicas[0].stop()
        code, out = run.cli("ingest", "--dataset", "failover", "--shards", brace_pattern(shards), "--vocab", vocab,
                            "--wait", "--timeout", "90")
        assert code == 0 and "0 failed" in out, out + run.logs()
        got, totals = totals_settle(cluster, 1, database, "failover", version, shards, expected)
        assert got == expected and totals == expected["frequencies"], "counted on the replica failed over to"
        cluster.replicas[0].start()
        cluster.sync(database)
        got, totals = on_replica(cluster, 0, database, "failover", version, shards)
        assert got == expected and totals == expected["frequencies"], "the first replica, back"

        # 3. Replica 1 stops mid-run, and the parser goes on on replica 2 until it returns. The run is
        # announced in two halves (a parser gets through a few dozen small shards in a second), so
        # the stop falls between them.
        half = len(shards) // 2
        code, out = run.cli("ingest", "--dataset", "midrun", "--shards", brace_pattern(shards[:half]), "--vocab", vocab)
        assert code == 0, out
        wait_parsed(run, parser, run.log_of(parser).count("parsed ") + 2)
        cluster.replicas[0].stop()
        code, out = run.cli("ingest", "--dataset", "midrun", "--shards", brace_pattern(shards), "--vocab", vocab)
        assert code == 0, out
        wait_parsed(run, parser, run.log_of(parser).count("parsed ") + 2)  # progress with replica 1 down
        cluster.replicas[0].start()
        code, out = run.cli("ingest", "--dataset", "midrun", "--shards", brace_pattern(shards), "--vocab", vocab,
                            "--wait", "--timeout", "120")
        assert code == 0 and "0 failed" in out, out + run.logs()
        cluster.sync(database)
        for index in (0, 1):
            got, totals = totals_settle(cluster, index, database, "midrun", version, shards, expected)
            assert got == expected and totals == expected["frequencies"], f"replica {index + 1} after a mid-run outage"

        assert run.stop_all() == [0, 0], run.logs()
    finally:
        for process, _ in run.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
