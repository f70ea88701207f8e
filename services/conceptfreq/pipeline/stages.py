"""The skeleton of every stage's bus handler: a ShardEvent in, the stage's rows in the store, a
StageResult out. The parser and the tagger fill in only what differs (`prepare`, `write`).

Why a handled event can never count twice: the store write is idempotent per (dataset, vocabulary,
shard, stage) (adapters/store/ledger.py), the StageResult goes out only after the write is durable,
and the consume loop commits only after both. A redelivered event therefore finds the shard done in
the ledger and only says so again. Each try writes under a fresh attempt_id: if a write failed
halfway and is retried, the half-written rows stay invisible instead of doubling the new ones."""

from __future__ import annotations

import logging
import time
from typing import Callable

from conceptfreq.adapters.bus import Message, Producer
from conceptfreq.adapters.bus.events import BadShard, UnknownVocabulary, read_shard_event, stage_done, stage_failed, wants_stage
from conceptfreq.adapters.metrics import IN_FLIGHT, SAMPLES, SHARD_SECONDS, SHARDS, SKIPPED
from conceptfreq.adapters.shards import ShardError
from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import DONE, FAILED, RUNNING
from conceptfreq.core.vocabulary import Vocabulary
from conceptfreq.errors import UserError
from conceptfreq.pipeline.vocabularies import Vocabularies
from conceptfreq.v1 import events_pb2

log = logging.getLogger(__name__)


class ShardStageHandler:
    """Subclasses set `stage` and the words their log lines use, and implement `prepare` (what to
    run on the shard) and `write`."""

    stage: str
    doing, did = "processing", "processed"   # "parsing x" ... "parsed x: N samples"

    def __init__(self, store: CountStore, producer: Producer, results_topic: str, vocabularies: Vocabularies):
        self.store = store
        self.producer = producer
        self.results_topic = results_topic
        self.vocabularies = vocabularies

    def prepare(self, event: events_pb2.ShardEvent, vocabulary: Vocabulary) -> Callable[[], object]:
        """A function that runs the stage on the event's shard and returns its result."""
        raise NotImplementedError

    def write(self, result) -> None:
        raise NotImplementedError

    def done_rule(self, dataset: str, version: str) -> str:
        """The rule a done StageResult names (the tagger's active rule); none by default."""
        return ""

    def handle(self, message: Message) -> None:
        event = read_shard_event(message.value)
        if not wants_stage(event, self.stage):
            return
        dataset, version, shard = event.dataset, event.vocabulary_version, event.shard_url
        state, attempt, samples = self.store.stage_attempts(dataset, version, [shard]).get(shard, {}).get(self.stage, ("", "", 0))
        if state == DONE and not event.force:
            # Already durable: we died between the write and the commit, or the event came twice.
            log.info("already done: %s %s", self.stage, shard)
            self._publish(events_pb2.StageResult(dataset=dataset, vocabulary_version=version, shard_url=shard, stage=self.stage,
                                                 attempt_id=attempt, samples=samples, state=events_pb2.SHARD_STATE_DONE,
                                                 rule=self.done_rule(dataset, version), announced_at_ms=event.announced_at_ms),
                          message.key)
            return
        vocabulary = self.vocabularies.get(version)
        if vocabulary is None:
            raise UnknownVocabulary(f"vocabulary version {version!r} is not in the store (ingest saves it; was it another store?)")
        run = self.prepare(event, vocabulary)
        if state != DONE:
            # Only for `status`. A done shard being recounted (force) keeps its old rows visible
            # until the new write replaces them, instead of dropping out of the counts meanwhile.
            self.store.record_state(dataset, version, shard, self.stage, RUNNING)
        log.info("%s %s", self.doing, shard)
        started = time.perf_counter()
        with IN_FLIGHT.labels(self.stage).track_inprogress():
            try:
                result = run()
            except (ShardError, UserError) as error:  # a bad shard, or an unsupported URL or format: no retry fixes it
                raise BadShard(str(error)) from error
        self.write(result)
        seconds = time.perf_counter() - started
        self._publish(stage_done(result, duration_ms=int(seconds * 1000), announced_at_ms=event.announced_at_ms), message.key)
        log.info("%s %s: %d samples, %d skipped, in %.2fs", self.did, shard, result.samples, sum(result.skipped.values()), seconds)
        SHARD_SECONDS.labels(self.stage).observe(seconds)
        SHARDS.labels(self.stage, dataset, DONE).inc()
        SAMPLES.labels(self.stage, dataset).inc(result.samples)
        for reason, n in result.skipped.items():
            SKIPPED.labels(self.stage, dataset, reason).inc(n)

    def give_up(self, message: Message, error: BaseException) -> tuple[str, str]:
        try:
            event = read_shard_event(message.value)
        except Exception:  # noqa: BLE001 - an unreadable event names no shard
            return "", ""
        reason = f"{getattr(error, 'kind', 'internal')}: {error}"
        self.store.fail_shard(event.dataset, event.vocabulary_version, event.shard_url, self.stage, reason)
        # The counter refreshes the totals: a recounted shard that now fails drops out of them.
        self._publish(stage_failed(event, self.stage, reason), message.key)
        SHARDS.labels(self.stage, event.dataset, FAILED).inc()
        return event.dataset, event.shard_url

    def flush(self) -> None:
        """Nothing to do: each event is durable (store, then StageResult) before handle returns."""

    def _publish(self, result: events_pb2.StageResult, key: bytes | None) -> None:
        self.producer.send(self.results_topic, result.SerializeToString(), key)
        self.producer.flush()
