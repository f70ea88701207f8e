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
import uuid
from dataclasses import dataclass
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


@dataclass
class _Done:
    """A handled shard whose result is not yet written (batched handlers write at flush)."""

    result: object
    event: events_pb2.ShardEvent
    keys: list[bytes | None]   # the message key of each event it answers (a duplicate in the batch adds one)
    seconds: float
    tries: int = 0


class ShardStageHandler:
    """Subclasses set `stage` and the words their log lines use, and implement `prepare` (what to
    run on the shard) and `write`.

    `batched` handlers (the parser: a shard's captions take milliseconds, its store writes about as
    long) keep results until `flush`, which the consume loop calls before it commits, and write them
    together (`write_many`): one insert per table for the whole batch instead of several per shard.
    Either way the ledger is read once per poll (`before`), and `running` is recorded once per poll."""

    stage: str
    doing, did = "processing", "processed"   # "parsing x" ... "parsed x: N samples"
    batched = False

    def __init__(self, store: CountStore, producer: Producer, results_topic: str, vocabularies: Vocabularies):
        self.store = store
        self.producer = producer
        self.results_topic = results_topic
        self.vocabularies = vocabularies
        self._states: dict[tuple[str, str, str], tuple[str, str, int]] = {}  # from `before`, used once by `handle`
        self._queued: dict[tuple[str, str, str], _Done] = {}

    def prepare(self, event: events_pb2.ShardEvent, vocabulary: Vocabulary) -> Callable[[], object]:
        """A function that runs the stage on the event's shard and returns its result."""
        raise NotImplementedError

    def write(self, result) -> None:
        raise NotImplementedError

    def write_many(self, results: list) -> None:
        """Make several results visible; one by one unless the subclass writes them together."""
        for result in results:
            self.write(result)

    def done_rule(self, dataset: str, version: str) -> str:
        """The rule a done StageResult names (the tagger's active rule); none by default."""
        return ""

    def before(self, messages: list[Message]) -> None:
        """What the ledger says of the polled shards, in one read per (dataset, vocabulary), and a
        `running` row for those not done yet (for `status`; a done shard being recounted keeps its
        old rows visible until the new write replaces them, instead of dropping out meanwhile)."""
        scopes: dict[tuple[str, str], list[str]] = {}
        for message in messages:
            try:
                event = read_shard_event(message.value)
            except Exception:  # noqa: BLE001 - handle() reports an unreadable event
                continue
            if wants_stage(event, self.stage):
                scopes.setdefault((event.dataset, event.vocabulary_version), []).append(event.shard_url)
        for (dataset, version), shards in scopes.items():
            found = self.store.stage_attempts(dataset, version, shards)
            states = {shard: found.get(shard, {}).get(self.stage, ("", "", 0)) for shard in shards}
            self._states.update({(dataset, version, shard): state for shard, state in states.items()})
            running = list(dict.fromkeys(shard for shard, (state, _, _) in states.items() if state != DONE))
            if running:
                self.store.record_states(dataset, version, self.stage, RUNNING, [(shard, "", 0) for shard in running])

    def handle(self, message: Message) -> None:
        event = read_shard_event(message.value)
        if not wants_stage(event, self.stage):
            return
        dataset, version, shard = event.dataset, event.vocabulary_version, event.shard_url
        key = (dataset, version, shard)
        if key in self._queued:  # the same shard twice in one batch: one result answers both
            self._queued[key].keys.append(message.key)
            return
        if key not in self._states:  # handled without the loop's `before` (a direct call)
            self.before([message])
        state, attempt, samples = self._states.pop(key)
        if state == DONE and not event.force:
            # Already durable: we died between the write and the commit, or the event came twice.
            log.info("already done: %s %s", self.stage, shard)
            self._publish(events_pb2.StageResult(dataset=dataset, vocabulary_version=version, shard_url=shard, stage=self.stage,
                                                 attempt_id=attempt, samples=samples, state=events_pb2.SHARD_STATE_DONE,
                                                 rule=self.done_rule(dataset, version), announced_at_ms=event.announced_at_ms),
                          message.key)
            self.producer.flush()
            return
        vocabulary = self.vocabularies.get(version)
        if vocabulary is None:
            raise UnknownVocabulary(f"vocabulary version {version!r} is not in the store (ingest saves it; was it another store?)")
        run = self.prepare(event, vocabulary)
        log.info("%s %s", self.doing, shard)
        started = time.perf_counter()
        with IN_FLIGHT.labels(self.stage).track_inprogress():
            try:
                result = run()
            except (ShardError, UserError) as error:  # a bad shard, or an unsupported URL or format: no retry fixes it
                raise BadShard(str(error)) from error
        done = _Done(result, event, [message.key], time.perf_counter() - started)
        if self.batched:
            self._queued[key] = done
        else:
            self._finish([done])

    def flush(self) -> None:
        """Write what is queued (batched handlers), then say so on the bus; the loop commits after."""
        if self._queued:
            self._finish(list(self._queued.values()))
            self._queued.clear()
        self._states.clear()

    def _finish(self, done: list[_Done]) -> None:
        started = time.perf_counter()
        for item in done:
            # A fresh attempt for each try of a queued write (the loop retries flush): rows a failed
            # try left behind stay invisible instead of adding to this try's.
            if item.tries:
                item.result.attempt_id = uuid.uuid4().hex
            item.tries += 1
        self.write_many([item.result for item in done])
        write_s = (time.perf_counter() - started) / len(done)
        for item in done:
            result, event = item.result, item.event
            seconds = item.seconds + write_s
            for key in item.keys:
                self._publish(stage_done(result, duration_ms=int(seconds * 1000), announced_at_ms=event.announced_at_ms), key)
            log.info("%s %s: %d samples, %d skipped, in %.2fs", self.did, result.shard, result.samples, sum(result.skipped.values()),
                     seconds)
            SHARD_SECONDS.labels(self.stage).observe(seconds)
            SHARDS.labels(self.stage, event.dataset, DONE).inc()
            SAMPLES.labels(self.stage, event.dataset).inc(result.samples)
            for reason, n in result.skipped.items():
                SKIPPED.labels(self.stage, event.dataset, reason).inc(n)
        self.producer.flush()

    def give_up(self, message: Message, error: BaseException) -> tuple[str, str]:
        try:
            event = read_shard_event(message.value)
        except Exception:  # noqa: BLE001 - an unreadable event names no shard
            return "", ""
        reason = f"{getattr(error, 'kind', 'internal')}: {error}"
        self.store.fail_shard(event.dataset, event.vocabulary_version, event.shard_url, self.stage, reason)
        # The counter refreshes the totals: a recounted shard that now fails drops out of them.
        self._publish(stage_failed(event, self.stage, reason), message.key)
        self.producer.flush()
        SHARDS.labels(self.stage, event.dataset, FAILED).inc()
        return event.dataset, event.shard_url

    def _publish(self, result: events_pb2.StageResult, key: bytes | None) -> None:
        self.producer.send(self.results_topic, result.SerializeToString(), key)
