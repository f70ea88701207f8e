"""The parser service: ShardEvents from the bus to text hits in the store; also gRPC ParserService."""

from __future__ import annotations

from conceptfreq.adapters.bus import Bus, Topics, open_bus
from conceptfreq.adapters.bus.retry import Retrier
from conceptfreq.adapters.bus.worker import ConsumeLoop, serve_until_stopped, start_loop, start_service
from conceptfreq.adapters.grpc_server import serve
from conceptfreq.adapters.metrics import start_metrics
from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import TEXT
from conceptfreq.core.matching import DEFAULT_METHOD
from conceptfreq.core.vocabulary import load
from conceptfreq.parser.service import ParseShardEvents, registration
from conceptfreq.pipeline.config import ParserServiceConfig
from conceptfreq.pipeline.vocabularies import Vocabularies

DEFAULT_PORT = 50052
# A text shard parses in tens of milliseconds, about what its store writes take one by one; so the
# parser takes up to POLL_RECORDS events a poll and writes what it parsed in the last BATCH_S
# seconds together (pipeline/stages.py). A crash redoes at most that much.
POLL_RECORDS = 16
BATCH_S = 0.5


def parser_loop(bus: Bus, store: CountStore, topics: Topics, retrier: Retrier, *, group: str = "parser", method: str = DEFAULT_METHOD,
                vocabularies: Vocabularies | None = None) -> ConsumeLoop:
    vocabularies = vocabularies or Vocabularies(store)
    return start_loop(bus, topics, group=group, topic=topics.shards, retrier=retrier, max_records=POLL_RECORDS, batch_s=BATCH_S,
                      handler=lambda producer: ParseShardEvents(store, producer, topics.results, vocabularies, method))


def run(config: ParserServiceConfig) -> int:
    retrier, store = start_service(TEXT, config.store_url)
    vocabularies = Vocabularies(store, load(config.vocab))
    start_metrics(config.metrics_port, config.host)
    server, port = serve([registration(vocabularies)], config.port, config.host, security=config.security)
    bus, names = open_bus(config.bus), config.topics
    return serve_until_stopped(lambda: parser_loop(bus, store, names, retrier, group=config.group, method=config.method,
                                                   vocabularies=vocabularies), server,
                               f"parser: gRPC on {config.host}:{port}; consuming {names.shards} as group {config.group} on {bus.url}; "
                               f"store {store.location}",
                               store.close)
