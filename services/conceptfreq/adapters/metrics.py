"""Prometheus metrics of every service. Names are shared so one Grafana dashboard reads them all
(deploy/grafana/); the `stage` label says which service a sample passed through."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

GRPC_REQUESTS = Counter("conceptfreq_grpc_requests_total", "gRPC requests served", ["service", "method", "code"])
GRPC_SECONDS = Histogram("conceptfreq_grpc_request_seconds", "gRPC request latency", ["service", "method", "code"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
SAMPLES = Counter("conceptfreq_samples_total", "samples processed", ["stage", "dataset"])
SKIPPED = Counter("conceptfreq_samples_skipped_total", "samples skipped, by reason", ["stage", "dataset", "reason"])
SHARDS = Counter("conceptfreq_shards_total", "shards finished, by final state", ["stage", "dataset", "state"])
SHARD_SECONDS = Histogram("conceptfreq_shard_seconds", "time to process one shard", ["stage"],
                          buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
IN_FLIGHT = Gauge("conceptfreq_shards_in_flight", "shards being processed now", ["stage"])
CONSUMER_LAG = Gauge("conceptfreq_consumer_lag", "messages behind the partition high-watermark", ["group", "topic"])
# Stalls (adapters/bus/liveness.py): a worker that is assigned nothing, or consumes nothing, while its group has lag.
CONSUMER_ASSIGNED = Gauge("conceptfreq_consumer_assigned_partitions", "partitions assigned to this consumer", ["group", "topic"])
CONSUMER_IDLE = Gauge("conceptfreq_consumer_seconds_since_progress",
                      "seconds since this consumer last handled a message or its group last had no lag", ["group"])
CONSUMER_STALLED = Gauge("conceptfreq_consumer_stalled", "1 while the group has lag and this consumer made no progress", ["group"])
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


def start_metrics(port: int, host: str = "0.0.0.0") -> None:
    """Serve /metrics on `port` of `host` (the service's own listen address); 0 disables it (tests,
    CLI runs). A port in use is a one-line error."""
    if port:
        try:
            start_http_server(port, addr=host)
        except OSError as error:
            from conceptfreq.errors import UserError

            raise UserError(f"cannot serve metrics on port {port} of {host}: {error.strerror or error} "
                            "(is another service on it? choose another with --metrics-port)") from None
