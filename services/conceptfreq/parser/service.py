"""The parser service's two faces over one stage (ParseShard):
- `ParseShardEvents`: the bus handler: a ShardEvent in, text hits in the store, a StageResult out;
- `ParserServicer`: gRPC ParserService, captions in, concepts out.

Why a handled event can never count twice: the store write is idempotent per (dataset,
vocabulary, shard, stage) (store.py), the StageResult goes out only after the write is durable,
and the consume loop commits only after both. A redelivered event therefore finds the shard
done in the ledger and only says so again."""

from __future__ import annotations

import logging
import threading
import time

from conceptfreq.adapters.bus import Message, Producer
from conceptfreq.adapters.bus.events import (BadEvent, BadShard, UnknownVocabulary, read_shard_event, stage_done,
                                             stage_failed, wants_stage)
from conceptfreq.adapters.grpc_server import Registration, grpc_errors
from conceptfreq.adapters.metrics import IN_FLIGHT, SAMPLES, SHARD_SECONDS, SHARDS, SKIPPED
from conceptfreq.adapters.shards import ShardError
from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import DONE, RUNNING, TEXT
from conceptfreq.core.matching import MATCHERS, make_matcher
from conceptfreq.core.vocabulary import Vocabulary
from conceptfreq.errors import NotFoundError, UserError
from conceptfreq.parser.stage import ParseShard
from conceptfreq.v1 import events_pb2
from conceptfreq.v1 import parser_pb2 as pb
from conceptfreq.v1 import parser_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


class Vocabularies:
    """Vocabularies by version, read once from the store; stages and matchers built once per
    (version, method): building a matcher costs far more than parsing one small shard."""

    def __init__(self, store: CountStore, default: Vocabulary | None = None):
        self.store = store
        self.default = default
        self._vocabularies: dict[str, Vocabulary] = {default.version: default} if default else {}
        self._built: dict[tuple, object] = {}
        self._lock = threading.Lock()  # gRPC threads and the consumer share the caches

    def get(self, version: str) -> Vocabulary | None:
        if version not in self._vocabularies:
            vocabulary = self.store.load_vocabulary(version)
            if vocabulary is None:
                return None
            with self._lock:
                self._vocabularies[version] = vocabulary
        return self._vocabularies[version]

    def _build(self, key: tuple, factory):
        with self._lock:
            if key not in self._built:
                self._built[key] = factory()
            return self._built[key]

    def stage(self, vocabulary: Vocabulary, method: str, caption_column: str) -> ParseShard:
        return self._build(("stage", vocabulary.version, method, caption_column),
                           lambda: ParseShard(vocabulary, method, caption_column))

    def matcher(self, vocabulary: Vocabulary, method: str):
        return self._build(("matcher", vocabulary.version, method), lambda: make_matcher(vocabulary, method))


class ParseShardEvents:
    stage = TEXT

    def __init__(self, store: CountStore, producer: Producer, results_topic: str, vocabularies: Vocabularies, method: str = "phrase"):
        self.store = store
        self.producer = producer
        self.results_topic = results_topic
        self.vocabularies = vocabularies
        self.method = method

    def handle(self, message: Message) -> None:
        event = read_shard_event(message.value)
        if not wants_stage(event, TEXT):
            return
        dataset, version, shard = event.dataset, event.vocabulary_version, event.shard_url
        state, attempt, samples = self.store.stage_attempts(dataset, version, [shard]).get(shard, {}).get(TEXT, ("", "", 0))
        if state == DONE and not event.force:
            # Already durable: we died between the write and the commit, or the event came twice.
            log.info("already done: %s", shard)
            self._publish(events_pb2.StageResult(dataset=dataset, vocabulary_version=version, shard_url=shard, stage=TEXT,
                                                 attempt_id=attempt, samples=samples, state=events_pb2.SHARD_STATE_DONE,
                                                 announced_at_ms=event.announced_at_ms), message.key)
            return
        vocabulary = self.vocabularies.get(version)
        if vocabulary is None:
            raise UnknownVocabulary(f"vocabulary version {version!r} is not in the store (ingest saves it; was it another store?)")
        stage = self.vocabularies.stage(vocabulary, self.method, event.caption_column or "caption")
        if state != DONE:
            # Only for `status`. A done shard being recounted (force) keeps its old rows visible
            # until the new write replaces them, instead of dropping out of the counts meanwhile.
            self.store.record_state(dataset, version, shard, TEXT, RUNNING)
        log.info("parsing %s", shard)
        started = time.perf_counter()
        with IN_FLIGHT.labels(TEXT).track_inprogress():
            try:
                result = stage.run(dataset, shard, format=event.format or None)
            except ShardError as error:
                raise BadShard(str(error)) from error
            except UserError as error:  # an unsupported URL scheme or format: no retry will fix it
                raise BadShard(str(error)) from error
        # A fresh attempt_id per try (ParseShard makes one per run): if a write failed halfway and
        # is retried, the half-written rows stay invisible instead of doubling the new ones.
        self.store.write_shard(result)
        seconds = time.perf_counter() - started
        self._publish(stage_done(result, duration_ms=int(seconds * 1000), announced_at_ms=event.announced_at_ms), message.key)
        log.info("parsed %s: %d samples, %d skipped, in %.2fs", shard, result.samples, result.skipped_total, seconds)
        SHARD_SECONDS.labels(TEXT).observe(seconds)
        SHARDS.labels(TEXT, dataset, DONE).inc()
        SAMPLES.labels(TEXT, dataset).inc(result.samples)
        for reason, n in result.skipped.items():
            SKIPPED.labels(TEXT, dataset, reason).inc(n)

    def give_up(self, message: Message, error: BaseException) -> tuple[str, str]:
        try:
            event = read_shard_event(message.value)
        except BadEvent:
            return "", ""
        kind = getattr(error, "kind", "internal")
        reason = f"{kind}: {error}"
        self.store.fail_shard(event.dataset, event.vocabulary_version, event.shard_url, TEXT, reason)
        # The counter refreshes the totals: a recounted shard that now fails drops out of them.
        self._publish(stage_failed(event, TEXT, reason), message.key)
        SHARDS.labels(TEXT, event.dataset, "failed").inc()
        return event.dataset, event.shard_url

    def flush(self) -> None:
        """Nothing to do: each event is durable (store, then StageResult) before handle returns."""

    def _publish(self, result: events_pb2.StageResult, key: bytes | None) -> None:
        self.producer.send(self.results_topic, result.SerializeToString(), key)
        self.producer.flush()


class ParserServicer(pb_grpc.ParserServiceServicer):
    MAX_CAPTIONS = 10_000  # per request (or per stream message): bounds one call's memory and latency

    def __init__(self, vocabularies: Vocabularies):
        self.vocabularies = vocabularies

    @grpc_errors
    def ParseCaptions(self, request, context):
        return self._parse(request)

    @grpc_errors
    def ParseCaptionsStream(self, request_iterator, context):
        for request in request_iterator:
            yield self._parse(request)

    def _parse(self, request: pb.ParseCaptionsRequest) -> pb.ParseCaptionsResponse:
        method = request.method or "phrase"
        if method not in MATCHERS:
            raise UserError(f"unknown method {method!r}: choose one of {', '.join(MATCHERS)}")
        if len(request.captions) > self.MAX_CAPTIONS:
            raise UserError(f"{len(request.captions)} captions in one request; send at most {self.MAX_CAPTIONS} "
                            "(the streaming call takes any number of such batches)")
        if request.vocabulary_version:
            vocabulary = self.vocabularies.get(request.vocabulary_version)
            if vocabulary is None:
                raise NotFoundError(f"vocabulary version {request.vocabulary_version!r} is not in the store")
        elif self.vocabularies.default is not None:
            vocabulary = self.vocabularies.default
        else:
            raise UserError("this parser has no default vocabulary: set vocabulary_version")
        names = {c.id: c.name for c in vocabulary}
        hits = self.vocabularies.matcher(vocabulary, method).match(list(request.captions)).per_caption()
        return pb.ParseCaptionsResponse(vocabulary_version=vocabulary.version, results=[
            pb.CaptionConcepts(concept_ids=ids, names=[names[i] for i in ids]) for ids in hits])


def registration(vocabularies: Vocabularies) -> Registration:
    return Registration(pb_grpc.add_ParserServiceServicer_to_server, ParserServicer(vocabularies), "conceptfreq.v1.ParserService")
