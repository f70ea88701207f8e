"""Announcing shards to the pipeline: one ShardEvent each, recorded in the ledger first.

What is published, so that announcing again is always safe:
- shards new to the ledger: recorded `pending`, then published;
- shards announced before but not done (pending or running): published again, since an earlier
  run may have died before publishing them; a duplicate costs a ledger lookup, not a recount;
- done shards: left alone (`force` recounts them);
- failed shards: left alone; `conceptfreq retry --failed` (or `--force`) republishes them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

from conceptfreq.adapters.bus import Bus, Topics
from conceptfreq.adapters.bus.base import Producer
from conceptfreq.adapters.bus.events import shard_event, shard_key
from conceptfreq.adapters.bus.retry import Retrier
from conceptfreq.adapters.store import CountStore, ShardState
from conceptfreq.core.counting import DONE, FAILED, TEXT
from conceptfreq.core.vocabulary import Vocabulary
from conceptfreq.pipeline.progress import shard_progress
from conceptfreq.v1 import events_pb2


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
    """(to publish, done, failed) given each known shard's overall state (progress.py)."""
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


def ledger_progress(store: CountStore, dataset: str, version: str) -> dict[str, dict[str, ShardState]]:
    """{shard: {stage: ShardState}} of one vocabulary version."""
    rows: dict[str, dict[str, ShardState]] = {}
    for state in store.shard_states(dataset, version):
        rows.setdefault(state.shard, {})[state.stage] = state
    return rows


class Announce:
    """Save the vocabulary, record the shards in the ledger, and publish their events."""

    def __init__(self, store: CountStore, bus: Bus, topics: Topics):
        self.store, self.bus, self.topics = store, bus, topics

    def run(self, dataset: str, shards: Sequence[str], vocabulary: Vocabulary, *, stages: Sequence[str] = (TEXT,),
            format: str = "", caption_column: str = "", captions_from: str = "", force: bool = False) -> Announced:
        version = self.store.save_vocabulary(vocabulary)
        summary = Announced(dataset, version, shards=len(shards), forced=force)
        # A shard known without one of the requested stages (a stage added later) counts as new.
        states = {shard: shard_progress(rows).state for shard, rows in ledger_progress(self.store, dataset, version).items()
                  if all(stage in rows for stage in stages)}
        publish, done, failed = plan(shards, states, force)
        summary.already_done, summary.failed = len(done), failed
        # The bus first: a shard is marked pending only once its event can be published, so an
        # unreachable broker leaves the ledger as it was (and ingest exits 3 within give_up_ms).
        producer = connect(self.bus, self.topics.names, self.topics.partitions) if publish else None
        try:
            self._announce(summary, publish, set(states), stages, force, producer, format=format,
                           caption_column=caption_column, captions_from=captions_from)
        finally:
            if producer is not None:
                producer.close()
        return summary

    def _announce(self, summary: Announced, publish: list[str], known: set[str], stages: Sequence[str], force: bool,
                  producer: Producer | None, **reading: str) -> None:
        dataset, version = summary.dataset, summary.vocabulary_version
        self.store.announce(dataset, version, publish, stages)
        summary.new = sum(shard not in known for shard in publish)
        if not publish:
            return
        summary.started_ms = time.time_ns() // 1_000_000
        with ThreadPoolExecutor(16) as pool:  # object stores answer each HEAD in tens of ms
            described = list(pool.map(describe, publish))
        events = [shard_event(dataset, shard, version, announced_at_ms=summary.started_ms, size_bytes=size, checksum=checksum,
                              stages=stages, force=force, **reading)
                  for shard, (size, checksum) in zip(publish, described)]
        self.store.record_events(dataset, version, [(e.shard_url, e.SerializeToString()) for e in events])
        publish_events(self.bus, self.topics, events, producer=producer)
        summary.published = publish


def connect(bus: Bus, topics: Sequence[str], partitions: int) -> Producer:
    """Create the topics and connect a producer, retrying a broker that is away for at most the
    bus's `give_up_s` (then UnavailableError: the CLI exits 3 with one line)."""
    retrier = Retrier(stage="ingest", give_up_s=getattr(bus, "give_up_s", None))
    retrier.call(lambda: bus.create_topics(list(dict.fromkeys(topics)), partitions), "create topics")
    return retrier.call(bus.producer, "connect producer")


def publish_events(bus: Bus, topics: Topics, events: Sequence[events_pb2.ShardEvent], producer: Producer | None = None) -> None:
    publish(bus, topics.shards, [(e.SerializeToString(), shard_key(e.dataset, e.shard_url)) for e in events],
            create=topics.names, partitions=topics.partitions, producer=producer)


def publish(bus: Bus, topic: str, messages: Sequence[tuple[bytes, bytes]], *, create: Sequence[str] = (),
            partitions: int = 16, producer: Producer | None = None) -> None:
    """Send (value, key) messages to `topic`, creating it (and `create`) first unless `producer` is
    already connected; returns once they are durable (the producers are acks=all)."""
    own = producer is None
    if own:
        producer = connect(bus, [topic, *create], partitions)
    try:
        for value, key in messages:
            producer.send(topic, value, key)
        producer.flush()
    finally:
        if own:
            producer.close()
