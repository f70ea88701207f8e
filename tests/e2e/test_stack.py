"""`make up`, an ingest through the stack it starts, the counts read back, `make down`, and
nothing left running. The stack is the cluster mode on one machine: the tansu broker, a
ClickHouse server, Triton with the tiny model, the six services and Prometheus, each a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from conceptfreq.adapters.store import open_store
from conceptfreq.core.vocabulary import load
from conceptfreq.devservers._process import port_open
from conceptfreq.devservers.stack import _group_alive
from conceptfreq.synthetic import brace_pattern, write_shards
from conceptfreq.v1 import frequency_pb2, frequency_pb2_grpc
from tests.e2e.test_pipeline import answer, reference
from tests.paths import REPO

CONCEPTS = ["dog", "cat", "tiger", "airplane", "bicycle", "guitar", "pizza", "volcano"]


def make(target: str, root: Path, timeout: float) -> subprocess.CompletedProcess:
    venv = Path(sys.executable).parents[1]
    # -o: the environment this test runs in is the set-up one; never re-run the bootstrap from here.
    return subprocess.run(["make", "-s", "-o", f"{venv}/.bootstrapped", target, f"VENV={venv}"], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "CONCEPTFREQ_STACK_ROOT": str(root)})


@pytest.mark.slow
def test_make_up_ingest_read_back_make_down_leaves_nothing_running(tmp_path):
    root = tmp_path / "stack"
    started = make("up", root, timeout=420)
    state_file = root / "stack.json"
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        state = json.loads(state_file.read_text())
        processes = state["processes"]
        assert set(processes) == {"clickhouse", "kafka", "triton", "parser", "tagger", "counter", "evaluator", "query",
                                  "reporter", "prometheus"}
        for name, entry in processes.items():
            assert str(entry["pid"]) in started.stdout and name in started.stdout  # where each listens, printed
            assert Path(entry["log"]).parent == root / "logs"

        shards = write_shards(tmp_path / "shards", n_shards=3, samples_per_shard=60, concept_names=CONCEPTS, with_images=True,
                              seed=11, name="stack")
        vocab = tmp_path / "vocab.txt"
        vocab.write_text("\n".join(CONCEPTS) + "\n")
        version = load(str(vocab)).version
        expected = reference(state["store"], shards, str(vocab), dataset="stack-local")
        ingest = subprocess.run([sys.executable, "-m", "conceptfreq.cli", "ingest", "--dataset", "stack", "--shards", brace_pattern(shards),
                                 "--vocab", str(vocab), "--stages", "text,image", "--bus", state["bus"], "--store", state["store"],
                                 "--wait", "--timeout", "240"], capture_output=True, text=True, timeout=300, cwd=REPO)
        assert ingest.returncode == 0 and "done 3/3, 180 samples, 0 failed" in ingest.stdout, ingest.stdout + ingest.stderr

        store = open_store(state["store"])
        try:
            got = answer(store, "stack", version, shards)
            text = lambda frequencies: {c: kinds["text"] for c, kinds in frequencies.items() if kinds["text"]}  # noqa: E731
            assert text(got.pop("frequencies")) == text(expected.pop("frequencies")), "text counts equal a local run's"
            assert got == expected, "samples and per-sample text hits equal a local run's"
            image_shards, _ = store.done_shards("stack", version, "image")
            assert image_shards == 3, "the tagger (on Triton) finished every shard"
            frequencies = store.frequencies("stack", version)
        finally:
            store.close()
        with grpc.insecure_channel(processes["query"]["grpc"]) as channel:
            reply = frequency_pb2_grpc.FrequencyServiceStub(channel).GetFrequencies(
                frequency_pb2.GetFrequenciesRequest(dataset="stack", concepts=CONCEPTS), timeout=30)
        assert reply.samples == 180
        by_name = {f.name: f for f in reply.frequencies}
        vocabulary = load(str(vocab))
        for name in CONCEPTS:
            counts = frequencies.get(vocabulary.get(name).id, {"text": 0, "image": 0, "matched": 0})
            assert (by_name[name].text, by_name[name].image, by_name[name].matched) == \
                (counts["text"], counts["image"], counts["matched"]), name
            assert by_name[name].matched <= min(by_name[name].text, by_name[name].image)
    finally:
        stopped = make("down", root, timeout=180)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not state_file.exists()
    for name, entry in processes.items():
        assert not _group_alive(entry["pid"]), f"{name} (pid {entry['pid']}) still runs after make down"
        for key in ("grpc", "url"):
            address = entry.get(key, "")
            port = address.rsplit(":", 1)[-1].split("/")[0] if address else ""
            if port.isdigit():
                assert not port_open(int(port)), f"{name} still listens on {port}"
