"""`conceptfreq ingest`: announce a dataset's shards to the pipeline, one ShardEvent each.

What is published, so that running ingest again is always safe:
- shards new to the ledger: recorded `pending`, then published;
- shards announced before but not done (pending or running): published again, since an earlier
  ingest may have died before publishing them; a duplicate costs a ledger lookup, not a recount;
- done shards: left alone (`--force` recounts them);
- failed shards: left alone; `conceptfreq retry --failed` (or `--force`) republishes them.

With the in-process bus (inproc://, the default) nothing outside this process could consume the
events, so ingest runs the parser, the counter and, when the stages include `image`, the tagger
itself (the services' own loops and handlers, in threads) until every published shard is done or
failed. With Kafka it returns once the events are durable (`--wait` to follow the run instead).
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Collection, Sequence

from conceptfreq.adapters.bus import Bus, Topics, open_bus
from conceptfreq.adapters.bus.events import shard_event, shard_key
from conceptfreq.adapters.bus.retry import Retrier
from conceptfreq.adapters.shards import SHARD_FORMATS, expand_shards
from conceptfreq.adapters.store import CountStore, open_store
from conceptfreq.core.counting import DONE, FAILED, IMAGE, TEXT
from conceptfreq.core.vocabulary import Vocabulary, load
from conceptfreq.counter.progress import finished_since, shard_progress
from conceptfreq.errors import UserError
from conceptfreq.options import add_bus, add_dataset, add_store, add_vocab, env, store_url, topics
from conceptfreq.tagger.main import add_tagging
from conceptfreq.v1 import events_pb2


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
    parser.add_argument("--caption-column", default="", help="caption column of parquet shards (default caption)")
    parser.add_argument("--force", action="store_true", help="publish done and failed shards too: recount them")
    parser.add_argument("--wait", action="store_true", help="with Kafka: wait until every published shard is done or failed")
    parser.add_argument("--timeout", type=float, default=0, help="give up waiting after this many seconds (0: never)")
    parser.add_argument("--parsers", type=int, default=1, help="in-process bus only: parser threads to run (default 1)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_tagging(parser.add_argument_group("image stage, in-process bus only (on Kafka the tagger service has these flags)"))
    parser.set_defaults(func=run)


@dataclass
class Announced:
    dataset: str
    vocabulary_version: str
    shards: int = 0
    new: int = 0
    published: list[str] = field(default_factory=list)
    already_done: int = 0
    failed: list[str] = field(default_factory=list)  # failed before, not republished
    started_ms: int = 0
    forced: bool = False


def plan(shards: Sequence[str], progress: dict[str, str], force: bool = False) -> tuple[list[str], list[str], list[str]]:
    """(to publish, done, failed) given each known shard's overall state (counter.progress)."""
    publish, done, failed = [], [], []
    for shard in shards:
        state = progress.get(shard)
        if state == DONE and not force:
            done.append(shard)
        elif state == FAILED and not force:
            failed.append(shard)
        else:
            publish.append(shard)
    return publish, done, failed


def describe(url: str) -> tuple[int, str]:
    """(size in bytes, checksum) as the filesystem reports them, without reading the shard: object
    stores give an ETag or MD5, local files neither (reading every shard twice is not worth it)."""
    import fsspec.core

    try:
        fs, path = fsspec.core.url_to_fs(url)
        info = fs.info(path)
    except Exception:  # noqa: BLE001 - a missing shard is the parser's to report, with its reason
        return 0, ""
    for key, prefix in (("md5Hash", "md5:"), ("md5", "md5:"), ("ETag", "etag:"), ("etag", "etag:")):
        if info.get(key):
            return int(info.get("size") or 0), prefix + str(info[key]).strip('"')
    return int(info.get("size") or 0), ""


def ledger_progress(store: CountStore, dataset: str, version: str) -> dict[str, dict]:
    """{shard: {stage: ShardState}} of one vocabulary version."""
    rows: dict[str, dict] = {}
    for state in store.shard_states(dataset, version):
        rows.setdefault(state.shard, {})[state.stage] = state
    return rows


class Announce:
    """Save the vocabulary, record the shards in the ledger, and publish their events."""

    def __init__(self, store: CountStore, bus: Bus, topics: Topics):
        self.store, self.bus, self.topics = store, bus, topics

    def run(self, dataset: str, shards: Sequence[str], vocabulary: Vocabulary, *, stages: Sequence[str] = (TEXT,),
            format: str = "", caption_column: str = "", force: bool = False) -> Announced:
        version = self.store.save_vocabulary(vocabulary)
        summary = Announced(dataset, version, shards=len(shards), forced=force)
        # A shard known without one of the requested stages (a stage added later) counts as new.
        states = {shard: shard_progress(rows).state for shard, rows in ledger_progress(self.store, dataset, version).items()
                  if all(stage in rows for stage in stages)}
        publish, done, failed = plan(shards, states, force)
        summary.already_done, summary.failed = len(done), failed
        self.store.announce(dataset, version, publish, stages)
        summary.new = sum(shard not in states for shard in publish)
        summary.started_ms = time.time_ns() // 1_000_000
        with ThreadPoolExecutor(16) as pool:  # object stores answer each HEAD in tens of ms
            described = list(pool.map(describe, publish))
        events = [shard_event(dataset, shard, version, announced_at_ms=summary.started_ms, size_bytes=size, checksum=checksum,
                              format=format, caption_column=caption_column, stages=stages, force=force)
                  for shard, (size, checksum) in zip(publish, described)]
        self.store.record_events(dataset, version, [(e.shard_url, e.SerializeToString()) for e in events])
        publish_events(self.bus, self.topics, events)
        summary.published = publish
        return summary


def publish_events(bus: Bus, topics: Topics, events: Sequence[events_pb2.ShardEvent]) -> None:
    retrier = Retrier(stage="ingest")
    retrier.call(lambda: bus.create_topics(topics.names, topics.partitions), "create topics")
    producer = retrier.call(bus.producer, "connect producer")
    try:
        for event in events:
            producer.send(topics.shards, event.SerializeToString(), shard_key(event.dataset, event.shard_url))
        producer.flush()  # acks=all: the events are durable when ingest says so
    finally:
        producer.close()


def wait_finished(store: CountStore, dataset: str, version: str, shards: Sequence[str], since_ms: int, *, recount: bool = False,
                  timeout_s: float = 0, alive=lambda: True, poll_s: float = 0.2) -> bool:
    """Block until every shard is done or failed (see counter.progress); False on timeout."""
    deadline = time.monotonic() + timeout_s if timeout_s else None
    waiting = set(shards)
    while waiting:
        rows = ledger_progress(store, dataset, version)
        waiting = {s for s in waiting if not finished_since(rows.get(s, {}), since_ms, recount)}
        if not waiting:
            break
        if not alive():
            raise RuntimeError("an in-process service stopped before the run finished; see the log above")
        if deadline and time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    return True


def embedded_tagger(args, store: CountStore, bus: Bus, stages: Collection[str], vocabulary: Vocabulary | None):
    """The tagger this process must run itself, or None: only the in-process bus needs one (on Kafka
    the tagger service consumes the events), and only when a shard asks for the image stage."""
    if not (bus.process_local and IMAGE in stages):
        return None
    from conceptfreq.tagger.main import build_tagger

    return build_tagger(args, store, Retrier(stage=IMAGE), vocabulary)


def run_embedded(bus: Bus, store: CountStore, topics: Topics, summary: Announced, *, parsers: int = 1, timeout_s: float = 0,
                 tagger=None) -> bool:
    """Run parser(s), the tagger (if given) and the counter in threads of this process until the
    published shards are finished."""
    from conceptfreq.counter.main import counter_loop
    from conceptfreq.parser.main import parser_loop
    from conceptfreq.parser.service import Vocabularies
    from conceptfreq.tagger.main import tagger_loop

    stop = threading.Event()
    vocabularies = Vocabularies(store)
    loops = [parser_loop(bus, store, topics, Retrier(stop, stage=TEXT), vocabularies=vocabularies) for _ in range(max(1, parsers))]
    if tagger is not None:
        loops.append(tagger_loop(bus, store, topics, Retrier(stop, stage=IMAGE), tagger))
    loops.append(counter_loop(bus, store, topics, Retrier(stop, stage="counted"), batch_s=0.1))
    threads = [threading.Thread(target=loop.run, name=f"embedded-{i}", daemon=True) for i, loop in enumerate(loops)]
    for thread in threads:
        thread.start()
    try:
        return wait_finished(store, summary.dataset, summary.vocabulary_version, summary.published, summary.started_ms,
                             recount=summary.forced, timeout_s=timeout_s, alive=lambda: all(t.is_alive() for t in threads))
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def follow(bus: Bus, store: CountStore, names: Topics, summary: Announced, args, tagger=None) -> bool:
    """After publishing: run the services here (in-process bus), or wait for the cluster's if asked."""
    if bus.process_local:
        return run_embedded(bus, store, names, summary, parsers=args.parsers, timeout_s=args.timeout, tagger=tagger)
    if args.wait:
        return wait_finished(store, summary.dataset, summary.vocabulary_version, summary.published, summary.started_ms,
                             recount=summary.forced, timeout_s=args.timeout, poll_s=1.0)
    return True


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
        tagger = embedded_tagger(args, store, bus, stages, vocabulary)
        summary = Announce(store, bus, names).run(args.dataset, shards, vocabulary, stages=stages, format=args.format or "",
                                                 caption_column=args.caption_column, force=args.force)
        finished = follow(bus, store, names, summary, args, tagger)
        report = report_json(store, summary) if (bus.process_local or args.wait) else None
    finally:
        if tagger is not None:
            tagger.close()
        store.close()
    print(json.dumps({**_summary(summary), **(report or {})}, indent=2) if args.json else _text(summary, report, finished))
    if not finished:
        return 1
    return 1 if report and report["failed"] else 0


def report_json(store: CountStore, summary: Announced) -> dict:
    rows = ledger_progress(store, summary.dataset, summary.vocabulary_version)
    progress = {shard: shard_progress(rows.get(shard, {})) for shard in summary.published}
    return {"done": sum(p.state == DONE for p in progress.values()), "samples": sum(p.samples for p in progress.values()),
            "failed": [{"shard": s, "reason": p.reason} for s, p in sorted(progress.items()) if p.state == FAILED]}


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
