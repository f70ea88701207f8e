"""`conceptfreq ingest`: announce a dataset's shards to the pipeline, one ShardEvent each
(pipeline/announce.py says which are published, so running it again is always safe).

With the in-process bus (inproc://, the default) ingest runs the parser, the counter and, when the
stages include `image`, the tagger itself (pipeline/run.py) until every published shard is done or
failed. With Kafka it returns once the events are durable (`--wait` to follow the run instead).
"""

from __future__ import annotations

import json

from conceptfreq.adapters.bus import open_bus
from conceptfreq.adapters.shards import SHARD_FORMATS, expand_shards
from conceptfreq.adapters.store import open_store
from conceptfreq.core.counting import TEXT
from conceptfreq.core.vocabulary import load
from conceptfreq.errors import UserError
from conceptfreq.commands.options import add_bus, add_caption_source, add_dataset, add_run, add_store, add_vocab, config_from, env, store_url, topics
from conceptfreq.pipeline.announce import Announce, Announced
from conceptfreq.pipeline.config import RunConfig, TaggingConfig
from conceptfreq.pipeline.run import embedded_tagger, follow, outcome


def register(subparsers) -> None:
    parser = subparsers.add_parser("ingest", help="announce a dataset's shards to the pipeline (one ShardEvent per shard)")
    add_dataset(parser)
    parser.add_argument("--shards", required=True, metavar="PATTERN",
                        help="shard paths or URLs with braces/globs, e.g. 's3://bucket/{00000..41407}.tar'")
    add_vocab(parser)
    add_bus(parser)
    add_store(parser)
    parser.add_argument("--stages", default=env("STAGES", TEXT), metavar="LIST",
                        help="comma-separated stages to run on each shard: text, image (env CONCEPTFREQ_STAGES; default text)")
    parser.add_argument("--format", choices=SHARD_FORMATS, default=None, help="shard format (default: from each file's extension)")
    add_caption_source(parser)
    parser.add_argument("--force", action="store_true", help="publish done and failed shards too: recount them")
    add_run(parser, "the published shards")
    parser.set_defaults(func=run)


def run(args) -> int:
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if not stages:
        raise UserError("--stages names no stage: use e.g. --stages text")
    vocabulary = load(args.vocab)
    shards = expand_shards(args.shards)
    store = open_store(store_url(args))
    tagger = None
    try:
        bus, names = open_bus(args.bus), topics(args)
        # Before announcing: a wrong --model or --pretrained then leaves no shard pending.
        tagger = embedded_tagger(config_from(TaggingConfig, args), store, bus, stages, vocabulary)
        summary = Announce(store, bus, names).run(args.dataset, shards, vocabulary, stages=stages, format=args.format or "",
                                                 caption_column=args.caption_column, captions_from=args.captions_from,
                                                 force=args.force)
        finished = follow(bus, store, names, summary, config_from(RunConfig, args), tagger)
        report = outcome(store, summary) if (bus.process_local or args.wait) else None
    finally:
        if tagger is not None:
            tagger.close()
        store.close()
    print(json.dumps({**_summary(summary), **(report or {})}, indent=2) if args.json else _text(summary, report, finished))
    if not finished:
        return 1
    return 1 if report and report["failed"] else 0


def _summary(s: Announced) -> dict:
    return {"dataset": s.dataset, "vocabulary_version": s.vocabulary_version, "shards": s.shards, "new": s.new,
            "published": len(s.published), "already_done": s.already_done, "previously_failed": len(s.failed)}


def _text(s: Announced, report: dict | None, finished: bool) -> str:
    lines = [f"{s.dataset} (vocabulary {s.vocabulary_version}): {s.shards} shards; published {len(s.published)} "
             f"({s.new} new), {s.already_done} already done, {len(s.failed)} failed before"
             + (" (republish them with `conceptfreq retry --failed`)" if s.failed else "")]
    if report is not None:
        lines.append(f"  done {report['done']}/{len(s.published)}, {report['samples']:,} samples, {len(report['failed'])} failed"
                     + ("" if finished else " (stopped waiting: timeout)"))
        lines += [f"  FAILED {f['shard']}: {f['reason']}" for f in report["failed"]]
    return "\n".join(lines)
