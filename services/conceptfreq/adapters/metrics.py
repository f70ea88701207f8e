"""Prometheus metrics of every service. Names are shared so one Grafana dashboard reads them all
(deploy/grafana/); the `stage` label says which service a sample passed through."""

from __future__ import annotations

import time

import grpc
from prometheus_client import Counter, Gauge, Histogram, start_http_server

GRPC_REQUESTS = Counter("conceptfreq_grpc_requests_total", "gRPC requests served", ["service", "method", "code"])
GRPC_SECONDS = Histogram("conceptfreq_grpc_request_seconds", "gRPC request latency", ["service", "method"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
SAMPLES = Counter("conceptfreq_samples_total", "samples processed", ["stage", "dataset"])
SKIPPED = Counter("conceptfreq_samples_skipped_total", "samples skipped, by reason", ["stage", "dataset", "reason"])
SHARDS = Counter("conceptfreq_shards_total", "shards finished, by final state", ["stage", "dataset", "state"])
SHARD_SECONDS = Histogram("conceptfreq_shard_seconds", "time to process one shard", ["stage"],
                          buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
IN_FLIGHT = Gauge("conceptfreq_shards_in_flight", "shards being processed now", ["stage"])
CONSUMER_LAG = Gauge("conceptfreq_consumer_lag", "messages behind the partition high-watermark", ["group", "topic"])
RETRIES = Counter("conceptfreq_retries_total", "transient failures retried", ["stage", "target"])
DEAD_LETTERS = Counter("conceptfreq_dead_letters_total", "messages sent to the dead-letter topic", ["group", "error_type"])
SHARD_END_TO_END = Histogram("conceptfreq_shard_end_to_end_seconds", "from a shard's announcement (ingest) to its counting",
                             buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600))
# Inference (torch:// and triton://) and evaluation. `tower` is "image" or "text".
INFERENCE_SECONDS = Histogram("conceptfreq_inference_seconds", "time of one encode call to the inference backend",
                              ["backend", "tower"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
INFERENCE_RETRIES = Counter("conceptfreq_inference_retries_total", "transient inference failures retried", ["backend", "code"])
EVAL_TOP1 = Gauge("conceptfreq_eval_top1_accuracy", "overall top-1 accuracy (percent) of an evaluation, as far as it got",
                  ["model", "pretrained", "eval_dataset", "prompts"])


def start_metrics(port: int) -> None:
    """Serve /metrics on `port`; 0 disables it (tests, CLI runs)."""
    if port:
        start_http_server(port)


class _Undecodable:
    """Stands in for a request whose bytes are not a valid message."""

    def __init__(self, error: Exception):
        self.error = error


def _tolerant(deserializer):
    def decode(data: bytes):
        try:
            return deserializer(data) if deserializer else data
        except Exception as error:  # noqa: BLE001 - protobuf raises DecodeError or others
            return _Undecodable(error)
    return decode


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts and times every unary gRPC call by service, method and status code, and answers
    malformed request bytes with INVALID_ARGUMENT (grpc's own answer would be INTERNAL)."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        service, _, method = handler_call_details.method.strip("/").rpartition("/")
        behaviour = handler.unary_unary

        def timed(request, context):
            started = time.perf_counter()
            try:
                if isinstance(request, _Undecodable):
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed {method} request: {request.error}")
                response = behaviour(request, context)
                code = context.code() or grpc.StatusCode.OK
                return response
            except BaseException:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            finally:
                GRPC_SECONDS.labels(service, method).observe(time.perf_counter() - started)
                GRPC_REQUESTS.labels(service, method, code.name).inc()

        return grpc.unary_unary_rpc_method_handler(timed, request_deserializer=_tolerant(handler.request_deserializer),
                                                   response_serializer=handler.response_serializer)
