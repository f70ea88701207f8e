"""The query service: FrequencyService over the count store."""

from __future__ import annotations

from conceptfreq.adapters.grpc_security import server_security
from conceptfreq.adapters.grpc_server import serve, wait_for_termination
from conceptfreq.adapters.metrics import start_metrics
from conceptfreq.adapters.store import open_store
from conceptfreq.options import add_server, add_store, store_url
from conceptfreq.query.service import registration

DEFAULT_PORT = 50051


def add_arguments(parser) -> None:
    add_store(parser)
    add_server(parser, DEFAULT_PORT)


def run(args) -> int:
    store = open_store(store_url(args))
    start_metrics(args.metrics_port)
    server, port = serve([registration(store)], args.port, args.host, security=server_security(args))
    print(f"query service on {args.host}:{port} (store {store.location})", flush=True)
    wait_for_termination(server, on_stop=store.close)
    return 0
