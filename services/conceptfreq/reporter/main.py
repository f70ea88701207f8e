"""The reporter service: ReportService over the count store (or over the paper's artifacts)."""

from __future__ import annotations

from conceptfreq.adapters.grpc_server import serve, wait_for_termination
from conceptfreq.adapters.metrics import start_metrics
from conceptfreq.adapters.store import open_store
from conceptfreq.pipeline.config import ReporterServiceConfig

DEFAULT_PORT = 50055


def run(config: ReporterServiceConfig) -> int:
    # The service's modules bring scipy, statsmodels and matplotlib: only when it runs, not when the CLI is built.
    from conceptfreq.reporter.paper import PaperArtifacts
    from conceptfreq.reporter.service import registration
    from conceptfreq.reporter.store_source import StoreSource

    store = None
    if config.paper_artifacts:
        source = PaperArtifacts(config.paper_artifacts)
    else:
        store = open_store(config.store_url, read_only=True)
        source = StoreSource(store)
    start_metrics(config.metrics_port, config.host)
    server, port = serve([registration(source)], config.port, config.host, security=config.security)
    print(f"reporter service on {config.host}:{port} ({source!r})", flush=True)
    wait_for_termination(server, on_stop=store.close if store else None)
    return 0
