"""The counter service: StageResults to counted shards and per-concept totals; gRPC health only."""

from __future__ import annotations

from conceptfreq.adapters.bus import Bus, Topics, open_bus
from conceptfreq.adapters.bus.retry import Retrier
from conceptfreq.adapters.bus.worker import ConsumeLoop, serve_until_stopped, start_loop, start_service
from conceptfreq.adapters.grpc_server import serve
from conceptfreq.adapters.metrics import start_metrics
from conceptfreq.adapters.store import CountStore
from conceptfreq.counter.service import CountStageResults
from conceptfreq.pipeline.progress import COUNTED
from conceptfreq.pipeline.config import CounterServiceConfig

DEFAULT_PORT = 50053


def counter_loop(bus: Bus, store: CountStore, topics: Topics, retrier: Retrier, *, group: str = "counter",
                 batch_s: float = 1.0) -> ConsumeLoop:
    return start_loop(bus, topics, group=group, topic=topics.results, retrier=retrier, max_records=500, batch_s=batch_s,
                      handler=lambda producer: CountStageResults(store))


def run(config: CounterServiceConfig) -> int:
    retrier, store = start_service(COUNTED, config.store_url)
    start_metrics(config.metrics_port, config.host)
    server, port = serve([], config.port, config.host, security=config.security)  # health and reflection, for the orchestrator's probes
    bus, names = open_bus(config.bus), config.topics
    return serve_until_stopped(lambda: counter_loop(bus, store, names, retrier, group=config.group, batch_s=config.batch_seconds), server,
                               f"counter: consuming {names.results} as group {config.group} on {bus.url}; store {store.location}; "
                               f"health on {config.host}:{port}",
                               store.close)
