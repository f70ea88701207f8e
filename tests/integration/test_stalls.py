"""A wedged consumer group is seen. Simulated on the real in-process bus with the real consume loop,
gRPC health service and metrics: one member of the group holds the only partition and stops
polling (as a member wedged in a rebalance does), so the worker beside it is assigned nothing while
messages wait. The worker must report the stall (metrics, readiness) and recover once the partition
comes to it."""

from __future__ import annotations

import threading
import time
import uuid

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from conceptfreq.adapters.bus import Topics
from conceptfreq.adapters.bus.inproc import InprocBus
from conceptfreq.adapters.bus.liveness import READINESS, STALL_ENV
from conceptfreq.adapters.bus.retry import Retrier
from conceptfreq.adapters.bus.worker import serve_until_stopped, start_loop
from conceptfreq.adapters.grpc_server import serve


class Recorder:
    """Handles a message by keeping its value."""

    stage = "test"

    def __init__(self):
        self.values: list[bytes] = []

    def handle(self, message):
        self.values.append(message.value)

    def give_up(self, message, error):
        return "", ""

    def flush(self):
        pass


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def metric(name: str, **labels) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_a_worker_assigned_nothing_while_its_group_has_lag_is_stalled_until_it_gets_work(monkeypatch):
    monkeypatch.setenv(STALL_ENV, "0.5")
    bus = InprocBus(uuid.uuid4().hex)
    topics = Topics(partitions=1).prefixed(uuid.uuid4().hex[:8] + "-")
    group = f"stall-{uuid.uuid4().hex[:6]}"
    bus.create_topics(topics.names, 1)
    wedged = bus.consumer([topics.shards], group)  # joins first, takes the partition, never polls
    producer = bus.producer()
    for i in range(3):
        producer.send(topics.shards, f"m{i}".encode(), b"k")
    producer.flush()

    recorder = Recorder()
    retrier = Retrier(threading.Event(), stage="test")
    loop = start_loop(bus, topics, group=group, topic=topics.shards, retrier=retrier, handler=lambda _: recorder)
    assert wedged.assigned() == [(topics.shards, 0)] and loop.consumer.assigned() == []
    server, port = serve([], 0, "127.0.0.1")
    worker = threading.Thread(target=serve_until_stopped, args=(lambda: loop, server, "worker up"))
    worker.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)

            def readiness():
                return health.Check(health_pb2.HealthCheckRequest(service=READINESS), timeout=5).status

            wait_for(lambda: readiness() == health_pb2.HealthCheckResponse.NOT_SERVING, 10, "readiness to turn off")
            assert metric("conceptfreq_consumer_stalled", group=group) == 1
            assert metric("conceptfreq_consumer_assigned_partitions", group=group, topic=topics.shards) == 0
            assert metric("conceptfreq_consumer_seconds_since_progress", group=group) > 0.5
            assert loop.liveness.lag == 3
            # Liveness is not readiness: the process answers, so it is not restarted for a stall.
            assert health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
            assert recorder.values == []

            wedged.close()  # the wedged member leaves: the partition moves to the worker
            wait_for(lambda: len(recorder.values) == 3, 10, "the worker to take over the partition")
            wait_for(lambda: readiness() == health_pb2.HealthCheckResponse.SERVING, 10, "readiness to come back")
            assert recorder.values == [b"m0", b"m1", b"m2"]
            assert metric("conceptfreq_consumer_stalled", group=group) == 0
            assert metric("conceptfreq_consumer_assigned_partitions", group=group, topic=topics.shards) == 1
    finally:
        retrier.stop.set()
        worker.join(30)
    assert not worker.is_alive()


def test_an_idle_group_is_not_stalled(monkeypatch):
    """No lag, no progress: nothing to do is not a stall, however long it lasts."""
    monkeypatch.setenv(STALL_ENV, "0.2")
    bus = InprocBus(uuid.uuid4().hex)
    topics = Topics(partitions=2).prefixed(uuid.uuid4().hex[:8] + "-")
    group = f"idle-{uuid.uuid4().hex[:6]}"
    retrier = Retrier(threading.Event(), stage="test")
    loop = start_loop(bus, topics, group=group, topic=topics.shards, retrier=retrier, handler=lambda _: Recorder())
    try:
        time.sleep(0.5)
        assert not loop.liveness.check() and loop.liveness.lag == 0
    finally:
        loop.consumer.close()
