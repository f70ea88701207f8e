"""`inproc://[name]`: the one-machine bus. Topics live in this process's memory, shared by every
bus opened with the same name, with Kafka's semantics (see base.py): partitions, consumer groups
that share partitions, committed offsets, and redelivery of what a closed consumer left
uncommitted. Messages last as long as the process, like a broker with memory storage."""

from __future__ import annotations

import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Sequence

from conceptfreq.adapters.bus.base import CommitFailed, Message

DEFAULT_PARTITIONS = 4


@dataclass
class _Group:
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    members: list["InprocConsumer"] = field(default_factory=list)
    generation: int = 0


class _Broker:
    def __init__(self):
        self.changed = threading.Condition()  # guards all state below; notified on publish and rebalance
        self.topics: dict[str, list[list[Message]]] = {}
        self.groups: dict[str, _Group] = {}
        self.round_robin = 0

    def ensure_topic(self, name: str, partitions: int) -> list[list[Message]]:
        return self.topics.setdefault(name, [[] for _ in range(max(1, partitions))])

    def rebalance(self, group: _Group) -> None:
        """Eager rebalance, as Kafka's classic protocol: every member restarts from committed offsets."""
        group.generation += 1
        members = group.members
        for member in members:
            member.assignment = {}
        for index, member in enumerate(members):
            for topic in member.topics:
                for partition in range(len(self.ensure_topic(topic, DEFAULT_PARTITIONS))):
                    if partition % len(members) == index:
                        member.assignment[(topic, partition)] = group.committed.get((topic, partition), 0)
            member.generation = group.generation
        self.changed.notify_all()


_BROKERS: dict[str, _Broker] = {}
_BROKERS_LOCK = threading.Lock()


def _broker(name: str) -> _Broker:
    with _BROKERS_LOCK:
        return _BROKERS.setdefault(name, _Broker())


class InprocProducer:
    def __init__(self, broker: _Broker):
        self._broker = broker

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        broker = self._broker
        with broker.changed:
            partitions = broker.ensure_topic(topic, DEFAULT_PARTITIONS)
            if key is None:
                broker.round_robin += 1
                index = broker.round_robin % len(partitions)
            else:
                index = zlib.crc32(key) % len(partitions)  # stable across runs, unlike hash()
            log = partitions[index]
            log.append(Message(topic, index, len(log), key, bytes(value)))
            broker.changed.notify_all()

    def flush(self) -> None:
        """Nothing to wait for: `send` appended under the broker's lock."""

    def close(self) -> None:
        pass


class InprocConsumer:
    def __init__(self, broker: _Broker, topics: Sequence[str], group: str, max_records: int):
        self._broker = broker
        self.topics = tuple(topics)
        self._max_records = max(1, max_records)
        self.assignment: dict[tuple[str, int], int] = {}  # (topic, partition) -> next offset to deliver
        self.generation = 0
        self._closed = False
        with broker.changed:
            self._group = broker.groups.setdefault(group, _Group())
            self._group.members.append(self)
            broker.rebalance(self._group)

    def _available(self) -> list[tuple[tuple[str, int], int]]:
        topics = self._broker.topics
        return [(tp, position) for tp, position in self.assignment.items() if position < len(topics[tp[0]][tp[1]])]

    def poll(self, timeout_s: float) -> list[Message]:
        broker = self._broker
        deadline = time.monotonic() + timeout_s
        with broker.changed:
            while not self._closed and not self._available():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                broker.changed.wait(remaining)
            out: list[Message] = []
            for tp, position in sorted(self._available()):
                log = broker.topics[tp[0]][tp[1]]
                batch = log[position:position + self._max_records - len(out)]
                out.extend(batch)
                self.assignment[tp] = position + len(batch)
                if len(out) >= self._max_records:
                    break
            return out

    def commit(self, messages: Sequence[Message]) -> None:
        with self._broker.changed:
            if self._closed or self.generation != self._group.generation:
                raise CommitFailed("the group rebalanced since these messages were polled")
            for message in messages:
                tp = (message.topic, message.partition)
                if tp not in self.assignment:
                    raise CommitFailed(f"partition {tp} is no longer assigned to this consumer")
                self._group.committed[tp] = max(self._group.committed.get(tp, 0), message.offset + 1)

    def assigned(self) -> list[tuple[str, int]]:
        with self._broker.changed:
            return sorted(self.assignment)

    def lag(self) -> dict[str, int]:
        with self._broker.changed:
            out: dict[str, int] = {}
            for (topic, partition) in self.assignment:
                end = len(self._broker.topics[topic][partition])
                out[topic] = out.get(topic, 0) + end - self._group.committed.get((topic, partition), 0)
            return out

    def close(self) -> None:
        with self._broker.changed:
            if self._closed:
                return
            self._closed = True
            self._group.members.remove(self)
            self._broker.rebalance(self._group)


class InprocBus:
    process_local = True

    def __init__(self, name: str = "default"):
        self.url = f"inproc://{name}"
        self._broker = _broker(name)

    def create_topics(self, names: Sequence[str], partitions: int) -> None:
        with self._broker.changed:
            for name in names:
                self._broker.ensure_topic(name, partitions)

    def producer(self) -> InprocProducer:
        return InprocProducer(self._broker)

    def consumer(self, topics: Sequence[str], group: str, max_records: int = 1) -> InprocConsumer:
        return InprocConsumer(self._broker, topics, group, max_records)

    def group_lag(self, topics: Sequence[str]) -> dict[tuple[str, str], int]:
        broker = self._broker
        with broker.changed:
            out: dict[tuple[str, str], int] = {}
            for name, group in broker.groups.items():
                for topic in topics:
                    partitions = broker.topics.get(topic, [])
                    if any((topic, p) in group.committed for p in range(len(partitions))) or any(topic in m.topics for m in group.members):
                        out[(name, topic)] = sum(len(log) - group.committed.get((topic, p), 0) for p, log in enumerate(partitions))
            return out

    def close(self) -> None:
        pass
