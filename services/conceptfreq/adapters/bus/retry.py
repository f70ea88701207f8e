"""Retrying transient failures: exponential backoff with jitter, abandoned on shutdown.

Jitter matters at scale: thirty parser pods that lose ClickHouse at the same moment must not
all come back at the same moment and knock it over again."""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from conceptfreq.adapters.metrics import RETRIES
from conceptfreq.errors import UnavailableError, UserError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.2
    maximum_s: float = 30.0
    multiplier: float = 2.0

    def ceiling(self, attempt: int) -> float:
        """The longest wait before retry number `attempt` (0-based)."""
        return min(self.maximum_s, self.initial_s * self.multiplier ** min(attempt, 64))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """"Equal jitter": at least half the ceiling, so waits really grow, and a random other half,
        so that clients which failed together spread out."""
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class Abandoned(Exception):
    """Shutdown was requested while a transient failure was being retried."""


class Retrier:
    """Calls a function until it stops raising a transient error (UnavailableError), waiting with
    backoff in between. `stop` (set on SIGTERM) ends the waiting with Abandoned, so a pod never
    hangs in shutdown on a dead dependency. Other errors are retried `other_attempts` times at
    most: some are transient in disguise (a server-side timeout), and a real bug must not loop.

    `give_up_s` bounds the retrying of one call: a one-shot command (ingest, retry) must exit with
    one line when a dependency stays away, while a service (None) waits for it as long as it lives."""

    def __init__(self, stop: threading.Event | None = None, backoff: Backoff = Backoff(), *, stage: str = "",
                 other_attempts: int = 3, rng: random.Random | None = None, give_up_s: float | None = None):
        self.stop = stop or threading.Event()
        self.give_up_s = give_up_s
        self.backoff = backoff
        self.stage = stage
        self.other_attempts = other_attempts
        self._rng = rng or random.Random()

    def call(self, fn: Callable[[], T], what: str, permanent: tuple[type[BaseException], ...] = ()) -> T:
        attempt = 0
        others = 0
        deadline = None if self.give_up_s is None else time.monotonic() + self.give_up_s
        while True:
            try:
                return fn()
            except (UserError, *permanent):  # bad input or configuration: retrying cannot help
                raise
            except UnavailableError as error:
                reason = error
            except Exception as error:  # noqa: BLE001 - retried a few times, then re-raised
                others += 1
                if others >= self.other_attempts:
                    raise
                reason = error
                log.warning("%s failed (%s: %s), attempt %d of %d", what, type(error).__name__, error, others, self.other_attempts)
            if self.stop.is_set():
                raise Abandoned(f"{what}: shutting down while retrying ({reason})") from reason
            delay = self.backoff.delay(attempt, self._rng)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    if isinstance(reason, UnavailableError):
                        raise UnavailableError(f"{what}: gave up after {self.give_up_s:g}s: {reason}") from reason
                    raise reason
                delay = min(delay, left)
            RETRIES.labels(self.stage, what).inc()
            log.warning("%s: %s; retrying in %.2fs", what, reason, delay)
            attempt += 1
            if self.stop.wait(delay):
                raise Abandoned(f"{what}: shutting down while retrying ({reason})") from reason
