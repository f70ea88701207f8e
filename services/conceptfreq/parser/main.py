"""The parser service: ShardEvents from the bus to text hits in the store; also gRPC ParserService."""

from __future__ import annotations

import argparse

from conceptfreq.adapters.bus import Bus, Topics, open_bus
from conceptfreq.adapters.bus.retry import Retrier
from conceptfreq.adapters.bus.worker import ConsumeLoop, serve_until_stopped, start_loop, start_service
from conceptfreq.adapters.grpc_security import server_security
from conceptfreq.adapters.grpc_server import serve
from conceptfreq.adapters.metrics import start_metrics
from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import TEXT
from conceptfreq.core.matching import MATCHERS
from conceptfreq.core.vocabulary import load
from conceptfreq.options import add_bus, add_server, add_store, add_vocab, env, store_url, topics
from conceptfreq.parser.service import ParseShardEvents, Vocabularies, registration

DEFAULT_PORT = 50052


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_bus(parser)
    add_store(parser)
    add_vocab(parser, "; used by gRPC requests without vocabulary_version (shard events name their own)")
    add_server(parser, DEFAULT_PORT)
    parser.add_argument("--group", default=env("PARSER_GROUP", "parser"), help="consumer group (env CONCEPTFREQ_PARSER_GROUP; default parser)")
    parser.add_argument("--method", choices=sorted(MATCHERS), default=env("PARSER_METHOD", "phrase"),
                        help="caption matching method (env CONCEPTFREQ_PARSER_METHOD; default phrase)")


def parser_loop(bus: Bus, store: CountStore, topics: Topics, retrier: Retrier, *, group: str = "parser", method: str = "phrase",
                vocabularies: Vocabularies | None = None) -> ConsumeLoop:
    vocabularies = vocabularies or Vocabularies(store)
    return start_loop(bus, topics, group=group, topic=topics.shards, retrier=retrier, max_records=1,
                      handler=lambda producer: ParseShardEvents(store, producer, topics.results, vocabularies, method))


def run(args) -> int:
    retrier, store = start_service(TEXT, store_url(args))
    vocabularies = Vocabularies(store, load(args.vocab))
    start_metrics(args.metrics_port)
    server, port = serve([registration(vocabularies)], args.port, args.host, security=server_security(args))
    bus, names = open_bus(args.bus), topics(args)
    return serve_until_stopped(lambda: parser_loop(bus, store, names, retrier, group=args.group, method=args.method, vocabularies=vocabularies), server,
                               f"parser: gRPC on {args.host}:{port}; consuming {names.shards} as group {args.group} on {bus.url}; "
                               f"store {store.location}",
                               store.close)
