"""`conceptfreq retry`: publish a dataset's unfinished shards again.

By default every shard that is not done (pending, running or failed): the way to recover when
events were lost (a broker restarted without persistence) or a run was interrupted. `--failed`
limits it to failed shards. Each shard is published with the event ingest recorded for it (same
format, caption column and stages; a failed shard only for its failed stages), and the retried
stages go back to `pending` in the ledger.
"""

from __future__ import annotations

import json
import time

from conceptfreq.adapters.bus import open_bus
from conceptfreq.adapters.bus.events import decode, shard_event
from conceptfreq.adapters.store import open_store
from conceptfreq.core.counting import DONE, FAILED, PENDING
from conceptfreq.pipeline.progress import shard_progress, worker_stages
from conceptfreq.errors import NotFoundError
from conceptfreq.commands.options import add_bus, add_dataset, add_run, add_store, config_from, store_url, topics
from conceptfreq.pipeline.announce import Announced, connect, ledger_progress, publish_events
from conceptfreq.pipeline.config import RunConfig, TaggingConfig
from conceptfreq.pipeline.run import embedded_tagger, follow
from conceptfreq.v1 import events_pb2


def register(subparsers) -> None:
    parser = subparsers.add_parser("retry", help="publish a dataset's unfinished (or only its failed) shards again")
    add_dataset(parser)
    parser.add_argument("--failed", action="store_true", help="only failed shards (default: every shard not done)")
    parser.add_argument("--vocab-version", default=None, metavar="VERSION", help="only this vocabulary version (default: all)")
    add_bus(parser)
    add_store(parser)
    add_run(parser, "the retried shards")
    parser.set_defaults(func=run)


def retry_event(recorded: bytes | None, dataset: str, shard: str, version: str, stages: list[str], now_ms: int) -> events_pb2.ShardEvent:
    """The event ingest recorded, re-stamped and limited to `stages`; a minimal one if none was recorded
    (shards counted by `conceptfreq count` were never announced on the bus)."""
    event = decode(events_pb2.ShardEvent, recorded) if recorded else shard_event(dataset, shard, version, announced_at_ms=now_ms)
    event.announced_at_ms = now_ms
    event.force = False
    del event.stages[:]
    event.stages.extend(stages)
    return event


def run(args) -> int:
    store = open_store(store_url(args))
    bus, names = open_bus(args.bus), topics(args)
    results = []
    tagger = None
    try:
        versions = sorted({s.vocabulary_version for s in store.shard_states(args.dataset, args.vocab_version)})
        if not versions:
            raise NotFoundError(f"the ledger has no shards of dataset {args.dataset!r} in {store.location}")
        for version in versions:
            rows = ledger_progress(store, args.dataset, version)
            recorded = store.announced_events(args.dataset, version)
            now_ms = time.time_ns() // 1_000_000
            events = []
            reset: dict[str, list[tuple[str, str, int]]] = {}  # stage -> failed shards going back to pending
            for shard, stages in sorted(rows.items()):
                state = shard_progress(stages).state
                if state == DONE or (args.failed and state != FAILED):
                    continue
                workers = worker_stages(stages)
                failed = sorted(stage for stage, row in workers.items() if row.state == FAILED)
                for stage in failed:
                    reset.setdefault(stage, []).append((shard, "", 0))
                events.append(retry_event(recorded.get(shard), args.dataset, shard, version, failed or sorted(workers), now_ms))
            # Pending before publishing: written after, it could land on top of the retried outcome.
            # But the bus before either: an unreachable broker must leave the failed shards failed.
            producer = connect(bus, names.names, names.partitions) if events else None
            try:
                for stage, shards in reset.items():
                    store.record_states(args.dataset, version, stage, PENDING, shards, reason="retry requested")
                publish_events(bus, names, events, producer=producer)
            finally:
                if producer is not None:
                    producer.close()
            summary = Announced(args.dataset, version, shards=len(rows), published=[e.shard_url for e in events], started_ms=now_ms)
            if tagger is None:  # retried image stages need the in-process tagger, as in ingest
                tagger = embedded_tagger(config_from(TaggingConfig, args), store, bus, {stage for event in events for stage in event.stages},
                                         store.load_vocabulary(version))
            finished = follow(bus, store, names, summary, config_from(RunConfig, args), tagger) if events else True
            results.append({"vocabulary_version": version, "republished": len(events), "finished": finished})
    finally:
        if tagger is not None:
            tagger.close()
        store.close()
    if args.json:
        print(json.dumps({"dataset": args.dataset, "retried": results}, indent=2))
    else:
        for r in results:
            print(f"{args.dataset} (vocabulary {r['vocabulary_version']}): republished {r['republished']} shard(s)"
                  + ("" if r["finished"] else " (stopped waiting: timeout)"))
    return 0 if all(r["finished"] for r in results) else 1
