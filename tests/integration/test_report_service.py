"""ReportService over gRPC: every RPC, status codes, health checking and reflection."""

from __future__ import annotations

import json
import math

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from conceptfreq.adapters.grpc_server import serve
from conceptfreq.adapters.store import open_store
from conceptfreq.devservers._process import free_port
from conceptfreq.reporter.importer import import_paper
from conceptfreq.reporter.paper import PaperArtifacts
from conceptfreq.reporter.service import registration
from conceptfreq.reporter.store_source import StoreSource
from conceptfreq.v1 import report_pb2 as pb
from conceptfreq.v1 import report_pb2_grpc as pb_grpc
from tests.unit.test_report_artifacts import make_artifacts


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> PaperArtifacts:
    return PaperArtifacts(make_artifacts(tmp_path_factory.mktemp("service") / "artifacts"))


def _serve(source):
    server, port = serve([registration(source)], 0, "127.0.0.1")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return server, channel


@pytest.fixture(scope="module")
def channel(artifacts):
    server, channel = _serve(artifacts)
    yield channel
    channel.close()
    server.stop(0)


@pytest.fixture
def client(channel):
    return pb_grpc.ReportServiceStub(channel)


def trend(**fields) -> pb.FitTrendRequest:
    return pb.FitTrendRequest(**{"dataset": "cc3m", "model": "RN50", "count_kind": "integrated", **fields})


def test_fit_trend(client, artifacts):
    binned = client.FitTrend(trend(method="binned"))
    assert binned.method == "binned" and binned.n_concepts == 200 and len(binned.bins) == 12
    assert binned.count_rule == "integrated_tlemmatized_i0.7" and not binned.HasField("slope_ci")
    assert json.loads(binned.details_json)["pearson"] == pytest.approx(binned.pearson)
    per_concept = client.FitTrend(trend(method="per-concept", bootstrap_resamples=200, seed=5))
    assert per_concept.slope_ci.lower < per_concept.slope_per_decade < per_concept.slope_ci.upper
    assert per_concept.frequency_multiplier_for_10_points > 1 and per_concept.robust_slope_per_decade > 0
    assert client.FitTrend(trend(method="per-concept", bootstrap_resamples=200, seed=5)).slope_ci == per_concept.slope_ci


def test_predict_and_budget(client):
    answer = client.Predict(pb.PredictRequest(trend=trend(), concepts=["dtd class 03"], frequencies=[10, 1e6]))
    assert answer.method == "logit" and len(answer.predictions) == 3
    concept, low, high = answer.predictions
    assert concept.concept == "dtd class 03" and concept.HasField("observed_accuracy")
    assert not low.HasField("observed_accuracy") and low.accuracy < high.accuracy
    assert low.prediction_interval.lower <= low.confidence_interval.lower <= low.accuracy <= low.prediction_interval.upper
    budget = client.DataBudget(pb.DataBudgetRequest(trend=trend(), concept="dtd class 03", target_accuracy=60))
    assert budget.reachable and budget.required_frequency > 0 and budget.HasField("concept_adjusted_frequency")
    bare = client.DataBudget(pb.DataBudgetRequest(trend=trend(method="per-concept"), target_accuracy=60, current_frequency=10))
    assert bare.current_frequency == 10 and bare.additional_samples == math.ceil(bare.required_frequency - 10)


def test_long_tail(client):
    answer = client.LongTail(pb.LongTailRequest(k=6, model="RN50"))
    assert len(answer.concepts) == 6 and answer.candidates == 140 and answer.shared_concepts == 140  # imagenet-sketch repeats imagenet
    assert [c.dataset for c in answer.concepts[0].counts] == ["cc12m", "cc3m"]
    assert answer.concepts[0].counts[0].HasField("predicted_accuracy")
    assert answer.reference_size == 5 and [(p.a, p.b) for p in answer.spearman] == [("cc12m", "cc3m")]
    plain = client.LongTail(pb.LongTailRequest(k=6, no_tie_break=True, reference=["food101_class_00"]))
    assert plain.reference_size == 1 and not plain.concepts[0].counts[0].HasField("predicted_accuracy")


def test_render_report(client):
    html = client.RenderReport(pb.RenderReportRequest(dataset="cc3m", models=["RN50"], count_kind="integrated", k=5))
    assert html.content_type.startswith("text/html") and html.content.startswith(b"<!DOCTYPE html>")
    assert list(html.figures) == ["trend-RN50.png", "long-tail.png", "cross-dataset.png"]
    png = client.RenderReport(pb.RenderReportRequest(dataset="cc3m", models=["RN50"], count_kind="integrated",
                                                     format="png", figure="cross-dataset.png", k=5))
    assert png.content_type == "image/png" and png.content.startswith(b"\x89PNG") and len(png.content) > 5000


@pytest.mark.parametrize("method, request_message, code", [
    ("FitTrend", trend(dataset=""), grpc.StatusCode.INVALID_ARGUMENT),
    ("FitTrend", trend(model=""), grpc.StatusCode.INVALID_ARGUMENT),
    ("FitTrend", trend(method="quadratic"), grpc.StatusCode.INVALID_ARGUMENT),
    ("FitTrend", trend(count_kind="bm25"), grpc.StatusCode.INVALID_ARGUMENT),
    ("FitTrend", trend(model="RN51"), grpc.StatusCode.NOT_FOUND),
    ("FitTrend", trend(dataset="laion400m"), grpc.StatusCode.NOT_FOUND),
    ("FitTrend", trend(confidence_level=1.5), grpc.StatusCode.INVALID_ARGUMENT),
    ("Predict", pb.PredictRequest(trend=trend()), grpc.StatusCode.INVALID_ARGUMENT),
    ("Predict", pb.PredictRequest(trend=trend(method="binned"), frequencies=[5]), grpc.StatusCode.INVALID_ARGUMENT),
    ("Predict", pb.PredictRequest(trend=trend(), concepts=["unicorn"]), grpc.StatusCode.NOT_FOUND),
    ("DataBudget", pb.DataBudgetRequest(trend=trend(), concept="dtd class 03", target_accuracy=0), grpc.StatusCode.INVALID_ARGUMENT),
    ("LongTail", pb.LongTailRequest(datasets=["nope"]), grpc.StatusCode.NOT_FOUND),
    ("LongTail", pb.LongTailRequest(combine="median"), grpc.StatusCode.INVALID_ARGUMENT),
    ("RenderReport", pb.RenderReportRequest(dataset="cc3m", format="pdf"), grpc.StatusCode.INVALID_ARGUMENT),
    ("RenderReport", pb.RenderReportRequest(dataset="cc3m", models=["RN50"], count_kind="integrated", format="png",
                                            figure="nope.png", k=5), grpc.StatusCode.INVALID_ARGUMENT),
])
def test_errors_carry_status_codes(client, method, request_message, code):
    with pytest.raises(grpc.RpcError) as error:
        getattr(client, method)(request_message)
    assert error.value.code() == code
    assert "Traceback" not in error.value.details()


def test_store_backed_and_store_down(tmp_path, artifacts):
    store = open_store(f"chdb://{tmp_path / 'store'}")
    import_paper(store, artifacts, datasets=["cc3m"], prompts=["ensemble"])
    server, channel = _serve(StoreSource(store))
    try:
        answer = pb_grpc.ReportServiceStub(channel).FitTrend(pb.FitTrendRequest(dataset="cc3m", model="RN50"))
        assert answer.count_rule == "integrated_tlemmatized_i0.7" and answer.n_concepts == 200
    finally:
        channel.close(), server.stop(0), store.close()
    down = open_store(f"clickhouse://127.0.0.1:{free_port()}/nowhere", migrate=False)
    server, channel = _serve(StoreSource(down))
    try:
        with pytest.raises(grpc.RpcError) as error:
            pb_grpc.ReportServiceStub(channel).FitTrend(pb.FitTrendRequest(dataset="cc3m", model="RN50"))
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        channel.close(), server.stop(0)


def test_health_and_reflection(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "conceptfreq.v1.ReportService"):
        assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    [answer] = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    assert "conceptfreq.v1.ReportService" in {s.name for s in answer.list_services_response.service}
