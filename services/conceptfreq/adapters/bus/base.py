"""The event bus interface shared by every backend (Kafka, in-process).

Semantics every backend keeps, because the services' exactly-once effect rests on them:
- **at-least-once delivery**: a message is delivered again to the group until one of its
  consumers commits it; a consumer that closes or dies without committing gives its uncommitted
  messages to the next owner of the partition;
- **commit after processing**: nothing commits on its own; `commit(messages)` marks everything up
  to and including those messages as done for the group;
- **consumer groups**: the partitions of a topic are shared among the consumers of a group;
- **per-key order**: messages with the same key land on the same partition, in publish order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class Topics:
    """Topic names and partition count. Partitions cap how many consumers of one group share a
    topic's work, so `shards` needs at least as many partitions as parser pods."""

    shards: str = "shards"
    results: str = "shard-results"
    dead_letter: str = "dead-letter"
    partitions: int = 16

    @property
    def names(self) -> tuple[str, str, str]:
        return (self.shards, self.results, self.dead_letter)

    def prefixed(self, prefix: str) -> "Topics":
        """The same topics under a prefix: lets several runs (or tests) share one broker."""
        return Topics(prefix + self.shards, prefix + self.results, prefix + self.dead_letter, self.partitions)


class CommitFailed(Exception):
    """The consumer lost the partition (a rebalance) before it committed. The new owner gets the
    message again; that is harmless because every handler is idempotent."""


class Producer(Protocol):
    def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Queue a message; `flush` makes it durable."""

    def flush(self) -> None:
        """Block until every queued message is acknowledged (acks=all); UnavailableError if not."""

    def close(self) -> None: ...


class Consumer(Protocol):
    def poll(self, timeout_s: float) -> list[Message]:
        """The next messages of the partitions this consumer owns; [] after timeout_s."""

    def commit(self, messages: Sequence[Message]) -> None:
        """Mark these messages (and all before them on their partitions) as processed by the group.
        Raises CommitFailed if the partition moved to another consumer."""

    def assigned(self) -> list[tuple[str, int]]:
        """The (topic, partition)s this consumer owns now."""

    def lag(self) -> dict[str, int]:
        """{topic: messages behind the high-watermark} over the partitions this consumer owns."""

    def close(self) -> None:
        """Leave the group without committing: uncommitted messages go to the next owner."""


class Bus(Protocol):
    url: str
    # True when producers and consumers must live in one process (inproc://): then `ingest` runs the
    # services itself instead of expecting them to be deployed.
    process_local: bool

    def create_topics(self, names: Sequence[str], partitions: int) -> None:
        """Create the topics that do not exist yet; existing ones are left as they are."""

    def producer(self) -> Producer: ...

    def consumer(self, topics: Sequence[str], group: str, max_records: int = 1) -> Consumer: ...

    def group_lag(self, topics: Sequence[str]) -> dict[tuple[str, str], int]:
        """{(group, topic): committed-offset lag} for every group that committed on these topics."""

    def close(self) -> None: ...
