"""The event bus, with identical assertions on the tansu Kafka-protocol broker and on the
in-process bus: delivery, per-key order, redelivery of what was not committed, groups sharing
partitions, and lag from committed offsets."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict

import pytest

from conceptfreq.adapters.bus import Topics, open_bus
from conceptfreq.errors import UnavailableError, UserError

# Short sessions so that group joins and evictions take about a second on tansu (docs/platform.md).
KAFKA_TEST_OPTIONS = "?session_timeout_ms=2000&heartbeat_interval_ms=300"


@pytest.fixture(params=["inproc", "kafka"])
def bus(request):
    if request.param == "kafka":
        url = request.getfixturevalue("kafka").url + KAFKA_TEST_OPTIONS
    else:
        url = f"inproc://test-{uuid.uuid4().hex}"
    bus = open_bus(url)
    yield bus
    bus.close()


@pytest.fixture
def group() -> str:
    """A group per test: on one broker, a group shared across tests shares its members' fate."""
    return f"g-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def topics(bus) -> Topics:
    names = Topics(partitions=4).prefixed(f"t{uuid.uuid4().hex[:8]}-")
    bus.create_topics(names.names, names.partitions)
    bus.create_topics(names.names, names.partitions)  # creating again is harmless
    return names


def publish(bus, topic, items):
    producer = bus.producer()
    for key, value in items:
        producer.send(topic, value, key)
    producer.flush()
    producer.close()


def drain(consumer, expected: int, timeout: float = 15.0, commit: bool = True):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        messages = consumer.poll(0.2)
        got.extend(messages)
        if commit and messages:
            consumer.commit(messages)
    return got


def test_delivers_everything_in_order_per_key(bus, topics, group):
    items = [(f"k{i % 3}".encode(), f"{i}".encode()) for i in range(30)]
    publish(bus, topics.shards, items)
    consumer = bus.consumer([topics.shards], group, max_records=7)
    got = drain(consumer, 30)
    consumer.close()
    assert sorted(int(m.value) for m in got) == list(range(30))
    by_key = defaultdict(list)
    for m in got:
        by_key[m.key].append(int(m.value))
    assert all(values == sorted(values) for values in by_key.values())
    assert all(m.topic == topics.shards for m in got)


def test_uncommitted_messages_are_redelivered_committed_ones_are_not(bus, topics, group):
    publish(bus, topics.shards, [(b"k", f"{i}".encode()) for i in range(6)])
    first = bus.consumer([topics.shards], group, max_records=1)
    got = drain(first, 2, commit=False)
    first.commit(got[:1])  # the first is done; the second was taken but never committed (a "crash")
    first.close()
    second = bus.consumer([topics.shards], group, max_records=10)
    rest = drain(second, 5)
    second.close()
    assert [m.value for m in got] == [b"0", b"1"]
    assert [m.value for m in rest] == [b"1", b"2", b"3", b"4", b"5"]


def test_group_lag_is_what_is_not_committed(bus, topics, group):
    publish(bus, topics.shards, [(f"k{i}".encode(), b"x") for i in range(5)])
    consumer = bus.consumer([topics.shards], group, max_records=1)
    drain(consumer, 2)
    lag = bus.group_lag([topics.shards, topics.results])
    consumer.close()
    assert lag[(group, topics.shards)] == 3
    assert (group, topics.results) not in lag


def test_a_group_shares_partitions_between_consumers(bus, topics, group):
    received: dict[int, list] = {0: [], 1: []}
    stop = threading.Event()

    def consume(index):
        consumer = bus.consumer([topics.shards], group, max_records=5)
        while not stop.is_set():
            messages = consumer.poll(0.1)
            if messages:
                consumer.commit(messages)
                received[index].extend(messages)
        consumer.close()

    threads = [threading.Thread(target=consume, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    time.sleep(4 if bus.url.startswith("kafka") else 0.1)  # both have joined the group
    publish(bus, topics.shards, [(f"key-{i}".encode(), f"{i}".encode()) for i in range(40)])
    deadline = time.monotonic() + 15
    while sum(map(len, received.values())) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join()
    values = sorted(int(m.value) for ms in received.values() for m in ms)
    assert values == list(range(40))  # each once: no loss, no duplicate while nobody failed
    assert received[0] and received[1]
    partitions = [{m.partition for m in received[i]} for i in (0, 1)]
    assert not partitions[0] & partitions[1]


def test_unreachable_kafka_is_a_transient_error():
    bus = open_bus("kafka://127.0.0.1:9?bootstrap_timeout_ms=500&max_block_ms=500&request_timeout_ms=500")
    with pytest.raises(UnavailableError):
        producer = bus.producer()
        producer.send("shards", b"x")
        producer.flush()


def test_bad_bus_urls_are_user_errors():
    with pytest.raises(UserError, match="unknown bus URL"):
        open_bus("amqp://x")
    with pytest.raises(UserError, match="unknown Kafka option"):
        open_bus("kafka://h:9092?sesion_timeout_ms=1")
    with pytest.raises(UserError, match="names no broker"):
        open_bus("kafka://")
