"""The evaluator service: eval-shard events from the bus to per-class counts in the store; gRPC EvaluatorService."""

from __future__ import annotations

import argparse

from conceptfreq.adapters.bus import Bus, Topics, open_bus
from conceptfreq.adapters.bus.retry import Retrier
from conceptfreq.adapters.bus.worker import ConsumeLoop, serve_until_stopped, start_loop, start_service
from conceptfreq.adapters.grpc_security import server_security
from conceptfreq.adapters.grpc_server import serve
from conceptfreq.adapters.metrics import start_metrics
from conceptfreq.core.vocabulary import load
from conceptfreq.evaluator.run import DEFAULT_TOPIC, STAGE, Evaluator, InferenceConfig
from conceptfreq.evaluator.service import EvaluateShardEvents, EvaluatorServicer, registration
from conceptfreq.options import add_bus, add_inference, add_server, add_store, add_vocab, env, store_url, topics

DEFAULT_PORT = 50056


def add_eval_topic(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topic-eval-shards", default=env("TOPIC_EVAL_SHARDS", DEFAULT_TOPIC), metavar="NAME",
                        help=f"topic of EvalShardEvents (env CONCEPTFREQ_TOPIC_EVAL_SHARDS; default {DEFAULT_TOPIC})")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_bus(parser)
    add_eval_topic(parser)
    add_store(parser)
    add_vocab(parser, "; used by StartEvaluation requests without vocabulary_version")
    add_inference(parser, model_flags=False)
    add_server(parser, DEFAULT_PORT)
    parser.add_argument("--group", default=env("EVALUATOR_GROUP", "evaluator"),
                        help="consumer group (env CONCEPTFREQ_EVALUATOR_GROUP; default evaluator)")
    parser.add_argument("--batch-size", type=int, default=int(env("EVALUATOR_BATCH_SIZE", "0")) or None,
                        help="images per forward pass (env CONCEPTFREQ_EVALUATOR_BATCH_SIZE; default: the backend's)")
    parser.add_argument("--workers", type=int, default=int(env("EVALUATOR_WORKERS", "4")),
                        help="image decoding threads (env CONCEPTFREQ_EVALUATOR_WORKERS; default 4)")
    parser.add_argument("--cache-dir", default=env("CACHE_DIR"),
                        help="text-embedding cache (env CONCEPTFREQ_CACHE_DIR; default ~/.cache/conceptfreq)")


def evaluator_loop(bus: Bus, evaluator: Evaluator, topics: Topics, retrier: Retrier, *, topic: str = DEFAULT_TOPIC,
                   group: str = "evaluator") -> ConsumeLoop:
    retrier.call(lambda: bus.create_topics([topic], topics.partitions), "create topics")
    return start_loop(bus, topics, group=group, topic=topic, retrier=retrier, max_records=1,
                      handler=lambda producer: EvaluateShardEvents(evaluator))


def run(args) -> int:
    retrier, store = start_service(STAGE, store_url(args))
    evaluator = Evaluator(store, InferenceConfig(args.inference, args.batch_size, args.workers, args.cache_dir))
    bus, names = open_bus(args.bus), topics(args)
    start_metrics(args.metrics_port)
    servicer = EvaluatorServicer(evaluator, bus, topic=args.topic_eval_shards, partitions=names.partitions,
                                 vocabulary=load(args.vocab))
    server, port = serve([registration(servicer)], args.port, args.host, security=server_security(args))
    return serve_until_stopped(lambda: evaluator_loop(bus, evaluator, names, retrier, topic=args.topic_eval_shards, group=args.group), server,
                               f"evaluator: gRPC on {args.host}:{port}; consuming {args.topic_eval_shards} as group {args.group} on {bus.url}; "
                               f"inference {args.inference}; store {store.location}",
                               evaluator.close, store.close)
