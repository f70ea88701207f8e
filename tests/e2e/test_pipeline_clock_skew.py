"""Clocks in a cluster differ; exactly-once must not depend on them. Real processes, real broker
(tansu) and real ClickHouse server: the parsers run 10 minutes behind, the counter 5 minutes ahead,
and `ingest` and `retry` 10 minutes ahead (CONCEPTFREQ_TEST_CLOCK_SKEW_S, the seq source's test
hook). The counts and shard states must equal the clean local run's, and --wait must finish."""

from __future__ import annotations

import json
import shutil

import pytest

from conceptfreq.adapters.store.tables import SKEW_ENV
from conceptfreq.core.vocabulary import load
from conceptfreq.synthetic import brace_pattern, write_shards
from tests.e2e.test_pipeline import NAMES, pipeline_answer, reference, vocab_file

BEHIND, AHEAD = "-600", "600"


@pytest.mark.slow
def test_writers_with_skewed_clocks_give_the_clean_runs_counts_and_states(kafka_run, tmp_path, monkeypatch):
    run = kafka_run
    shards = write_shards(tmp_path / "shards", n_shards=6, samples_per_shard=800, concept_names=NAMES, seed=11)
    vocab = vocab_file(tmp_path)
    expected = reference(run.store_url, shards, vocab)
    # One shard is missing at first: it fails, and `retry` (with a fast clock) brings it back.
    late = tmp_path / "late.tar"
    shutil.move(shards[-1], late)

    monkeypatch.setenv(SKEW_ENV, BEHIND)
    run.service("parser", "--vocab", vocab)
    run.service("parser", "--vocab", vocab)
    monkeypatch.setenv(SKEW_ENV, "300")
    run.service("counter", "--batch-seconds", "0.2")

    monkeypatch.setenv(SKEW_ENV, AHEAD)  # the CLI runs in this process
    code, out = run.cli("ingest", "--dataset", "skew", "--shards", brace_pattern(shards), "--vocab", vocab, "--wait", "--timeout", "90")
    assert code == 1 and "done 5/6" in out and "1 failed" in out and "missing" in out, out + run.logs()

    shutil.move(late, shards[-1])
    code, out = run.cli("retry", "--dataset", "skew", "--failed", "--wait", "--timeout", "90")
    assert code == 0 and "republished 1 shard(s)" in out and "timeout" not in out, out + run.logs()

    monkeypatch.delenv(SKEW_ENV)
    got, totals = pipeline_answer(run.store_url, "skew", vocab, shards)
    assert got == expected
    assert totals == expected["frequencies"]
    code, out = run.cli("status", "--dataset", "skew", "--json")
    [entry] = json.loads(out)["vocabularies"]
    assert entry["vocabulary_version"] == load(vocab).version
    assert entry["states"] == {"pending": 0, "running": 0, "done": 6, "failed": 0}
    assert run.stop_all() == [0, 0, 0], run.logs()
