"""The evaluator service: eval-shard events from the bus to per-class counts in the store; gRPC EvaluatorService."""

from __future__ import annotations

from conceptfreq.adapters.bus import Bus, Topics, open_bus
from conceptfreq.adapters.bus.retry import Retrier
from conceptfreq.adapters.bus.worker import ConsumeLoop, serve_until_stopped, start_loop, start_service
from conceptfreq.adapters.grpc_server import serve
from conceptfreq.adapters.metrics import start_metrics
from conceptfreq.core.vocabulary import load
from conceptfreq.evaluator.run import DEFAULT_TOPIC, STAGE, Evaluator, InferenceConfig
from conceptfreq.evaluator.service import EvaluateShardEvents, EvaluatorServicer, registration
from conceptfreq.pipeline.config import EvaluatorServiceConfig

DEFAULT_PORT = 50056


def evaluator_loop(bus: Bus, evaluator: Evaluator, topics: Topics, retrier: Retrier, *, topic: str = DEFAULT_TOPIC,
                   group: str = "evaluator") -> ConsumeLoop:
    retrier.call(lambda: bus.create_topics([topic], topics.partitions), "create topics")
    return start_loop(bus, topics, group=group, topic=topic, retrier=retrier, max_records=1,
                      handler=lambda producer: EvaluateShardEvents(evaluator))


def run(config: EvaluatorServiceConfig) -> int:
    retrier, store = start_service(STAGE, config.store_url)
    evaluator = Evaluator(store, InferenceConfig(config.inference, config.batch_size, config.workers, config.cache_dir))
    bus, names = open_bus(config.bus), config.topics
    start_metrics(config.metrics_port, config.host)
    servicer = EvaluatorServicer(evaluator, bus, topic=config.topic_eval_shards, partitions=names.partitions,
                                 vocabulary=load(config.vocab))
    server, port = serve([registration(servicer)], config.port, config.host, security=config.security)
    return serve_until_stopped(lambda: evaluator_loop(bus, evaluator, names, retrier, topic=config.topic_eval_shards,
                                                      group=config.group), server,
                               f"evaluator: gRPC on {config.host}:{port}; consuming {config.topic_eval_shards} as group {config.group} "
                               f"on {bus.url}; inference {config.inference}; store {store.location}",
                               evaluator.close, store.close)
