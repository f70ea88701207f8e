"""The consume loop every bus-driven service runs: poll, handle, make durable, then commit.

Failure policy, in one place so every service behaves the same:
- a **transient** error (UnavailableError: store or broker unreachable) is retried with backoff,
  forever, and nothing is committed meanwhile: the message stays ours, or goes to another
  consumer if we die;
- a **permanent** error (PermanentError: bad shard, bad event, unknown vocabulary), or any other
  error that persists over a few tries, sends the message to the dead-letter topic with the reason,
  lets the handler mark the shard failed, and is then committed, so one bad shard never blocks a
  partition;
- **stalls** are seen (liveness.py): a worker whose group has lag while it makes no progress says
  so in its metrics, its log and its readiness probe;
- **stop** (SIGTERM) lets the message in hand finish (or abandons it if it is waiting on a dead
  dependency), commits what is durable, and leaves the group; what was polled but not committed
  is redelivered to the partition's next owner.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Callable, Protocol

from conceptfreq.adapters.bus.base import Bus, CommitFailed, Consumer, Message, Producer, Topics
from conceptfreq.adapters.bus.events import PermanentError, dead_letter
from conceptfreq.adapters.bus.liveness import Liveness, group_lag_of
from conceptfreq.adapters.bus.retry import Abandoned, Retrier
from conceptfreq.adapters.metrics import CONSUMER_LAG, DEAD_LETTERS
from conceptfreq.adapters.store import CountStore, open_store

log = logging.getLogger(__name__)


class Handler(Protocol):
    stage: str

    def handle(self, message: Message) -> None:
        """Process one message idempotently. Raise PermanentError if it can never succeed."""

    def give_up(self, message: Message, error: BaseException) -> tuple[str, str]:
        """Record durably that the message failed (e.g. mark its shard failed); return the
        (dataset, shard_url) it concerned, as far as it could be read, for the dead letter."""

    def flush(self) -> None:
        """Make everything handled so far durable; the loop commits right after."""

    # Optional: `before(messages)`, called with each poll's messages before any is handled (one
    # store read for all of them instead of one each).


class ConsumeLoop:
    def __init__(self, consumer: Consumer, producer: Producer, handler: Handler, *, group: str, dead_letter_topic: str,
                 retrier: Retrier, batch_s: float = 0.0, poll_s: float = 0.5, lag_every_s: float = 5.0,
                 liveness: Liveness | None = None):
        self.liveness = liveness
        self.consumer = consumer
        self.producer = producer
        self.handler = handler
        self.group = group
        self.dead_letter_topic = dead_letter_topic
        self.retrier = retrier
        self.batch_s = batch_s  # 0: commit after every message; >0: handle a batch, flush once, commit once
        self.poll_s = poll_s
        self.lag_every_s = lag_every_s
        self._lag_at = 0.0

    @property
    def stop(self) -> threading.Event:
        return self.retrier.stop

    def run(self) -> None:
        pending: list[Message] = []
        batch_started = 0.0
        try:
            while not self.stop.is_set():
                # With a batch in hand, take only what is already buffered: an empty poll then means
                # the backlog is drained, and the batch is made durable without waiting for more.
                wait_s = 0.0 if pending else self.poll_s
                messages = self.retrier.call(lambda: self.consumer.poll(wait_s), "poll")
                if self.liveness is not None:
                    self.liveness.assigned(self.consumer.assigned())
                if messages and hasattr(self.handler, "before"):
                    self.retrier.call(lambda: self.handler.before(messages), "prepare")
                for message in messages:
                    if self.stop.is_set():
                        break  # the rest stays uncommitted: redelivered to the next owner
                    self._process(message)
                    if self.liveness is not None:
                        self.liveness.progressed()
                    if not pending:
                        batch_started = time.monotonic()
                    pending.append(message)
                    if self.batch_s <= 0:
                        self._commit(pending)
                if pending and (not messages or time.monotonic() - batch_started >= self.batch_s):
                    self._commit(pending)
                self._report_lag()
            if pending:
                self._commit(pending)
        except Abandoned as error:
            log.warning("%s: stopped with work in hand, left uncommitted for redelivery: %s", self.group, error)
        finally:
            self.consumer.close()  # leaves the group now, so its partitions move without waiting for a timeout
            self.producer.close()

    def _process(self, message: Message) -> None:
        try:
            self.retrier.call(lambda: self.handler.handle(message), "handle", permanent=(PermanentError,))
            return
        except Abandoned:
            raise
        except PermanentError as error:
            failure: BaseException = error
            log.warning("%s: permanent failure at %s[%d]@%d: %s", self.group, message.topic, message.partition, message.offset, error)
        except Exception as error:  # noqa: BLE001 - persisted over retries: dead-lettered rather than blocking the partition
            failure = error
            log.exception("%s: giving up on %s[%d]@%d", self.group, message.topic, message.partition, message.offset)
        dataset, shard_url = self.retrier.call(lambda: self.handler.give_up(message, failure), "record failure")
        letter = dead_letter(message.value, source_topic=message.topic, consumer_group=self.group, error=failure,
                             failed_at_ms=time.time_ns() // 1_000_000, dataset=dataset, shard_url=shard_url)
        self.retrier.call(lambda: self._publish(letter.SerializeToString(), message.key), "dead-letter")
        DEAD_LETTERS.labels(self.group, letter.error_type).inc()

    def _publish(self, value: bytes, key: bytes | None) -> None:
        self.producer.send(self.dead_letter_topic, value, key)
        self.producer.flush()

    def _commit(self, pending: list[Message]) -> None:
        self.retrier.call(self.handler.flush, "flush")
        try:
            self.retrier.call(lambda: self.consumer.commit(pending), "commit", permanent=(CommitFailed,))
        except CommitFailed as error:
            # The partition moved during a rebalance: its new owner redoes these messages, idempotently.
            log.info("%s: commit refused (%s); the new owner will redeliver", self.group, error)
        pending.clear()

    def _report_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_at < self.lag_every_s:
            return
        self._lag_at = now
        try:
            for topic, lag in self.consumer.lag().items():
                CONSUMER_LAG.labels(self.group, topic).set(lag)
        except Exception as error:  # noqa: BLE001 - a metric must never stop the work
            log.debug("lag unavailable: %s", error)


def start_loop(bus: Bus, topics: Topics, *, group: str, topic: str, handler: Callable[[Producer], Handler], retrier: Retrier,
               max_records: int = 1, batch_s: float = 0.0) -> ConsumeLoop:
    """Create the topics, connect, and join `group` on `topic`, retrying while the broker is away
    (a pod may start before Kafka does); returns the loop, ready to run."""
    retrier.call(lambda: bus.create_topics(topics.names, topics.partitions), "create topics")
    producer = retrier.call(bus.producer, "connect producer")
    consumer = retrier.call(lambda: bus.consumer([topic], group, max_records), "join group")
    return ConsumeLoop(consumer, producer, handler(producer), group=group, dead_letter_topic=topics.dead_letter,
                       retrier=retrier, batch_s=batch_s, liveness=Liveness(group, topic, group_lag_of(bus, group, topic)))


def start_service(stage: str, store_url: str) -> tuple[Retrier, CountStore]:
    """What every bus-driven service starts with: SIGTERM/SIGINT wired to a stop event, a retrier that
    gives up on that event, and the store, retried while it is away (a pod may start before it)."""
    stop = threading.Event()
    stop_on_signals(stop)
    retrier = Retrier(stop, stage=stage)
    return retrier, retrier.call(lambda: open_store(store_url), "open store")


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM (Kubernetes) and SIGINT (Ctrl-C) ask the loop to stop after the message in hand."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def serve_until_stopped(start: Callable[[], ConsumeLoop], server, banner: str, *closers: Callable[[], None]) -> int:
    """A bus-driven service's life: join the group, run until SIGTERM, then stop the gRPC server and
    release what it holds. A stop that comes while the loop is still connecting is not an error."""
    loop = None
    try:
        loop = start()
        if loop.liveness is not None:
            loop.liveness.attach(server)
            loop.liveness.start()
        print(banner, flush=True)
        loop.run()
    except Abandoned:
        log.info("stopped while starting")
    finally:
        if loop is not None and loop.liveness is not None:
            loop.liveness.close()
        server.stop(grace=5).wait()
        for close in closers:
            close()
    return 0
