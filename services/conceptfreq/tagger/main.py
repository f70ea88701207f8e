"""The tagger service: ShardEvents from the bus to image scores and hits in the store; also gRPC TaggerService."""

from __future__ import annotations

import argparse
from pathlib import Path

from conceptfreq.adapters.bus import Bus, Topics, open_bus
from conceptfreq.adapters.bus.retry import Abandoned, Retrier
from conceptfreq.adapters.bus.worker import ConsumeLoop, serve_until_stopped, start_loop, start_service
from conceptfreq.adapters.grpc_security import server_security
from conceptfreq.adapters.grpc_server import serve
from conceptfreq.adapters.images import DEFAULT_MAX_PIXELS, EXECUTORS
from conceptfreq.adapters.metrics import start_metrics
from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import IMAGE
from conceptfreq.core.prompts import PROMPT_MODES, make_prompts
from conceptfreq.core.tagging import DEFAULT_RULE, DEFAULT_TOP_K, SCORE_KINDS, PerConceptRule, Rule, parse_rule, parse_thresholds
from conceptfreq.core.vocabulary import Vocabulary, load
from conceptfreq.errors import UserError
from conceptfreq.options import add_bus, add_inference, add_server, add_store, add_vocab, env, pretrained, store_url, topics

DEFAULT_PORT = 50054


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_bus(parser)
    add_store(parser)
    add_vocab(parser, "; used by gRPC requests without vocabulary_version (shard events name their own)")
    add_server(parser, DEFAULT_PORT)
    parser.add_argument("--group", default=env("TAGGER_GROUP", "tagger"), help="consumer group (env CONCEPTFREQ_TAGGER_GROUP; default tagger)")
    add_tagging(parser)


def add_tagging(parser: argparse.ArgumentParser) -> None:
    """What build_tagger reads: the model, where it runs, the rule, prompts and decoding. Shared with
    embedded `ingest`, which runs this same tagger in process, so both take the same flags and env."""
    add_inference(parser)
    parser.add_argument("--rule", default=env("TAGGER_RULE", DEFAULT_RULE), metavar="RULE",
                        help="tagging rule recorded for datasets that have none yet: softmax:p=P | cosine:t=T | topk:k=K "
                             f"(env CONCEPTFREQ_TAGGER_RULE; default {DEFAULT_RULE}); `retag` changes it later")
    parser.add_argument("--thresholds", default=env("TAGGER_THRESHOLDS"), metavar="FILE",
                        help="per-concept thresholds instead of --rule (JSON or concept,threshold lines; env CONCEPTFREQ_TAGGER_THRESHOLDS)")
    parser.add_argument("--threshold-score", default=env("TAGGER_THRESHOLD_SCORE", "cosine"), choices=SCORE_KINDS,
                        help="what --thresholds apply to (env CONCEPTFREQ_TAGGER_THRESHOLD_SCORE; default cosine)")
    parser.add_argument("--top-k", type=int, default=int(env("TAGGER_TOP_K", str(DEFAULT_TOP_K))),
                        help=f"concept scores stored per image, for re-thresholding (env CONCEPTFREQ_TAGGER_TOP_K; default {DEFAULT_TOP_K})")
    parser.add_argument("--prompts", default=env("TAGGER_PROMPTS", "ensemble"), choices=sorted(PROMPT_MODES),
                        help="concept prompts (env CONCEPTFREQ_TAGGER_PROMPTS; default ensemble: open_clip's 80 templates)")
    parser.add_argument("--template", action="append", default=[], metavar="TEMPLATE",
                        help="extra prompt template with {} for the concept name (repeatable; added to the ensemble)")
    parser.add_argument("--batch-size", type=int, default=int(env("TAGGER_BATCH_SIZE", "0")) or None,
                        help="images per inference call (env CONCEPTFREQ_TAGGER_BATCH_SIZE; default: the backend's)")
    parser.add_argument("--decode-workers", type=int, default=int(env("TAGGER_DECODE_WORKERS", "4")),
                        help="image decoding workers (env CONCEPTFREQ_TAGGER_DECODE_WORKERS; default 4)")
    parser.add_argument("--decode-executor", default=env("TAGGER_DECODE_EXECUTOR", "thread"), choices=sorted(EXECUTORS),
                        help="decode in threads or processes (env CONCEPTFREQ_TAGGER_DECODE_EXECUTOR; default thread)")
    parser.add_argument("--max-pixels", type=int, default=int(env("TAGGER_MAX_PIXELS", str(DEFAULT_MAX_PIXELS))),
                        help=f"larger images are skipped as decompression bombs (env CONCEPTFREQ_TAGGER_MAX_PIXELS; default {DEFAULT_MAX_PIXELS:,})")
    parser.add_argument("--no-draft", action="store_true", default=env("TAGGER_NO_DRAFT", "") not in ("", "0"),
                        help="decode JPEGs at full size instead of libjpeg's reduced-size draft (env CONCEPTFREQ_TAGGER_NO_DRAFT)")
    parser.add_argument("--cache-dir", default=env("CACHE_DIR"),
                        help="concept-embedding cache (env CONCEPTFREQ_CACHE_DIR; default ~/.cache/conceptfreq)")


def configured_rule(args, vocabulary: Vocabulary) -> Rule:
    if args.thresholds:
        path = Path(args.thresholds)
        if not path.is_file():
            raise UserError(f"no thresholds file at {path}")
        def concept_id(name: str) -> int | None:
            concept = vocabulary.get(name)
            return concept.id if concept else None
        return PerConceptRule(parse_thresholds(path.read_text(encoding="utf-8"), concept_id, source=str(path)), score=args.threshold_score)
    return parse_rule(args.rule)


def build_tagger(args, store: CountStore, retrier: Retrier, vocabulary: Vocabulary | None = None):
    """The backend (retried while Triton starts), concept indexes, decode pool and rule. `vocabulary`
    serves gRPC requests that name none and the names of a thresholds file (default: --vocab)."""
    from conceptfreq.adapters.inference import open_inference
    from conceptfreq.parser.service import Vocabularies
    from conceptfreq.tagger.service import Tagger
    from conceptfreq.tagger.stage import ConceptIndexes, DecodeOptions, TagImages

    default = vocabulary or load(args.vocab)
    rule = configured_rule(args, default)
    backend = retrier.call(lambda: open_inference(args.inference, args.model, pretrained(args), args.precision), "connect inference")
    prompts = make_prompts(args.prompts, extra=args.template)
    decode = DecodeOptions(workers=args.decode_workers, executor=args.decode_executor, max_pixels=args.max_pixels, draft=not args.no_draft)
    images = TagImages(backend, top_k=args.top_k, batch_size=args.batch_size, decode=decode)
    return Tagger(images, ConceptIndexes(backend, prompts, args.cache_dir), Vocabularies(store, default), rule)


def tagger_loop(bus: Bus, store: CountStore, topics: Topics, retrier: Retrier, tagger, *, group: str = "tagger") -> ConsumeLoop:
    from conceptfreq.tagger.service import TagShardEvents

    return start_loop(bus, topics, group=group, topic=topics.shards, retrier=retrier, max_records=1,
                      handler=lambda producer: TagShardEvents(store, producer, topics.results, tagger))


def run(args) -> int:
    from conceptfreq.tagger.service import registration

    retrier, store = start_service(IMAGE, store_url(args))
    try:
        tagger = build_tagger(args, store, retrier)
    except Abandoned:
        store.close()
        return 0
    start_metrics(args.metrics_port)
    server, port = serve([registration(tagger)], args.port, args.host, security=server_security(args))
    bus, names = open_bus(args.bus), topics(args)
    return serve_until_stopped(lambda: tagger_loop(bus, store, names, retrier, tagger, group=args.group), server,
                               f"tagger: gRPC on {args.host}:{port}; consuming {names.shards} as group {args.group} on {bus.url}; "
                               f"inference {tagger.images.backend.url} ({tagger.images.backend.model_id}); rule {tagger.rule}; "
                               f"store {store.location}",
                               tagger.close, store.close)
