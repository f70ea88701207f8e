"""FrequencyService over gRPC: answers, status codes, health checking and reflection."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from conceptfreq.adapters.grpc_server import serve
from conceptfreq.core.counting import ShardResult
from conceptfreq.core.vocabulary import from_names
from conceptfreq.query.service import registration
from conceptfreq.v1 import frequency_pb2 as pb
from conceptfreq.v1 import frequency_pb2_grpc as pb_grpc

VOCAB = from_names([["dog", "puppy"], ["cat"], ["tench"]])


@pytest.fixture
def stub(store):
    store.save_vocabulary(VOCAB)
    store.write_shard(ShardResult("cc", VOCAB.version, "s0", "text", samples=100, counts={0: 40, 1: 7}, rule="phrase"))
    server, port = serve([registration(store)], 0, "127.0.0.1")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield channel
    channel.close()
    server.stop(0)


def test_get_frequencies(stub):
    response = pb_grpc.FrequencyServiceStub(stub).GetFrequencies(pb.GetFrequenciesRequest(dataset="cc", concepts=["Puppies", "tench", "zebra"]))
    assert [(f.name, f.text) for f in response.frequencies] == [("dog", 40), ("tench", 0)]
    assert list(response.unknown) == ["zebra"] and response.samples == 100
    assert response.vocabulary_version == VOCAB.version


def test_top_concepts(stub):
    client = pb_grpc.FrequencyServiceStub(stub)
    assert [f.name for f in client.TopConcepts(pb.TopConceptsRequest(dataset="cc", k=2)).frequencies] == ["dog", "cat"]
    assert [f.name for f in client.TopConcepts(pb.TopConceptsRequest(dataset="cc", k=1, rarest=True)).frequencies] == ["tench"]
    [summary] = client.ListDatasets(pb.ListDatasetsRequest()).datasets
    assert (summary.dataset, summary.shards_done, summary.samples) == ("cc", 1, 100)


@pytest.mark.parametrize("request_message, method, code", [
    (pb.GetFrequenciesRequest(dataset="nope", concepts=["dog"]), "GetFrequencies", grpc.StatusCode.NOT_FOUND),
    (pb.GetFrequenciesRequest(dataset="", concepts=["dog"]), "GetFrequencies", grpc.StatusCode.INVALID_ARGUMENT),
    (pb.GetFrequenciesRequest(dataset="cc"), "GetFrequencies", grpc.StatusCode.INVALID_ARGUMENT),
    (pb.TopConceptsRequest(dataset="cc", kind="smell"), "TopConcepts", grpc.StatusCode.INVALID_ARGUMENT),
    (pb.GetFrequenciesRequest(dataset="cc", concepts=["dog"], image_rule="softmax:p=0.99"), "GetFrequencies", grpc.StatusCode.NOT_FOUND),
    (pb.GetFrequenciesRequest(dataset="cc", concepts=["dog"], vocabulary_version="feedface"), "GetFrequencies", grpc.StatusCode.NOT_FOUND),
])
def test_errors_carry_status_codes(stub, request_message, method, code):
    with pytest.raises(grpc.RpcError) as error:
        getattr(pb_grpc.FrequencyServiceStub(stub), method)(request_message)
    assert error.value.code() == code
    assert "Traceback" not in error.value.details()


def test_malformed_bytes_are_invalid_argument(stub):
    call = stub.unary_unary("/conceptfreq.v1.FrequencyService/GetFrequencies")
    with pytest.raises(grpc.RpcError) as error:
        call(b"\xff\xff\xff not a protobuf")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "malformed" in error.value.details()


def test_health_and_reflection(stub):
    health = health_pb2_grpc.HealthStub(stub)
    for service in ("", "conceptfreq.v1.FrequencyService"):
        assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(stub)
    [answer] = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for s in answer.list_services_response.service}
    assert {"conceptfreq.v1.FrequencyService", "grpc.health.v1.Health"} <= names
