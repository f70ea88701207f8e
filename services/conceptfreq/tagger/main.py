"""The tagger service: ShardEvents from the bus to image scores and hits in the store; also gRPC TaggerService."""

from __future__ import annotations

from pathlib import Path

from conceptfreq.adapters.bus import Bus, Topics, open_bus
from conceptfreq.adapters.bus.retry import Abandoned, Retrier
from conceptfreq.adapters.bus.worker import ConsumeLoop, serve_until_stopped, start_loop, start_service
from conceptfreq.adapters.grpc_server import serve
from conceptfreq.adapters.metrics import start_metrics
from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import IMAGE
from conceptfreq.core.prompts import make_prompts
from conceptfreq.core.tagging import PerConceptRule, Rule, parse_rule, parse_thresholds
from conceptfreq.core.vocabulary import Vocabulary, load
from conceptfreq.errors import UserError
from conceptfreq.pipeline.config import TaggerServiceConfig, TaggingConfig
from conceptfreq.pipeline.vocabularies import Vocabularies

DEFAULT_PORT = 50054


def configured_rule(config: TaggingConfig, vocabulary: Vocabulary) -> Rule:
    if config.thresholds:
        path = Path(config.thresholds)
        if not path.is_file():
            raise UserError(f"no thresholds file at {path}")
        def concept_id(name: str) -> int | None:
            concept = vocabulary.get(name)
            return concept.id if concept else None
        return PerConceptRule(parse_thresholds(path.read_text(encoding="utf-8"), concept_id, source=str(path)), score=config.threshold_score)
    return parse_rule(config.rule)


def build_tagger(config: TaggingConfig, store: CountStore, retrier: Retrier, vocabulary: Vocabulary | None = None):
    """The backend (retried while Triton starts), concept indexes, decode pool and rule. `vocabulary`
    serves gRPC requests that name none and the names of a thresholds file (default: config.vocab)."""
    from conceptfreq.adapters.inference import open_inference
    from conceptfreq.tagger.service import Tagger
    from conceptfreq.tagger.stage import ConceptIndexes, DecodeOptions, TagImages

    default = vocabulary or load(config.vocab)
    rule = configured_rule(config, default)
    backend = retrier.call(lambda: open_inference(config.inference, config.model, config.weights, config.precision), "connect inference")
    prompts = make_prompts(config.prompts, extra=list(config.template))
    decode = DecodeOptions(workers=config.decode_workers, executor=config.decode_executor, max_pixels=config.max_pixels,
                           draft=not config.no_draft, decoder=config.image_decoder)
    images = TagImages(backend, top_k=config.top_k, batch_size=config.batch_size, decode=decode)
    return Tagger(images, ConceptIndexes(backend, prompts, config.cache_dir), Vocabularies(store, default), rule)


def tagger_loop(bus: Bus, store: CountStore, topics: Topics, retrier: Retrier, tagger, *, group: str = "tagger") -> ConsumeLoop:
    from conceptfreq.tagger.service import TagShardEvents

    return start_loop(bus, topics, group=group, topic=topics.shards, retrier=retrier, max_records=1,
                      handler=lambda producer: TagShardEvents(store, producer, topics.results, tagger))


def run(config: TaggerServiceConfig) -> int:
    from conceptfreq.tagger.service import registration

    retrier, store = start_service(IMAGE, config.store_url)
    try:
        tagger = build_tagger(config, store, retrier)
    except Abandoned:
        store.close()
        return 0
    start_metrics(config.metrics_port, config.host)
    server, port = serve([registration(tagger)], config.port, config.host, security=config.security)
    bus, names = open_bus(config.bus), config.topics
    return serve_until_stopped(lambda: tagger_loop(bus, store, names, retrier, tagger, group=config.group), server,
                               f"tagger: gRPC on {config.host}:{port}; consuming {names.shards} as group {config.group} on {bus.url}; "
                               f"inference {tagger.images.backend.url} ({tagger.images.backend.model_id}); rule {tagger.rule}; "
                               f"store {store.location}",
                               tagger.close, store.close)
