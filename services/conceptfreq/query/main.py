"""The query service: FrequencyService over the count store, answered from the totals in memory."""

from __future__ import annotations

import threading

from conceptfreq.adapters.grpc_server import serve, wait_for_termination
from conceptfreq.adapters.metrics import start_metrics
from conceptfreq.adapters.store import open_store
from conceptfreq.pipeline.config import QueryServiceConfig
from conceptfreq.query.index import FrequencyIndex
from conceptfreq.query.service import registration

DEFAULT_PORT = 50051


def run(config: QueryServiceConfig) -> int:
    store = open_store(config.store_url, read_only=True)
    index = FrequencyIndex(store, max_staleness_s=config.max_staleness_s)
    stop = threading.Event()
    refresher = threading.Thread(target=index.follow, args=(stop,), name="totals-refresher", daemon=True)
    refresher.start()
    start_metrics(config.metrics_port, config.host)
    server, port = serve([registration(store, index)], config.port, config.host, security=config.security)
    print(f"query service on {config.host}:{port} (store {store.location}; totals refreshed every {config.max_staleness_s:g}s)",
          flush=True)

    def close() -> None:
        stop.set()
        refresher.join(timeout=5)
        store.close()

    wait_for_termination(server, on_stop=close)
    return 0
