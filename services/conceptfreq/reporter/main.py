"""The reporter service: ReportService over the count store (or over the paper's artifacts)."""

from __future__ import annotations

from conceptfreq.adapters.grpc_security import server_security
from conceptfreq.adapters.grpc_server import serve, wait_for_termination
from conceptfreq.adapters.metrics import start_metrics
from conceptfreq.adapters.store import open_store
from conceptfreq.options import add_server, add_store, env, store_url

DEFAULT_PORT = 50055


def add_arguments(parser) -> None:
    add_store(parser)
    parser.add_argument("--paper-artifacts", default=env("PAPER_ARTIFACTS"), metavar="DIR",
                        help="serve the paper's artifacts instead of the store (env CONCEPTFREQ_PAPER_ARTIFACTS)")
    add_server(parser, DEFAULT_PORT)


def run(args) -> int:
    # The service's modules bring scipy, statsmodels and matplotlib: only when it runs, not when the CLI is built.
    from conceptfreq.reporter.paper import PaperArtifacts
    from conceptfreq.reporter.service import registration
    from conceptfreq.reporter.store_source import StoreSource

    store = None
    if args.paper_artifacts:
        source = PaperArtifacts(args.paper_artifacts)
    else:
        store = open_store(store_url(args))
        source = StoreSource(store)
    start_metrics(args.metrics_port)
    server, port = serve([registration(source)], args.port, args.host, security=server_security(args))
    print(f"reporter service on {args.host}:{port} ({source!r})", flush=True)
    wait_for_termination(server, on_stop=store.close if store else None)
    return 0
