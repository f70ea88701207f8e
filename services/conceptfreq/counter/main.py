"""The counter service: StageResults to counted shards and per-concept totals; gRPC health only."""

from __future__ import annotations

import argparse

from conceptfreq.adapters.bus import Bus, Topics, open_bus
from conceptfreq.adapters.bus.retry import Retrier
from conceptfreq.adapters.bus.worker import ConsumeLoop, serve_until_stopped, start_loop, start_service
from conceptfreq.adapters.grpc_security import server_security
from conceptfreq.adapters.grpc_server import serve
from conceptfreq.adapters.metrics import start_metrics
from conceptfreq.adapters.store import CountStore
from conceptfreq.counter.service import COUNTED, CountStageResults
from conceptfreq.options import add_bus, add_server, add_store, env, store_url, topics

DEFAULT_PORT = 50053


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_bus(parser)
    add_store(parser)
    add_server(parser, DEFAULT_PORT)
    parser.add_argument("--group", default=env("COUNTER_GROUP", "counter"), help="consumer group (env CONCEPTFREQ_COUNTER_GROUP; default counter)")
    parser.add_argument("--batch-seconds", type=float, default=float(env("COUNTER_BATCH_SECONDS", "1.0")),
                        help="longest wait before a batch of results is folded into the totals and committed "
                             "(env CONCEPTFREQ_COUNTER_BATCH_SECONDS; default 1.0)")


def counter_loop(bus: Bus, store: CountStore, topics: Topics, retrier: Retrier, *, group: str = "counter",
                 batch_s: float = 1.0) -> ConsumeLoop:
    return start_loop(bus, topics, group=group, topic=topics.results, retrier=retrier, max_records=500, batch_s=batch_s,
                      handler=lambda producer: CountStageResults(store))


def run(args) -> int:
    retrier, store = start_service(COUNTED, store_url(args))
    start_metrics(args.metrics_port)
    server, port = serve([], args.port, args.host, security=server_security(args))  # health and reflection, for the orchestrator's probes
    bus, names = open_bus(args.bus), topics(args)
    return serve_until_stopped(lambda: counter_loop(bus, store, names, retrier, group=args.group, batch_s=args.batch_seconds), server,
                               f"counter: consuming {names.results} as group {args.group} on {bus.url}; store {store.location}; "
                               f"health on {args.host}:{port}",
                               store.close)
