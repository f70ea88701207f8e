"""Evaluation end to end: the CLI on both stores with known answers, the paper's JSON format,
Kafka-sharded evaluation with the real broker equal to the local run, the gRPC EvaluatorService,
and retrieval per concept."""

from __future__ import annotations

import json
import threading
import time
import uuid

import grpc
import numpy as np
import pytest

from conceptfreq.adapters.bus import Topics, open_bus
from conceptfreq.adapters.bus.retry import Backoff, Retrier
from conceptfreq.adapters.grpc_server import serve
from conceptfreq.adapters.inference import INFERENCE_SCHEMES
from conceptfreq.adapters.store import open_store
from conceptfreq.cli import main
from conceptfreq.core.vocabulary import load
from conceptfreq.evaluator.main import evaluator_loop
from conceptfreq.evaluator.results import EvalStore
from conceptfreq.evaluator.run import Evaluator, InferenceConfig, shard_event
from conceptfreq.evaluator.service import EvaluatorServicer, registration
from conceptfreq.evaluator.synthetic import COLOR_NAMES, color_backend, samples, write_imagefolder, write_wds
from conceptfreq.v1 import evaluator_pb2 as pb
from conceptfreq.v1 import evaluator_pb2_grpc as pb_grpc
from tests.unit.test_evaluation import CLASS_COLORS, NAMES, PAINT, PER_CLASS, hand_check

KAFKA_TEST_OPTIONS = "?session_timeout_ms=2000&heartbeat_interval_ms=300"


@pytest.fixture
def colors(monkeypatch):
    monkeypatch.setitem(INFERENCE_SCHEMES, "color", color_backend)


@pytest.fixture
def vocab_file(tmp_path):
    path = tmp_path / "colors.txt"
    path.write_text("\n".join(COLOR_NAMES) + "\n")
    return path


def cli(capsys, *args) -> tuple[int, str, str]:
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_known_answers_land_in_the_store(capsys, tmp_path, store_url, colors, vocab_file):
    data = write_imagefolder(tmp_path / "colors", NAMES, samples(6, PER_CLASS, paint=PAINT, seed=7, size=16, colors=CLASS_COLORS))
    args = ["evaluate", "--inference", "color://", "--model", "conceptfreq-tiny", "--pretrained", "random", "--data", data,
            "--name", "syn", "--vocab", vocab_file, "--store", store_url, "--shard-size", "7", "--cache-dir", tmp_path / "cache",
            "--json", "--no-progress"]
    status, out, err = cli(capsys, *args)
    assert status == 0, err
    first = json.loads(out)
    top1, top5, totals = hand_check()
    assert [(c["class"], c["correct_top1"], c["correct_top5"], c["total"]) for c in first["classes"]] == list(zip(NAMES, top1, top5, totals))
    assert first["shards"] == first["shards_done"] == 4 and first["samples"] == sum(PER_CLASS)
    assert first["top1"] == pytest.approx(100 * sum(top1) / sum(totals))
    assert first["mean_per_class_recall"] == pytest.approx(100 * np.mean(np.array(top1) / np.array(totals)))
    assert first["pretrained"] == "random-seed0" and first["prompts"] == "ensemble" and first["templates"] == 80

    # Again: every shard is already done; with --force every shard is redone. Neither adds anything.
    for extra in ([], ["--force"]):
        status, out, err = cli(capsys, *args, *extra)
        assert status == 0, err
        again = json.loads(out)
        assert again["classes"] == first["classes"] and again["evaluation_id"] == first["evaluation_id"]

    # Per-class results for the reporter, with the model, the prompts and the vocabulary recorded.
    store = open_store(store_url)
    try:
        rows = EvalStore(store).results("conceptfreq-tiny", "syn")
        version = load(str(vocab_file)).version
        (recorded,), = store._execute("SELECT DISTINCT vocabulary_version FROM {db}.zero_shot_results WHERE source = 'evaluator'")
    finally:
        store.close()
    assert recorded == version
    assert {r.class_name: (r.pretrained, r.prompts, r.concept_id, r.correct, r.total, r.source) for r in rows} == {
        name: ("random-seed0", "ensemble", COLOR_NAMES.index(name), top1[i], totals[i], "evaluator") for i, name in enumerate(NAMES)}

    status, out, err = cli(capsys, "results", "--model", "conceptfreq-tiny", "--data", "syn", "--store", store_url)
    assert status == 0, err
    listed = [line.split()[-1] for line in out.splitlines()[2:]]
    accuracy = {name: top1[i] / totals[i] for i, name in enumerate(NAMES)}
    assert listed == sorted(NAMES, key=lambda n: (accuracy[n], n))  # worst first

    # The paper's zero_shot_evaluations format, read back by the reporter's reader.
    from conceptfreq.reporter.paper import PaperArtifacts

    status, out, _ = cli(capsys, "results", "--model", "conceptfreq-tiny", "--data", "syn", "--store", store_url, "--format", "paper")
    document = json.loads(out)
    assert document["backboneconceptfreq-tiny_pretrainedrandom-seed0"]["full"] == round(first["top1"], 2)
    (tmp_path / "paper" / "search_counts").mkdir(parents=True)
    (tmp_path / "paper" / "zero_shot_evaluations").mkdir()
    (tmp_path / "paper" / "zero_shot_evaluations" / "syn_ensemble_results.json").write_text(out)
    read_back = PaperArtifacts(tmp_path / "paper").evaluations("syn", "ensemble")
    assert read_back == {("conceptfreq-tiny", "random-seed0"): {n: round(100 * accuracy[n], 2) for n in NAMES}}

    status, _, err = cli(capsys, "results", "--model", "ViT-B-32", "--data", "syn", "--store", store_url)
    assert status == 2 and "no results" in err


def test_bad_input_is_one_line(capsys, tmp_path, chdb_url, vocab_file):
    data = write_imagefolder(tmp_path / "if", ["red", "unicorn"], samples(2, 1, size=16))
    base = ["evaluate", "--data", data, "--vocab", vocab_file, "--store", chdb_url, "--no-progress"]
    for extra, message in [(["--model", "ViT-B-99"], "unknown model 'ViT-B-99'"),
                           (["--model", "ViT-B-32", "--pretrained", "laion400m_e32"], "1 of 2 classes map to no concept"),
                           (["--model", "ViT-B-32", "--pretrained", "laion400m_e32", "--allow-unmapped"], "cannot fetch the weights"),
                           (["--model", "ViT-B-32", "--pretrained", "nope", "--allow-unmapped"], "tags of ViT-B-32: openai"),
                           (["--model", "ViT-B-32", "--via", "kafka", "--allow-unmapped"], "--via kafka needs a kafka:// bus")]:
        status, _, err = cli(capsys, *base, *extra)
        last = err.strip().splitlines()[-1]
        assert status == 2 and message in last and "Traceback" not in err, (extra, err)


def _wait(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class EvaluatorThreads:
    """n evaluator services (consume loops) in this process, each with its own store client and model."""

    def __init__(self, bus_url: str, store_url: str, topics: Topics, topic: str, n: int = 2, inference: str = "torch://cpu"):
        self.stop = threading.Event()
        self.threads, self.evaluators = [], []
        for _ in range(n):
            evaluator = Evaluator(open_store(store_url), InferenceConfig(inference, workers=1))
            loop = evaluator_loop(open_bus(bus_url), evaluator, topics, Retrier(self.stop, Backoff(0.05, 0.5)), topic=topic)
            self.evaluators.append(evaluator)
            self.threads.append(threading.Thread(target=loop.run, daemon=True))
        for thread in self.threads:
            thread.start()

    def close(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(30)
        for evaluator in self.evaluators:
            evaluator.close()
            evaluator.store.close()


def _counts(store_url: str, evaluation_id: str):
    store = open_store(store_url)
    try:
        results = EvalStore(store)
        spec = results.spec(evaluation_id)
        totals = results.totals(spec)
        published = sorted((r.class_name, r.concept_id, r.correct, r.total, r.accuracy) for r in results.results(spec.model, spec.eval_dataset))
        return (totals.correct_top1.tolist(), totals.correct_top5.tolist(), totals.total.tolist()), published, results.progress(spec)
    finally:
        store.close()


def test_kafka_sharded_evaluation_equals_the_local_run(capsys, tmp_path, kafka, clickhouse, tiny_model):
    """The real tiny CLIP (arbitrary but deterministic answers), four eval shards, two evaluator
    services sharing them over the real broker: exactly the local run's counts and results."""
    names = ["dog", "cat", "tench", "goose", "church", "parachute"]
    data = write_wds(tmp_path / "wds", names, samples(6, 6, seed=11, size=40), shards=4)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(names) + "\n")
    local_url, bus_url = clickhouse.url(f"local_{uuid.uuid4().hex[:8]}"), clickhouse.url(f"bus_{uuid.uuid4().hex[:8]}")
    common = ["--model", tiny_model[0], "--pretrained", tiny_model[1], "--data", data, "--name", "wds6", "--vocab", vocab,
              "--prompts", "simple", "--inference", "torch://cpu", "--cache-dir", tmp_path / "cache", "--json", "--no-progress"]
    status, out, err = cli(capsys, "evaluate", *common, "--store", local_url)
    assert status == 0, err
    local = json.loads(out)

    topics = Topics(partitions=4).prefixed(f"t{uuid.uuid4().hex[:8]}-")
    topic = topics.shards.replace("shards", "eval-shards")
    bus = kafka.url + KAFKA_TEST_OPTIONS
    services = EvaluatorThreads(bus, bus_url, topics, topic, n=2)
    try:
        status, out, err = cli(capsys, "evaluate", *common, "--store", bus_url, "--via", "kafka", "--bus", bus,
                               "--topic-eval-shards", topic, "--partitions", "4", "--timeout", "120")
        assert status == 0, err
        sharded = json.loads(out)
        assert sharded["evaluation_id"] == local["evaluation_id"] and sharded["shards_done"] == 4
        assert sharded["classes"] == local["classes"] and sharded["top1"] == local["top1"]
        assert _counts(bus_url, local["evaluation_id"])[:2] == _counts(local_url, local["evaluation_id"])[:2]

        # A redelivered event changes nothing; a forced one re-evaluates the shard, replacing its counts.
        store = open_store(bus_url)
        spec = EvalStore(store).spec(local["evaluation_id"])
        store.close()
        before = _counts(bus_url, spec.evaluation_id)
        attempts = {s: r.attempt_id for s, r in before[2].states.items()}
        producer = open_bus(bus).producer()
        producer.send(topic, shard_event(spec, spec.shards[0]).SerializeToString(), b"again")
        producer.send(topic, shard_event(spec, spec.shards[1], force=True).SerializeToString(), b"forced")
        producer.flush()
        producer.close()
        _wait(lambda: _counts(bus_url, spec.evaluation_id)[2].states[spec.shards[1]].attempt_id != attempts[spec.shards[1]],
              what="the forced shard")
        after = _counts(bus_url, spec.evaluation_id)
        assert after[0] == before[0] and after[1] == before[1]
        assert after[2].states[spec.shards[0]].attempt_id == attempts[spec.shards[0]]
    finally:
        services.close()


def test_grpc_evaluator_service(tmp_path, store_url, colors, vocab_file):
    data = write_wds(tmp_path / "wds", NAMES, samples(6, PER_CLASS, paint=PAINT, seed=3, size=16, colors=CLASS_COLORS), shards=3)
    bus_url = f"inproc://eval-{uuid.uuid4().hex}"
    topics = Topics(partitions=2).prefixed("g-")
    store = open_store(store_url)  # one store object for the servicer and the evaluator loop (chDB: one opener per process)
    evaluator = Evaluator(store, InferenceConfig("color://", cache_dir=str(tmp_path / "cache")))
    stop = threading.Event()
    bus = open_bus(bus_url)
    loop = evaluator_loop(bus, evaluator, topics, Retrier(stop, Backoff(0.05, 0.5)), topic="g-eval-shards")
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    servicer = EvaluatorServicer(evaluator, bus, topic="g-eval-shards", partitions=2, vocabulary=load(str(vocab_file)))
    server, port = serve([registration(servicer)], 0, "127.0.0.1")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = pb_grpc.EvaluatorServiceStub(channel)
    try:
        started = stub.StartEvaluation(pb.StartEvaluationRequest(model="conceptfreq-tiny", pretrained="random", data=str(data),
                                                                 prompts="simple", eval_dataset="colors"))
        assert started.shards == 3 and started.classes == 6 and started.published == 3 and not started.unmapped
        _wait(lambda: stub.GetEvaluation(pb.GetEvaluationRequest(evaluation_id=started.evaluation_id, summary_only=True)).state == "done",
              what="the evaluation")
        result = stub.GetEvaluation(pb.GetEvaluationRequest(evaluation_id=started.evaluation_id))
        top1, top5, totals = hand_check()
        assert {c.name: (c.correct_top1, c.correct_top5, c.total, c.concept_id) for c in result.classes} == {
            name: (top1[i], top5[i], totals[i], COLOR_NAMES.index(name)) for i, name in enumerate(NAMES)}
        assert [c.accuracy for c in result.classes] == sorted(c.accuracy for c in result.classes)  # worst first
        assert result.shards_done == 3 and result.samples == sum(PER_CLASS) and result.model_ids == ["color/palette"]
        assert result.top1 == pytest.approx(100 * sum(top1) / sum(totals))
        listed = stub.ListEvaluations(pb.ListEvaluationsRequest(model="conceptfreq-tiny"))
        assert [e.evaluation_id for e in listed.evaluations] == [started.evaluation_id] and not listed.evaluations[0].classes
        again = stub.StartEvaluation(pb.StartEvaluationRequest(model="conceptfreq-tiny", pretrained="random", data=str(data),
                                                               prompts="simple", eval_dataset="colors"))
        assert again.evaluation_id == started.evaluation_id and again.published == 0

        for request, code in [(pb.GetEvaluationRequest(evaluation_id="nope"), grpc.StatusCode.NOT_FOUND)]:
            with pytest.raises(grpc.RpcError) as error:
                stub.GetEvaluation(request)
            assert error.value.code() == code
        for request in [pb.StartEvaluationRequest(model="ViT-B-99", data=str(data)),
                        pb.StartEvaluationRequest(model="conceptfreq-tiny", data=str(tmp_path / "missing")),
                        pb.StartEvaluationRequest(model="conceptfreq-tiny", data=str(data), prompts="fancy")]:
            with pytest.raises(grpc.RpcError) as error:
                stub.StartEvaluation(request)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        with pytest.raises(grpc.RpcError) as error:
            stub.StartEvaluation(pb.StartEvaluationRequest(model="conceptfreq-tiny", data=str(data), vocabulary_version="0" * 16))
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        channel.close()
        server.stop(0)
        stop.set()
        thread.join(30)
        evaluator.close()
        store.close()


def test_retrieval_per_concept(capsys, tmp_path, store_url, colors):
    """Four images, five captions; one blue image is captioned green: its caption ranks behind the
    green image's (t2i) and its own image prefers the blue dog's caption (i2t). Known by construction."""
    items = samples(4, 1, seed=1, size=16, colors=[0, 2, 2, 1])  # red, blue, blue, green
    captions = [["a red dog", "a red cat"], ["a blue dog"], ["a green bird"], ["a green cat"]]
    data = write_wds(tmp_path / "coco", None, items, shards=2, captions=captions)
    vocab = tmp_path / "animals.txt"
    vocab.write_text("dog\ncat\nbird\n")
    status, out, err = cli(capsys, "evaluate", "--task", "retrieval", "--inference", "color://", "--model", "conceptfreq-tiny",
                           "--pretrained", "random", "--data", data, "--name", "coco-syn", "--vocab", vocab, "--store", store_url,
                           "--json", "--no-progress")
    assert status == 0, err
    result = json.loads(out)
    assert (result["images"], result["captions"]) == (4, 5)
    assert result["t2i"] == {"r@1": 80.0, "r@5": 100.0, "r@10": 100.0} and result["i2t"]["r@1"] == 75.0
    concepts = {row["concept"]: row for row in result["concepts"]}
    assert {n: (concepts[n]["t2i_r@1"], concepts[n]["t2i_n"], concepts[n]["i2t_r@1"], concepts[n]["i2t_n"]) for n in concepts} == {
        "dog": (100.0, 2, 100.0, 2), "cat": (100.0, 2, 100.0, 2), "bird": (0.0, 1, 0.0, 1)}
    assert concepts["bird"]["t2i_r@5"] == 100.0

    status, out, err = cli(capsys, "results", "--task", "retrieval", "--model", "conceptfreq-tiny", "--data", "coco-syn",
                           "--store", store_url, "--format", "json")
    assert status == 0, err
    stored = {row["concept"]: row for row in json.loads(out)}
    assert stored["bird"]["t2i_r@1"] == 0.0 and stored["dog"]["i2t_r@10"] == 100.0 and stored["cat"]["t2i_n"] == 2
    assert next(iter(stored)) == "bird"  # worst first
