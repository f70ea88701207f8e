"""Every dependency a command talks to is waited on for a bounded, configurable time: an
unreachable broker or store gives exit 3 and one line, and leaves the ledger as it was."""

from __future__ import annotations

import subprocess
import sys
import time

from conceptfreq.adapters.store import open_store
from conceptfreq.synthetic import brace_pattern, write_shards
from tests.paths import REPO

# Nothing listens on port 1: connections are refused at once, as for a broker that is down.
DEAD_KAFKA = "kafka://127.0.0.1:1?bootstrap_timeout_ms=500&request_timeout_ms=1000&give_up_ms=3000"


def conceptfreq(*argv: str, timeout: float = 60) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "conceptfreq.cli", *argv], capture_output=True, text=True, cwd=REPO, timeout=timeout)
    return done.returncode, done.stderr.strip(), time.monotonic() - started


def test_ingest_to_an_unreachable_broker_exits_3_in_time_and_marks_nothing_pending(tmp_path):
    store_url = f"chdb://{tmp_path / 'store'}"
    shards = write_shards(tmp_path / "shards", n_shards=2, samples_per_shard=10, concept_names=["cat", "dog"], seed=1)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("cat\ndog\n")
    code, err, seconds = conceptfreq("ingest", "--dataset", "d", "--shards", brace_pattern(shards), "--vocab", str(vocab),
                                     "--store", store_url, "--bus", DEAD_KAFKA)
    assert code == 3, err
    assert len(err.splitlines()) == 1 and "gave up after 3s" in err and "Kafka" in err, err
    assert seconds < 30, f"took {seconds:.1f}s for a 3 s give-up"
    store = open_store(store_url)
    try:
        assert store.shard_states("d") == []  # nothing pending that no event will ever finish
    finally:
        store.close()


def test_retry_to_an_unreachable_broker_exits_3_and_leaves_failed_shards_failed(tmp_path):
    store_url = f"chdb://{tmp_path / 'store'}"
    store = open_store(store_url)
    try:
        store.announce("d", "v", ["s0"])
        store.fail_shard("d", "v", "s0", "text", "transient: refused")
    finally:
        store.close()
    code, err, seconds = conceptfreq("retry", "--dataset", "d", "--failed", "--store", store_url, "--bus", DEAD_KAFKA)
    assert code == 3 and len(err.splitlines()) == 1 and "gave up" in err, err
    store = open_store(store_url)
    try:
        assert [s.state for s in store.shard_states("d")] == ["failed"]
    finally:
        store.close()


def test_an_unreachable_clickhouse_exits_3_within_its_connect_timeout():
    code, err, seconds = conceptfreq("status", "--dataset", "d", "--store", "clickhouse://127.0.0.1:1/db?connect_timeout_s=1")
    assert code == 3 and len(err.splitlines()) == 1 and "unreachable" in err, err
    assert seconds < 20
