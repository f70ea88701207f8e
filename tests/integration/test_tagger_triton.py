"""The tagger against a real Triton server (the pytriton wheel's tritonserver, tiny model with fixed
weights): the same hits as torch://, and Triton killed mid-run loses nothing: the shard in hand is
retried until Triton is back, and every shard ends done with the counts of a clean run."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid

import pytest

from conceptfreq.adapters.bus import Topics, open_bus
from conceptfreq.adapters.bus.events import shard_event, shard_key
from conceptfreq.adapters.bus.retry import Backoff, Retrier
from conceptfreq.adapters.inference import open_inference
from conceptfreq.adapters.store import open_store
from conceptfreq.core.counting import DONE, IMAGE
from conceptfreq.core.tagging import parse_rule
from conceptfreq.synthetic import write_shards
from conceptfreq.tagger.main import tagger_loop
from tests import tagger_support
from tests.integration.conftest import triton_outage

RULE = "softmax:p=0.3"


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("shards"), n_shards=10, samples_per_shard=48, concept_names=tagger_support.NAMES,
                        with_images=True, seed=5)


@pytest.fixture(scope="module")
def reference(shards, tiny_model, tmp_path_factory):
    """Per shard, the image counts of a clean in-process run (torch://)."""
    from conceptfreq.adapters.store import open_store as _open

    tmp = tmp_path_factory.mktemp("reference")
    backend = open_inference("torch://cpu", *tiny_model)
    store = _open(f"chdb://{tmp / 'store'}")
    tagger = tagger_support.make_tagger(backend, store, tagger_support.vocabulary(), RULE, cache_dir=tmp)
    index = tagger.indexes.get(tagger_support.vocabulary())
    try:
        return {shard: tagger.stage().run("ref", shard, index, [parse_rule(RULE)]).counts for shard in shards}
    finally:
        tagger.close()
        store.close()
        backend.close()


def image_counts_by_shard(store, dataset, version) -> dict[str, dict[int, int]]:
    rows = store._execute("""SELECT shard, concept_id, count FROM {db}.shard_concept_counts
        WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND kind = 'image' AND rule = %(r)s AND (stage, shard, attempt_id) IN (
            SELECT stage, shard, argMax(attempt_id, seq) FROM {db}.shard_ledger WHERE dataset = %(d)s AND vocabulary_version = %(v)s
            GROUP BY stage, shard HAVING argMax(state, seq) = 'done')""", d=dataset, v=version, r=RULE)
    out: dict[str, dict[int, int]] = {}
    for shard, concept, count in rows:
        out.setdefault(shard, {})[int(concept)] = int(count)
    return out


@contextlib.contextmanager
def triton_killed(server):
    """kill -9 the server and its python-backend stubs (its own session), then start it again on the
    same ports: a crash, with no graceful unloading."""
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()
    server.process = None
    try:
        yield
    finally:
        server.start()


OUTAGES = {
    "kill -9": triton_killed,
    # A graceful stop (SIGTERM, what Kubernetes sends first) unloads the models while the server still
    # answers: requests fail with NOT_FOUND "has no available versions", which must be retried.
    "SIGTERM": triton_outage,
}


@pytest.mark.parametrize("outage", OUTAGES.values(), ids=OUTAGES.keys())
def test_triton_killed_mid_run_loses_nothing(outage, triton, tiny_model, shards, reference, tmp_path):
    vocabulary = tagger_support.vocabulary()
    store = open_store(f"chdb://{tmp_path / 'store'}")
    store.save_vocabulary(vocabulary)
    bus = open_bus(f"inproc://tagger-{uuid.uuid4().hex[:8]}")
    topics = Topics(partitions=2).prefixed("t-")
    stop = threading.Event()
    # Few, quick retries inside the adapter: the consume loop's own backoff does the waiting.
    backend = open_inference(f"{triton.url}?retries=1&timeout_s=10", *tiny_model)
    tagger = tagger_support.make_tagger(backend, store, vocabulary, RULE, cache_dir=tmp_path, workers=1)
    retrier = Retrier(stop, Backoff(initial_s=0.1, maximum_s=0.5), stage=IMAGE)
    loop = tagger_loop(bus, store, topics, retrier, tagger)
    producer = bus.producer()
    for shard in shards:
        event = shard_event("ds", shard, vocabulary.version, announced_at_ms=1, stages=[IMAGE])
        producer.send(topics.shards, event.SerializeToString(), shard_key("ds", shard))
    producer.flush()
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()

    def done() -> int:
        return sum(s.stage == IMAGE and s.state == DONE for s in store.shard_states("ds", vocabulary.version))

    try:
        deadline = time.monotonic() + 120
        while done() < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        with outage(triton):
            at_outage = done()
            time.sleep(2.0)  # the shard in hand fails, is retried with backoff, nothing is committed
            during = done()
        assert at_outage < len(shards), "the run ended before Triton was stopped: make the shards bigger"
        while done() < len(shards) and time.monotonic() < deadline:
            if any(s.state == "failed" for s in store.shard_states("ds", vocabulary.version)):
                break
            time.sleep(0.1)
        assert done() == len(shards)
        assert during <= at_outage + 1  # at most the shard whose images were all encoded before the stop
        states = store.shard_states("ds", vocabulary.version)
        assert not [s for s in states if s.state == "failed"]
        assert image_counts_by_shard(store, "ds", vocabulary.version) == {s: c for s, c in reference.items() if c}
        attempts = store.visible_image_attempts("ds", vocabulary.version)
        assert all(a.samples == 48 and a.model_id == backend.model_id for a in attempts.values())
        dead = bus.consumer([topics.dead_letter], "check")
        assert dead.poll(0.2) == []
        dead.close()
    finally:
        stop.set()
        thread.join(30)
        tagger.close()
        backend.close()
        store.close()
