"""The tagger service's two faces over one stage (TagShard):
- `TagShardEvents`: the bus handler: a ShardEvent in, image scores, hits and counts in the store,
  a StageResult (stage `image`, with the active rule) out;
- `TaggerServicer`: gRPC TaggerService.TagImages, image bytes in, top concepts and hits out.

Exactly-once as in the parser: the store write is idempotent per (dataset, vocabulary, shard,
stage), the StageResult goes out only after it is durable, and the consume loop commits only after
both. An inference backend that is down (Triton restarting) raises UnavailableError: the loop
retries the whole shard with backoff and commits nothing meanwhile, so nothing is lost."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from conceptfreq.adapters.bus import Message, Producer
from conceptfreq.adapters.bus.events import (BadShard, UnknownVocabulary, read_shard_event, stage_done, stage_failed,
                                             wants_stage)
from conceptfreq.adapters.grpc_server import Registration, grpc_errors
from conceptfreq.adapters.metrics import IN_FLIGHT, SAMPLES, SHARD_SECONDS, SHARDS, SKIPPED
from conceptfreq.adapters.shards import ShardError
from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import DONE, IMAGE, RUNNING
from conceptfreq.core.tagging import Rule, parse_rule
from conceptfreq.errors import NotFoundError, UserError
from conceptfreq.parser.service import Vocabularies
from conceptfreq.tagger.records import ensure_rule, write_image_shard
from conceptfreq.tagger.stage import ConceptIndexes, TagImages, TagShard
from conceptfreq.v1 import events_pb2
from conceptfreq.v1 import tagger_pb2 as pb
from conceptfreq.v1 import tagger_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


@dataclass
class Tagger:
    """Everything the service shares between the bus handler and gRPC: the backend's image path,
    the concept embeddings per vocabulary, the configured rule, and the vocabularies."""

    images: TagImages
    indexes: ConceptIndexes
    vocabularies: Vocabularies
    rule: Rule
    caption_column: str = "caption"

    def stage(self, caption_column: str | None = None) -> TagShard:
        return TagShard(self.images, caption_column or self.caption_column)

    def close(self) -> None:
        self.images.close()


class TagShardEvents:
    stage = IMAGE

    def __init__(self, store: CountStore, producer: Producer, results_topic: str, tagger: Tagger):
        self.store = store
        self.producer = producer
        self.results_topic = results_topic
        self.tagger = tagger

    def handle(self, message: Message) -> None:
        event = read_shard_event(message.value)
        if not wants_stage(event, IMAGE):
            return
        dataset, version, shard = event.dataset, event.vocabulary_version, event.shard_url
        state, attempt, samples = self.store.stage_attempts(dataset, version, [shard]).get(shard, {}).get(IMAGE, ("", "", 0))
        if state == DONE and not event.force:
            # Already durable: we died between the write and the commit, or the event came twice.
            self._publish(events_pb2.StageResult(dataset=dataset, vocabulary_version=version, shard_url=shard, stage=IMAGE,
                                                 attempt_id=attempt, samples=samples, state=events_pb2.SHARD_STATE_DONE,
                                                 rule=self.store.active_rule(dataset, version) or "",
                                                 announced_at_ms=event.announced_at_ms), message.key)
            return
        vocabulary = self.tagger.vocabularies.get(version)
        if vocabulary is None:
            raise UnknownVocabulary(f"vocabulary version {version!r} is not in the store (ingest saves it; was it another store?)")
        # Every rule recorded for the dataset, the active one first: a shard tagged after a retag
        # carries the old rules too, so they stay complete.
        rules = ensure_rule(self.store, dataset, version, self.tagger.rule)
        index = self.tagger.indexes.get(vocabulary)
        if state != DONE:
            self.store.record_state(dataset, version, shard, IMAGE, RUNNING)
        started = time.perf_counter()
        with IN_FLIGHT.labels(IMAGE).track_inprogress():
            try:
                result = self.tagger.stage(event.caption_column).run(dataset, shard, index, rules, format=event.format or None)
            except ShardError as error:
                raise BadShard(str(error)) from error
            except UserError as error:  # an unsupported URL scheme or format: no retry will fix it
                raise BadShard(str(error)) from error
        write_image_shard(self.store, result)
        seconds = time.perf_counter() - started
        self._publish(stage_done(result, duration_ms=int(seconds * 1000), announced_at_ms=event.announced_at_ms), message.key)
        SHARD_SECONDS.labels(IMAGE).observe(seconds)
        SHARDS.labels(IMAGE, dataset, DONE).inc()
        SAMPLES.labels(IMAGE, dataset).inc(result.samples)
        for reason, n in result.skipped.items():
            SKIPPED.labels(IMAGE, dataset, reason).inc(n)

    def give_up(self, message: Message, error: BaseException) -> tuple[str, str]:
        try:
            event = read_shard_event(message.value)
        except Exception:  # noqa: BLE001 - an unreadable event names no shard
            return "", ""
        reason = f"{getattr(error, 'kind', 'internal')}: {error}"
        self.store.fail_shard(event.dataset, event.vocabulary_version, event.shard_url, IMAGE, reason)
        self._publish(stage_failed(event, IMAGE, reason), message.key)
        SHARDS.labels(IMAGE, event.dataset, "failed").inc()
        return event.dataset, event.shard_url

    def flush(self) -> None:
        """Nothing to do: each event is durable (store, then StageResult) before handle returns."""

    def _publish(self, result: events_pb2.StageResult, key: bytes | None) -> None:
        self.producer.send(self.results_topic, result.SerializeToString(), key)
        self.producer.flush()


class TaggerServicer(pb_grpc.TaggerServiceServicer):
    MAX_IMAGES = 1024   # per request: bounds one call's memory (1024 x 3 x 224 x 224 floats = 600 MB)
    MAX_TOP_K = 1000

    def __init__(self, tagger: Tagger):
        self.tagger = tagger

    @grpc_errors
    def TagImages(self, request: pb.TagImagesRequest, context) -> pb.TagImagesResponse:
        if len(request.images) > self.MAX_IMAGES:
            raise UserError(f"{len(request.images)} images in one request; send at most {self.MAX_IMAGES}")
        if request.top_k > self.MAX_TOP_K:
            raise UserError(f"top_k {request.top_k} is more than {self.MAX_TOP_K}")
        vocabulary = self._vocabulary(request.vocabulary_version)
        rule = parse_rule(request.rule) if request.rule else self.tagger.rule
        index = self.tagger.indexes.get(vocabulary)
        images = self.tagger.images
        decoded = list(images.pool.map(request.images))
        usable = [i for i, d in enumerate(decoded) if d.pixels is not None]
        k = int(request.top_k or images.top_k)
        results = [pb.ImageTags(error=d.skipped or "") for d in decoded]
        if usable:
            top = images.score(np.stack([decoded[i].pixels for i in usable]), index, k=max(k, images.top_k))
            mask = rule.mask(top)
            probabilities = top.probabilities()
            names = index.name_of()
            for row, i in enumerate(usable):
                shown = range(min(k, top.k))
                results[i].top.extend(pb.ConceptScore(concept_id=int(top.concept_ids[row, j]), name=names[int(top.concept_ids[row, j])],
                                                      score=float(top.cosines[row, j]), probability=float(probabilities[row, j]))
                                      for j in shown)
                results[i].hits.extend(sorted(int(c) for c in top.concept_ids[row][mask[row]]))
                results[i].note = decoded[i].note or ""
        return pb.TagImagesResponse(vocabulary_version=vocabulary.version, model=images.backend.model_id, rule=str(rule),
                                    results=results)

    def _vocabulary(self, version: str):
        vocabularies = self.tagger.vocabularies
        if version:
            vocabulary = vocabularies.get(version)
            if vocabulary is None:
                raise NotFoundError(f"vocabulary version {version!r} is not in the store")
            return vocabulary
        if vocabularies.default is None:
            raise UserError("this tagger has no default vocabulary: set vocabulary_version")
        return vocabularies.default


def registration(tagger: Tagger) -> Registration:
    return Registration(pb_grpc.add_TaggerServiceServicer_to_server, TaggerServicer(tagger), "conceptfreq.v1.TaggerService")
