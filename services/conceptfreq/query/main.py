"""The query service: FrequencyService over the count store."""

from __future__ import annotations

from conceptfreq.adapters.grpc_server import serve, wait_for_termination
from conceptfreq.adapters.metrics import start_metrics
from conceptfreq.adapters.store import open_store
from conceptfreq.pipeline.config import QueryServiceConfig
from conceptfreq.query.service import registration

DEFAULT_PORT = 50051


def run(config: QueryServiceConfig) -> int:
    store = open_store(config.store_url)
    start_metrics(config.metrics_port)
    server, port = serve([registration(store)], config.port, config.host, security=config.security)
    print(f"query service on {config.host}:{port} (store {store.location})", flush=True)
    wait_for_termination(server, on_stop=store.close)
    return 0
