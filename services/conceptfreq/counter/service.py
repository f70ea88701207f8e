"""The counter's bus handler: StageResults in; shards marked counted and per-concept totals out.

It trusts the ledger, not the events. A StageResult only says "look at this shard again": the
counter reads the shard's latest stage rows, and acts once every stage the shard was announced
with is done. Stale, duplicated or reordered events therefore change nothing, and a shard is
marked with the exact attempts it was counted from (`counted`'s attempt_id, e.g. `text=ab12`).

Derived per-shard results slot in as COMBINERS: each names the stages it needs and runs when they
are all done, before the shard is marked counted. Matched counts (text and image hits of the same
sample, tagger/matched.py) are the first; a shard announced for text only never runs them.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from conceptfreq.adapters.bus import Message
from conceptfreq.adapters.bus.events import read_stage_result
from conceptfreq.adapters.metrics import SHARD_END_TO_END, SHARDS
from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import DONE, MATCHED, TEXT
from conceptfreq.tagger.matched import MatchedCounts

log = logging.getLogger(__name__)

# The counter's own ledger stage: the shard is done, all its stages are in the totals.
COUNTED = "counted"


class Combiner(Protocol):
    needs: frozenset[str]

    def run(self, store: CountStore, dataset: str, vocabulary_version: str, shard: str, attempts: dict[str, str]) -> None:
        """Write this derived stage's rows for the shard (idempotently, e.g. with store.write_shard)
        from the given done attempts of the stages it needs."""


# Derived stage name -> how to compute it, in this order, before the shard is marked counted.
COMBINERS: dict[str, Combiner] = {MATCHED: MatchedCounts()}  # needs text and image


def counted_attempt(attempts: dict[str, str]) -> str:
    """The inputs a shard was counted from, as one ledger attempt_id: `image=cd34;text=ab12`."""
    return ";".join(f"{stage}={attempt}" for stage, attempt in sorted(attempts.items()))


class CountStageResults:
    stage = COUNTED

    def __init__(self, store: CountStore, combiners: dict[str, Combiner] | None = None, prune_every: int = 100):
        self.store = store
        self.combiners = COMBINERS if combiners is None else combiners
        self.prune_every = prune_every
        self._refreshes = 0
        # (dataset, vocabulary) -> {shard: announced_at_ms}: what the next flush looks at.
        self._touched: dict[tuple[str, str], dict[str, int]] = {}

    def handle(self, message: Message) -> None:
        result = read_stage_result(message.value)
        shards = self._touched.setdefault((result.dataset, result.vocabulary_version), {})
        shards[result.shard_url] = max(shards.get(result.shard_url, 0), result.announced_at_ms)

    def give_up(self, message: Message, error: BaseException) -> tuple[str, str]:
        return "", ""  # a StageResult we cannot read names no shard we could mark

    def flush(self) -> None:
        for key in list(self._touched):
            dataset, version = key
            shards = self._touched[key]
            ready = self._combine(dataset, version, shards)
            # Totals before the `counted` rows, so a counted shard is always in the latest totals.
            self.store.refresh_totals(dataset, version)
            self._refreshes += 1
            if self.prune_every and self._refreshes % self.prune_every == 0:
                self.store.prune_totals(dataset, version)
            self._mark_counted(dataset, version, ready, shards)
            del self._touched[key]  # only now: a transient failure above retries the whole batch

    def _combine(self, dataset: str, version: str, shards: dict[str, int]) -> dict[str, tuple[str, int]]:
        """Run the combiners of every shard whose stages are all done; {shard: (counted attempt, samples)}
        of the shards that need a new `counted` row."""
        ready: dict[str, tuple[str, int]] = {}
        for shard, stages in self.store.stage_attempts(dataset, version, sorted(shards)).items():
            workers = {stage: row for stage, row in stages.items() if stage != COUNTED and stage not in self.combiners}
            if not workers or any(state != DONE for state, _, _ in workers.values()):
                continue  # a stage is still pending or running, or failed (status shows it)
            attempts = {stage: attempt for stage, (_, attempt, _) in workers.items()}
            inputs = counted_attempt(attempts)
            counted = stages.get(COUNTED)
            if counted and counted[0] == DONE and counted[1] == inputs:
                continue  # counted from these very attempts already: a redelivered result
            for combiner in self.combiners.values():
                if combiner.needs <= attempts.keys():
                    combiner.run(self.store, dataset, version, shard, {s: attempts[s] for s in combiner.needs})
            samples = workers[TEXT][2] if TEXT in workers else max(row[2] for row in workers.values())
            ready[shard] = (inputs, samples)
        return ready

    def _mark_counted(self, dataset: str, version: str, ready: dict[str, tuple[str, int]], shards: dict[str, int]) -> None:
        if not ready:
            return
        self.store.record_states(dataset, version, COUNTED, DONE, [(shard, inputs, samples) for shard, (inputs, samples) in sorted(ready.items())])
        now_ms = time.time_ns() // 1_000_000
        SHARDS.labels(COUNTED, dataset, DONE).inc(len(ready))
        for shard in ready:
            if shards.get(shard):
                SHARD_END_TO_END.observe(max(0, now_ms - shards[shard]) / 1000)
