"""What the counter does with shards whose stages report in: derived stages, totals, `counted`.

It trusts the ledger, not the events. A stage result only says "look at this shard again": the
counter reads the shard's latest stage rows, and acts once every stage the shard was announced with
is done. Stale, duplicated or reordered events therefore change nothing, and a shard is marked with
the exact attempts it was counted from (`counted`'s attempt_id, e.g. `text=ab12`).

Derived per-shard results slot in as COMBINERS: each names the stages it needs and runs when they
are all done, before the shard is marked counted. Matched counts (text and image hits of the same
sample) are the first; a shard announced for text only never runs them.

The counter service (its bus handler), `retag` and the local `count` all count through `Counting`,
so there is one way matched counts, totals and `counted` rows are made."""

from __future__ import annotations

import logging
import time
from typing import Iterable, Protocol

from conceptfreq.adapters.metrics import SHARD_END_TO_END, SHARDS
from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import DONE, IMAGE, MATCHED, TEXT
from conceptfreq.core.tagging import match_samples
from conceptfreq.pipeline.progress import COUNTED, DERIVED_STAGES, counted_attempt

log = logging.getLogger(__name__)


class Combiner(Protocol):
    needs: frozenset[str]

    def run(self, store: CountStore, dataset: str, vocabulary_version: str, shard: str, attempts: dict[str, str]) -> None:
        """Write this derived stage's rows for the shard (idempotently, under a fresh attempt) from
        the given done attempts of the stages it needs."""


class MatchedCounts:
    """Once a shard's text and image stages are both done: per-sample intersections of caption hits
    and image hits (matched counts) and the misaligned samples, for every tagging rule the image
    attempt carries (so rules switched by `retag` keep their matched counts). It reads exactly the
    attempts it is handed, not "the latest", so what it writes is what the shard is then marked
    counted from; writing again (a redelivered result) replaces, never adds."""

    needs = frozenset({TEXT, IMAGE})

    def run(self, store: CountStore, dataset: str, vocabulary_version: str, shard: str, attempts: dict[str, str]) -> None:
        image = store.image_attempt(dataset, vocabulary_version, shard, attempts[IMAGE])
        if image is None:
            # Every image attempt writes its metadata before its ledger row, so this is an image stage
            # from elsewhere (e.g. imported counts): nothing to intersect.
            log.warning("%s: image attempt %s has no tagging metadata; no matched counts", shard, attempts[IMAGE])
            return
        text = store.text_hits(dataset, vocabulary_version, shard, attempts[TEXT])
        hits = store.image_hits(dataset, vocabulary_version, shard, image.attempt_id)
        keys = store.image_keys(dataset, vocabulary_version, shard, image.scores_attempt)
        store.write_matched(dataset, vocabulary_version, shard,
                            [match_samples(rule, keys, text, hits.get(rule, {})) for rule in image.rules])


# Derived stage name -> how to compute it, in this order, before the shard is marked counted.
COMBINERS: dict[str, Combiner] = {MATCHED: MatchedCounts()}
assert set(COMBINERS) | {COUNTED} == DERIVED_STAGES, "progress.py must know every derived stage"

# The counter names its shards in the SQL text, which ClickHouse caps (max_query_size).
SHARDS_PER_QUERY = 1000


class Counting:
    def __init__(self, store: CountStore, combiners: dict[str, Combiner] | None = None, prune_every: int = 100):
        self.store = store
        self.combiners = COMBINERS if combiners is None else combiners
        self.prune_every = prune_every
        self._refreshes = 0

    def count(self, dataset: str, version: str, shards: dict[str, int] | Iterable[str]) -> int:
        """Count the shards whose stages are all done (`shards`: names, or {name: announced_at_ms}
        for the end-to-end latency metric); returns how many were marked counted anew."""
        announced = shards if isinstance(shards, dict) else dict.fromkeys(shards, 0)
        names = sorted(announced)
        ready: dict[str, tuple[str, int]] = {}
        for start in range(0, len(names), SHARDS_PER_QUERY):
            ready.update(self._combine(dataset, version, names[start:start + SHARDS_PER_QUERY]))
        # Totals before the `counted` rows, so a counted shard is always in the latest totals. Every
        # shard looked at, ready or not: what readers see of it (its text before its image is in, a
        # stage that failed on a recount) is what the totals hold.
        self.store.advance_totals(dataset, version, names)
        self._refreshes += 1
        if self.prune_every and self._refreshes % self.prune_every == 0:
            self.store.prune_totals(dataset, version)
        self._mark_counted(dataset, version, ready, announced)
        return len(ready)

    def _combine(self, dataset: str, version: str, shards: list[str]) -> dict[str, tuple[str, int]]:
        """Run the combiners of every shard whose stages are all done; {shard: (counted attempt, samples)}
        of the shards that need a new `counted` row."""
        ready: dict[str, tuple[str, int]] = {}
        for shard, stages in self.store.stage_attempts(dataset, version, shards).items():
            workers = {stage: row for stage, row in stages.items() if stage not in DERIVED_STAGES and stage not in self.combiners}
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

    def _mark_counted(self, dataset: str, version: str, ready: dict[str, tuple[str, int]], announced: dict[str, int]) -> None:
        if not ready:
            return
        self.store.record_states(dataset, version, COUNTED, DONE, [(shard, inputs, samples) for shard, (inputs, samples) in sorted(ready.items())])
        now_ms = time.time_ns() // 1_000_000
        SHARDS.labels(COUNTED, dataset, DONE).inc(len(ready))
        for shard in ready:
            if announced.get(shard):
                SHARD_END_TO_END.observe(max(0, now_ms - announced[shard]) / 1000)
