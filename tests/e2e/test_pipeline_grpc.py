"""ParserService over gRPC: unary and streaming calls, status codes, health and reflection."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from conceptfreq.adapters.grpc_server import serve
from conceptfreq.adapters.store import open_store
from conceptfreq.core.vocabulary import from_names
from conceptfreq.parser.service import Vocabularies, registration
from conceptfreq.v1 import parser_pb2 as pb
from conceptfreq.v1 import parser_pb2_grpc as pb_grpc

DEFAULT = from_names([["dog", "puppy"], ["cat"], ["great white shark"]])
OTHER = from_names([["zebra"], ["sports car"]])


@pytest.fixture
def parser(chdb_url):
    store = open_store(chdb_url)
    store.save_vocabulary(OTHER)
    server, port = serve([registration(Vocabularies(store, DEFAULT))], 0, "127.0.0.1")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield channel
    channel.close()
    server.stop(0).wait()
    store.close()


def test_unary_parse_uses_the_default_vocabulary_or_a_stored_one(parser):
    stub = pb_grpc.ParserServiceStub(parser)
    reply = stub.ParseCaptions(pb.ParseCaptionsRequest(captions=["A puppy and a cat.", "a great white shark!", "", "nothing"]))
    assert reply.vocabulary_version == DEFAULT.version
    assert [list(r.names) for r in reply.results] == [["dog", "cat"], ["great white shark"], [], []]
    assert [list(r.concept_ids) for r in reply.results][0] == [DEFAULT.get("dog").id, DEFAULT.get("cat").id]
    other = stub.ParseCaptions(pb.ParseCaptionsRequest(captions=["red sports car"], vocabulary_version=OTHER.version))
    assert [list(r.names) for r in other.results] == [["sports car"]]


def test_streaming_answers_each_batch_in_order(parser):
    stub = pb_grpc.ParserServiceStub(parser)
    batches = [pb.ParseCaptionsRequest(captions=[f"{n} dogs"] * n) for n in (1, 3, 2)]
    replies = list(stub.ParseCaptionsStream(iter(batches)))
    assert [len(r.results) for r in replies] == [1, 3, 2]
    assert all(list(c.names) == ["dog"] for r in replies for c in r.results)


@pytest.mark.parametrize("request_, code", [
    (pb.ParseCaptionsRequest(captions=["x"], vocabulary_version="nope"), grpc.StatusCode.NOT_FOUND),
    (pb.ParseCaptionsRequest(captions=["x"], method="regex"), grpc.StatusCode.INVALID_ARGUMENT),
    (pb.ParseCaptionsRequest(captions=["x"] * 10_001), grpc.StatusCode.INVALID_ARGUMENT),
])
def test_bad_requests_get_status_codes_not_tracebacks(parser, request_, code):
    with pytest.raises(grpc.RpcError) as error:
        pb_grpc.ParserServiceStub(parser).ParseCaptions(request_)
    assert error.value.code() == code
    assert "Traceback" not in error.value.details()


def test_health_and_reflection(parser):
    health = health_pb2_grpc.HealthStub(parser).Check(health_pb2.HealthCheckRequest(service="conceptfreq.v1.ParserService"))
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(parser)
    [reply] = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    assert "conceptfreq.v1.ParserService" in {s.name for s in reply.list_services_response.service}
