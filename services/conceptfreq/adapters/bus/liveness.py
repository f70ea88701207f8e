"""Whether a bus worker makes progress, told to Prometheus and to the readiness probe.

A consumer group can wedge whatever the broker promises: members stuck in a rebalance that never
ends, a partition owned by a member that stopped polling, a worker waiting on a dead store. The
process stays up and its gRPC server answers, so nothing looks wrong. Each worker therefore
watches two things:
- its assigned partitions (`conceptfreq_consumer_assigned_partitions`), from the loop;
- the seconds since it last made progress (`conceptfreq_consumer_seconds_since_progress`):
  since it last handled a message, or since its group last had nothing to do (an idle pipeline
  is not a stalled one).

It is **stalled** when its group has lag on its topic (committed offsets behind the high-water
marks, read from the broker by a thread of its own, so a loop stuck in a handler is still seen)
and it made no progress for `stall_after_s` (env CONCEPTFREQ_STALL_AFTER_S, default 600, the
longest shard the Kafka defaults expect: `max_poll_interval_ms`). Then
`conceptfreq_consumer_stalled` is 1, the health service `readiness` (the Helm chart's readiness
probe) says NOT_SERVING, and the ConceptfreqConsumerStalled alert fires. Liveness stays SERVING:
restarting every parser during a store outage would not help.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, Sequence

from conceptfreq.adapters.metrics import CONSUMER_ASSIGNED, CONSUMER_IDLE, CONSUMER_STALLED

log = logging.getLogger(__name__)

READINESS = "readiness"  # the health service name the readiness probe asks for (adapters/grpc_server.py)
STALL_ENV = "CONCEPTFREQ_STALL_AFTER_S"


def stall_after_s() -> float:
    value = os.environ.get(STALL_ENV, "600")
    try:
        return float(value)
    except ValueError:
        from conceptfreq.errors import UserError

        raise UserError(f"{STALL_ENV}={value!r} must be a number of seconds") from None


class Liveness:
    def __init__(self, group: str, topic: str, group_lag: Callable[[], int | None], *, stall_after: float | None = None,
                 check_every_s: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.group, self.topic = group, topic
        self.stall_after_s = stall_after_s() if stall_after is None else stall_after
        self.check_every_s = check_every_s if check_every_s is not None else max(0.05, min(15.0, self.stall_after_s / 4))
        self._group_lag = group_lag
        self._clock = clock
        self._last_progress = clock()
        self.lag: int | None = None  # the group's lag on the topic; None until the broker answered
        self.stalled = False
        self._health = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        CONSUMER_IDLE.labels(group).set_function(self.idle_s)
        CONSUMER_STALLED.labels(group).set(0)

    def idle_s(self) -> float:
        return max(0.0, self._clock() - self._last_progress)

    def progressed(self) -> None:
        self._last_progress = self._clock()

    def assigned(self, partitions: Sequence) -> None:
        CONSUMER_ASSIGNED.labels(self.group, self.topic).set(len(partitions))

    def check(self) -> bool:
        """Read the group's lag and decide; returns whether the worker is stalled."""
        try:
            self.lag = self._group_lag()
        except Exception as error:  # noqa: BLE001 - an unreachable broker keeps the last known lag
            log.debug("%s: group lag unavailable: %s", self.group, error)
        if self.lag == 0:
            self.progressed()  # nothing to do is not a stall
        stalled = bool(self.lag) and self.idle_s() > self.stall_after_s
        if stalled != self.stalled:
            self.stalled = stalled
            CONSUMER_STALLED.labels(self.group).set(int(stalled))
            if stalled:
                log.warning("%s: stalled: the group has %d message(s) waiting on %s and this worker made no progress "
                            "for %.0fs; readiness is off until it does", self.group, self.lag, self.topic, self.idle_s())
            else:
                log.info("%s: progressing again; ready", self.group)
            self._tell_health()
        return stalled

    def attach(self, server) -> None:
        """Report through this gRPC server's health service (grpc_server.serve keeps it as `server.health`)."""
        self._health = getattr(server, "health", None)
        self._tell_health()

    def _tell_health(self) -> None:
        if self._health is not None:
            from grpc_health.v1 import health_pb2

            status = health_pb2.HealthCheckResponse.NOT_SERVING if self.stalled else health_pb2.HealthCheckResponse.SERVING
            self._health.set(READINESS, status)

    def start(self) -> None:
        def watch():
            while not self._stop.wait(self.check_every_s):
                self.check()
        self._thread = threading.Thread(target=watch, name=f"liveness-{self.group}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def group_lag_of(bus, group: str, topic: str) -> Callable[[], int | None]:
    """The lag of `group` on `topic` as the broker sees it; None while the group committed nothing."""
    def read() -> int | None:
        return bus.group_lag([topic]).get((group, topic))
    return read
