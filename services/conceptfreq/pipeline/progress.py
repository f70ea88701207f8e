"""Where a shard stands as a whole, from its ledger rows (pure). Used by `status`, by the runners
while they wait, and by the benchmarks, so they all agree on what "done" means:

- **failed**: a stage it was announced with failed (the reasons say which and why);
- **done**: every such stage is done and the counter counted exactly those attempts;
- **running**: some stage started or finished, the rest (or the counter) is still to come;
- **pending**: announced, nothing started.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Mapping, Protocol

from conceptfreq.core.counting import DONE, FAILED, MATCHED, PENDING, RUNNING

# The counter's own ledger stage: the shard is done, all its stages are in the totals.
COUNTED = "counted"
# Stages the counter derives from the workers' stages (pipeline/counting.py), not announced ones.
DERIVED_STAGES = frozenset({MATCHED, COUNTED})


def counted_attempt(attempts: dict[str, str]) -> str:
    """The inputs a shard was counted from, as one ledger attempt_id: `image=cd34;text=ab12`."""
    return ";".join(f"{stage}={attempt}" for stage, attempt in sorted(attempts.items()))


class LedgerRow(Protocol):
    stage: str
    state: str
    attempt_id: str
    samples: int
    reason: str
    updated_at_ms: int


@dataclass(frozen=True)
class ShardProgress:
    state: str
    reason: str = ""
    samples: int = 0
    finished_at_ms: int = 0  # when it reached its state (done or failed); 0 otherwise


def worker_stages(rows: Mapping[str, LedgerRow], derived: Collection[str] = ()) -> dict[str, LedgerRow]:
    """The stages a shard was announced with (or that ran on it), as opposed to what the counter derives."""
    derived = set(derived) | DERIVED_STAGES
    return {stage: row for stage, row in rows.items() if stage not in derived}


def shard_progress(rows: Mapping[str, LedgerRow]) -> ShardProgress:
    workers = worker_stages(rows)
    failed = sorted((row for row in workers.values() if row.state == FAILED), key=lambda row: row.stage)
    if failed:
        return ShardProgress(FAILED, "; ".join(f"{row.stage}: {row.reason}" for row in failed),
                        finished_at_ms=max(row.updated_at_ms for row in failed))
    counted = rows.get(COUNTED)
    if (workers and counted is not None and counted.state == DONE and all(row.state == DONE for row in workers.values())
            and counted.attempt_id == counted_attempt({stage: row.attempt_id for stage, row in workers.items()})):
        return ShardProgress(DONE, samples=counted.samples, finished_at_ms=counted.updated_at_ms)
    if any(row.state in (RUNNING, DONE) for row in workers.values()):
        return ShardProgress(RUNNING)
    return ShardProgress(PENDING)


def finished_since(rows: Mapping[str, LedgerRow], since_ms: int, recount: bool = False) -> bool:
    """Whether a shard published at `since_ms` has been dealt with: failed anew, or done (for a
    recount, done from attempts written after `since_ms`)."""
    progress = shard_progress(rows)
    if progress.state == FAILED:
        return progress.finished_at_ms >= since_ms
    if progress.state == DONE:
        return not recount or all(row.updated_at_ms >= since_ms for row in worker_stages(rows).values())
    return False
