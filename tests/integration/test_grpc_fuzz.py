"""Fuzz: every RPC of every gRPC service, unary or streaming, answers request bytes that do not
decode with INVALID_ARGUMENT (never INTERNAL or UNKNOWN). The services are discovered from the
generated descriptors, so a new service or method is fuzzed without touching this test; the
server is the one every service runs (adapters/grpc_server.serve), with the real servicers."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from google.protobuf import message_factory

from conceptfreq.adapters.grpc_server import serve
from conceptfreq.adapters.store import open_store
from conceptfreq.core.vocabulary import from_names
from conceptfreq.evaluator import service as evaluator_service
from conceptfreq.parser import service as parser_service
from conceptfreq.pipeline.vocabularies import Vocabularies
from conceptfreq.query import service as query_service
from conceptfreq.reporter import service as reporter_service
from conceptfreq.reporter.store_source import StoreSource
from conceptfreq.tagger import service as tagger_service
from conceptfreq.v1 import evaluator_pb2, frequency_pb2, parser_pb2, report_pb2, tagger_pb2

PROTO_MODULES = [frequency_pb2, parser_pb2, tagger_pb2, report_pb2, evaluator_pb2, health_pb2, reflection_pb2]
METHODS = [(service.full_name, method) for module in PROTO_MODULES for service in module.DESCRIPTOR.services_by_name.values()
           for method in service.methods]


def decodes(method, data: bytes) -> bool:
    try:
        message_factory.GetMessageClass(method.input_type).FromString(data)
        return True
    except Exception:  # noqa: BLE001 - DecodeError and friends
        return False


@pytest.fixture(scope="module")
def channel(tmp_path_factory):
    store = open_store(f"chdb://{tmp_path_factory.mktemp('fuzz') / 'store'}")
    vocabulary = from_names([["cat"], ["dog"]])
    store.save_vocabulary(vocabulary)
    registrations = [
        query_service.registration(store),
        parser_service.registration(Vocabularies(store, vocabulary)),
        reporter_service.registration(StoreSource(store)),
        # Malformed bytes must be refused before a servicer runs: these two get no model or bus.
        tagger_service.registration(None),
        evaluator_service.registration(evaluator_service.EvaluatorServicer(None, None)),
    ]
    served = {r.name for r in registrations}
    ours = {name for name, _ in METHODS if name.startswith("conceptfreq.")}
    assert served == ours, f"services without a server here: {sorted(ours - served)}"
    server, port = serve(registrations, 0, "127.0.0.1")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel
    server.stop(0)
    store.close()


def call(channel: grpc.Channel, service: str, method, data: bytes) -> grpc.StatusCode:
    path = f"/{service}/{method.name}"
    kind = {(False, False): channel.unary_unary, (False, True): channel.unary_stream,
            (True, False): channel.stream_unary, (True, True): channel.stream_stream}[(method.client_streaming, method.server_streaming)]
    rpc = kind(path, request_serializer=None, response_deserializer=None)
    request = iter([data]) if method.client_streaming else data
    try:
        reply = rpc(request, timeout=10)
        if method.server_streaming:
            list(reply)
        return grpc.StatusCode.OK
    except grpc.RpcError as error:
        return error.code()


def test_every_method_kind_is_fuzzed():
    kinds = {(m.client_streaming, m.server_streaming) for _, m in METHODS}
    assert {(False, False), (False, True), (True, True)} <= kinds
    assert ("conceptfreq.v1.ParserService", "ParseCaptionsStream") in {(s, m.name) for s, m in METHODS}


@pytest.mark.parametrize("service, method", METHODS, ids=[f"{s.rsplit('.', 1)[-1]}.{m.name}" for s, m in METHODS])
def test_malformed_requests_get_invalid_argument(channel, service, method):
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
    @given(st.binary(min_size=1, max_size=48).filter(lambda data: not decodes(method, data)))
    def malformed(data: bytes):
        code = call(channel, service, method, data)
        assert code is grpc.StatusCode.INVALID_ARGUMENT, f"{service}/{method.name} answered {code} to {data!r}"

    malformed()


def test_a_valid_message_then_a_malformed_one_on_a_stream(channel):
    """The stream answers the good message, then ends with INVALID_ARGUMENT at the bad one."""
    rpc = channel.stream_stream("/conceptfreq.v1.ParserService/ParseCaptionsStream", request_serializer=None,
                                response_deserializer=parser_pb2.ParseCaptionsResponse.FromString)
    good = parser_pb2.ParseCaptionsRequest(captions=["a cat"]).SerializeToString()
    replies = rpc(iter([good, b"\xff\xff\xff\xff not a message"]), timeout=10)
    first = next(replies)
    assert [list(r.names) for r in first.results] == [["cat"]]
    with pytest.raises(grpc.RpcError) as raised:
        next(replies)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed ParseCaptionsStream request" in raised.value.details()
