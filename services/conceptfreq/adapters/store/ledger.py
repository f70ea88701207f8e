"""The ledger: where every shard of every stage stands, and which attempt of it readers see.

Exactly-once effect comes from the ledger, not from the data tables. A stage first inserts its rows
under a fresh attempt_id, then appends a ledger row that marks that attempt `done`. Readers only
see rows whose (shard, attempt_id) is the latest ledger row of the shard, and only when that row is
`done` (`visible_attempts`), so
- a crash before the ledger row leaves invisible rows (garbage, never double counts);
- writing a shard again replaces its rows, whatever changed in between.

One abstraction serves two tables that differ only in what a shard belongs to (`LedgerTable.scope`):
training shards per (dataset, vocabulary version, stage) in `shard_ledger`, evaluation shards per
evaluation in `eval_ledger`. Both are append-only; the latest row (highest seq) of a key is its state.

The order of a key's rows does not depend on any clock. Writers run on different machines whose
clocks differ (by minutes, in a real cluster), so `seq` is a logical clock, not a timestamp: every
append reads the highest seq its keys already have and writes one more than that, or its own
clock's reading when that is higher (`LedgerTables._next_seq`). Hence the rule:

    a row outranks every row of its key that existed when it was written.

A write that follows another one in fact (the parser's `done` after ingest's `pending`, a retry's
`pending` after the `failed` it resets, a redelivered parse after the first one's `done`) always
wins, whatever the writers' clocks say. Only writes that race (neither saw the other: two parsers
on one redelivered shard) are ordered by their clocks; each of them is a complete attempt, so
either outcome counts every sample once. Every `pending` is followed by a publish, and the parse
it causes is written after it, so a shard never stays pending because some writer's clock runs
fast. The clock floor only keeps seq roughly in time order across keys (`vocabulary_versions`).
The shard events `retry` republishes (`shard_events`) follow the same rule.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from conceptfreq.adapters.store.tables import Tables, now_seq
from conceptfreq.core.counting import DONE, FAILED, PENDING, TEXT

_NOTE = "note:"
_SHARDS_PER_QUERY = 1000


@dataclass(frozen=True)
class LedgerTable:
    name: str
    scope: tuple[str, ...]        # the columns that say what a shard belongs to
    extra: tuple[str, ...] = ()   # per-attempt columns beyond the common ones

    @property
    def columns(self) -> list[str]:
        return [*self.scope, "shard", "state", "attempt_id", *self.extra, "samples", "skipped", "skip_reason_names",
                "skip_reason_counts", "reason", "seq", "updated_at_ms"]


SHARD_LEDGER = LedgerTable("shard_ledger", ("dataset", "vocabulary_version", "stage"), extra=("captions_from",))
EVAL_LEDGER = LedgerTable("eval_ledger", ("evaluation_id",), extra=("model_id",))


def visible_attempts(table: LedgerTable, key: str, where: str, row: str | None = None) -> str:
    """The one SQL condition that makes rows exactly-once (module docstring): the row's (`row`...,
    attempt_id) is the latest ledger row of its `key` and that row is `done`. `where` narrows the
    ledger scan; `row` is the row's own columns for `key` when they differ (a literal stage)."""
    return f"""({row or key}, attempt_id) IN (
        SELECT {key}, argMax(attempt_id, seq) FROM {{db}}.{table.name}
        WHERE {where} GROUP BY {key} HAVING argMax(state, seq) = '{DONE}')"""


def visible(stage: str = "stage", narrow: str = "", across_vocabularies: bool = False) -> str:
    """`visible_attempts` of the shard ledger, for count tables. Parameters %(d)s, and %(v)s unless
    across_vocabularies (then the vocabulary version is part of the key). `stage` is the row's stage
    column, or a literal for tables that hold one stage (`'text'`); `narrow` adds conditions on the
    ledger scan, e.g. "AND stage = %(stage)s"."""
    if across_vocabularies:
        return visible_attempts(SHARD_LEDGER, "vocabulary_version, stage, shard", f"dataset = %(d)s {narrow}",
                                row=f"vocabulary_version, {stage}, shard")
    return visible_attempts(SHARD_LEDGER, "stage, shard", f"dataset = %(d)s AND vocabulary_version = %(v)s {narrow}",
                            row=f"{stage}, shard")


@dataclass
class LedgerEntry:
    """The latest ledger row of one shard. Notes are counted samples with a remark (e.g. invalid
    UTF-8); they share the skip-reason arrays under a `note:` prefix."""

    shard: str
    state: str
    attempt_id: str = ""
    samples: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)
    reason: str = ""
    model_id: str = ""
    updated_at_ms: int = 0
    # text stage: "shard" or "sidecar" (an img2dataset tar's parquet); "" on other stages' rows and
    # on rows written before the source was recorded, which read the shard itself
    captions_from: str = ""

    @property
    def skipped(self) -> int:
        return sum(self.skip_reasons.values())

    def row(self, table: LedgerTable, scope: Sequence[str], seq: int, updated_at_ms: int | None = None) -> tuple:
        extra = {"model_id": self.model_id, "captions_from": self.captions_from}
        return (*scope, self.shard, self.state, self.attempt_id, *(extra[c] for c in table.extra), self.samples,
                self.skipped, list(self.skip_reasons) + [_NOTE + n for n in self.notes],
                list(self.skip_reasons.values()) + list(self.notes.values()), self.reason, seq,
                seq // 1_000_000 if updated_at_ms is None else updated_at_ms)


@dataclass
class ShardState(LedgerEntry):
    """A training shard's LedgerEntry with its scope."""

    dataset: str = ""
    vocabulary_version: str = ""
    stage: str = ""


@dataclass
class LedgerProgress:
    """Where a set of `shards` shards stands, from their ledger entries (by shard)."""

    shards: int
    states: dict[str, LedgerEntry] = field(default_factory=dict)

    def count(self, state: str) -> int:
        return sum(1 for row in self.states.values() if row.state == state)

    @property
    def done(self) -> int:
        return self.count(DONE)

    @property
    def failed(self) -> int:
        return self.count(FAILED)

    @property
    def finished(self) -> bool:
        return self.done + self.failed >= self.shards

    @property
    def skipped(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.states.values():
            if row.state == DONE:
                for reason, n in row.skip_reasons.items():
                    out[reason] = out.get(reason, 0) + n
        return out

    @property
    def model_ids(self) -> list[str]:
        return sorted({row.model_id for row in self.states.values() if row.state == DONE and row.model_id})

    def failures(self) -> list[tuple[str, str]]:
        return sorted((shard, row.reason) for shard, row in self.states.items() if row.state == FAILED)


@dataclass
class DatasetSummary:
    dataset: str
    vocabulary_version: str
    states: dict[str, int] = field(default_factory=dict)  # "stage:state" -> shards
    samples: int = 0


class LedgerTables(Tables):
    # --- any ledger -------------------------------------------------------------------------------

    def _next_seq(self, table: str, scope: Mapping[str, str], shards: Sequence[str]) -> int:
        """The seq of a write to these keys: above every seq they have (module docstring)."""
        where = " AND ".join([f"{c} = %({c})s" for c in scope] + ["shard IN %(shards)s"])
        names, latest = list(dict.fromkeys(shards)), 0
        # In slices: shard names travel in the SQL text, which ClickHouse caps (max_query_size), and
        # an ingest announces tens of thousands of shards at once.
        for start in range(0, len(names), _SHARDS_PER_QUERY):
            (found,), = self._execute(f"SELECT max(seq) FROM {{db}}.{table} WHERE {where}", **scope,
                                      shards=tuple(names[start:start + _SHARDS_PER_QUERY])) or [(0,)]
            latest = max(latest, int(found or 0))
        return max(now_seq(), latest + 1)

    def _append(self, table: LedgerTable, scope: Sequence[str], entries: Sequence[LedgerEntry]) -> None:
        """Ledger rows in one insert (ClickHouse wants few, big inserts), all with one seq."""
        if not entries:
            return
        seq = self._next_seq(table.name, dict(zip(table.scope, scope)), [entry.shard for entry in entries])
        # updated_at_ms is for people (status: "running for 3 min"), so the writer's clock, not seq.
        updated = now_seq() // 1_000_000
        self._insert(table.name, table.columns, [entry.row(table, scope, seq, updated) for entry in entries])

    def _latest(self, table: LedgerTable, fixed: Mapping[str, str], shards: Sequence[str] | None = None,
                entry: type[LedgerEntry] = LedgerEntry, stages: Sequence[str] | None = None) -> list[LedgerEntry]:
        """The latest entry of every (scope, shard) whose scope columns equal `fixed`, ordered by
        scope and shard; `entry` may be a LedgerEntry subclass that also takes the scope columns.
        `shards` and `stages` narrow the scan (by the table's key)."""
        free = [c for c in table.scope if c not in fixed]
        where = " AND ".join([f"{c} = %({c})s" for c in fixed] + (["stage IN %(stages)s"] if stages else [])
                             + (["shard IN %(shards)s"] if shards else [])) or "1"
        latest = ", ".join(f"argMax({c}, seq)" for c in ("state", "attempt_id", *table.extra, "samples", "skip_reason_names",
                                                          "skip_reason_counts", "reason"))
        key = ", ".join([*free, "shard"])
        rows = self._execute(f"""SELECT {key}, {latest}, max(updated_at_ms) FROM {{db}}.{table.name}
            WHERE {where} GROUP BY {key} ORDER BY {key}""", **fixed, shards=tuple(shards or ()), stages=tuple(stages or ()))
        out = []
        for row in rows:
            scope = dict(zip(free, row[:len(free)]))
            shard, state, attempt, *extra = row[len(free):len(free) + 3 + len(table.extra)]
            samples, names, counts, reason, updated = row[len(free) + 3 + len(table.extra):]
            reasons = dict(zip(names, (int(c) for c in counts)))
            kwargs = {**dict(zip(table.extra, extra)), **({**fixed, **scope} if entry is not LedgerEntry else {})}
            out.append(entry(shard, state, attempt, int(samples), {k: v for k, v in reasons.items() if not k.startswith(_NOTE)},
                             {k[len(_NOTE):]: v for k, v in reasons.items() if k.startswith(_NOTE)}, reason,
                             updated_at_ms=int(updated), **kwargs))
        return out

    # --- training shards --------------------------------------------------------------------------

    def record_state(self, dataset: str, vocabulary_version: str, shard: str, stage: str, state: str, *,
                     attempt_id: str = "", samples: int = 0, skip_reasons: dict[str, int] | None = None,
                     notes: dict[str, int] | None = None, reason: str = "", captions_from: str = "") -> None:
        self._append(SHARD_LEDGER, (dataset, vocabulary_version, stage), [LedgerEntry(
            shard, state, attempt_id, samples, dict(skip_reasons or {}), dict(notes or {}), reason,
            captions_from=captions_from)])

    def record_done(self, results: Sequence) -> None:
        """The `done` rows of written ShardResults, one insert per (dataset, vocabulary, stage)."""
        scopes: dict[tuple[str, str, str], list[LedgerEntry]] = {}
        for r in results:
            scopes.setdefault((r.dataset, r.vocabulary_version, r.stage), []).append(LedgerEntry(
                r.shard, DONE, r.attempt_id, r.samples, dict(r.skipped), dict(r.notes), captions_from=r.captions_from))
        for scope, entries in scopes.items():
            self._append(SHARD_LEDGER, scope, entries)

    def record_states(self, dataset: str, vocabulary_version: str, stage: str, state: str,
                      shards: Sequence[tuple[str, str, int]], reason: str = "") -> None:
        """One ledger row per (shard, attempt_id, samples), in one insert."""
        self._append(SHARD_LEDGER, (dataset, vocabulary_version, stage),
                     [LedgerEntry(shard, state, attempt, samples, reason=reason) for shard, attempt, samples in shards])

    def fail_shard(self, dataset: str, vocabulary_version: str, shard: str, stage: str, reason: str) -> None:
        self.record_state(dataset, vocabulary_version, shard, stage, FAILED, reason=reason)

    def announce(self, dataset: str, vocabulary_version: str, shards: Sequence[str], stages: Sequence[str] = (TEXT,)) -> int:
        """Record shards as pending; shards the ledger already knows keep their state. Returns how many were new."""
        known = {(s.stage, s.shard) for s in self.shard_states(dataset, vocabulary_version)}
        new = 0
        for stage in stages:
            fresh = [LedgerEntry(shard, PENDING) for shard in shards if (stage, shard) not in known]
            self._append(SHARD_LEDGER, (dataset, vocabulary_version, stage), fresh)
            new += len(fresh)
        return new

    def shard_states(self, dataset: str, vocabulary_version: str | None = None, shards: Sequence[str] | None = None,
                     stages: Sequence[str] | None = None) -> list[ShardState]:
        """The latest state of every (vocabulary version, stage, shard) of a dataset, optionally of
        some shards and stages only."""
        fixed = {"dataset": dataset, **({"vocabulary_version": vocabulary_version} if vocabulary_version is not None else {})}
        return self._latest(SHARD_LEDGER, fixed, shards, entry=ShardState, stages=stages)

    def stage_attempts(self, dataset: str, vocabulary_version: str, shards: Sequence[str]) -> dict[str, dict[str, tuple[str, str, int]]]:
        """{shard: {stage: (state, attempt_id, samples)}}, the ledger's latest row per stage of these shards only."""
        if not shards:
            return {}
        out: dict[str, dict[str, tuple[str, str, int]]] = {}
        for state in self.shard_states(dataset, vocabulary_version, shards):
            out.setdefault(state.shard, {})[state.stage] = (state.state, state.attempt_id, state.samples)
        return out

    def datasets(self) -> list[DatasetSummary]:
        rows = self._execute("""SELECT dataset, vocabulary_version, stage, state, count(), sum(samples) FROM (
                SELECT dataset, vocabulary_version, stage, shard, argMax(state, seq) AS state, argMax(samples, seq) AS samples
                FROM {db}.shard_ledger GROUP BY dataset, vocabulary_version, stage, shard)
            GROUP BY dataset, vocabulary_version, stage, state ORDER BY dataset, vocabulary_version""")
        summaries: dict[tuple[str, str], DatasetSummary] = {}
        for dataset, version, stage, state, shards, samples in rows:
            summary = summaries.setdefault((dataset, version), DatasetSummary(dataset, version))
            summary.states[f"{stage}:{state}"] = int(shards)
            if stage == TEXT and state == DONE:
                summary.samples = int(samples)
        return list(summaries.values())

    def vocabulary_versions(self, dataset: str) -> list[str]:
        """Vocabulary versions with done shards for a dataset, most recently written first."""
        rows = self._execute("""SELECT vocabulary_version, max(seq) AS last FROM {db}.shard_ledger
            WHERE dataset = %(d)s AND state = 'done' GROUP BY vocabulary_version ORDER BY last DESC""", d=dataset)
        return [r[0] for r in rows]

    def done_shards(self, dataset: str, vocabulary_version: str, stage: str = TEXT) -> tuple[int, int]:
        """(shards, samples) of a stage's done shards."""
        (shards, samples), = self._execute("""SELECT count(), sum(samples) FROM (
            SELECT argMax(samples, seq) AS samples, argMax(state, seq) AS state FROM {db}.shard_ledger
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND stage = %(s)s GROUP BY shard) WHERE state = 'done'""",
                                           d=dataset, v=vocabulary_version, s=stage)
        return int(shards), int(samples or 0)

    def samples_counted(self, dataset: str, vocabulary_version: str, stage: str = TEXT) -> int:
        return self.done_shards(dataset, vocabulary_version, stage)[1]

    # --- announced events: `retry` republishes exactly what ingest sent ------------------------------

    def record_events(self, dataset: str, vocabulary_version: str, events: Sequence[tuple[str, bytes]]) -> None:
        """Keep the serialized ShardEvent of each (shard, event) pair; the latest per shard wins."""
        if not events:
            return
        seq = self._next_seq("shard_events", {"dataset": dataset, "vocabulary_version": vocabulary_version},
                             [shard for shard, _ in events])
        self._insert("shard_events", ["dataset", "vocabulary_version", "shard", "event", "seq"],
                     [(dataset, vocabulary_version, shard, base64.b64encode(event).decode(), seq) for shard, event in events])

    def announced_events(self, dataset: str, vocabulary_version: str) -> dict[str, bytes]:
        """{shard: serialized ShardEvent} as last announced."""
        rows = self._execute("""SELECT shard, argMax(event, seq) FROM {db}.shard_events
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s GROUP BY shard""", d=dataset, v=vocabulary_version)
        return {shard: base64.b64decode(event) for shard, event in rows}

    # --- evaluation shards ------------------------------------------------------------------------

    def evaluation_progress(self, evaluation_id: str, shards: Sequence[str]) -> LedgerProgress:
        wanted = set(shards)
        entries = self._latest(EVAL_LEDGER, {"evaluation_id": evaluation_id})
        return LedgerProgress(len(shards), {e.shard: e for e in entries if e.shard in wanted})

    def record_evaluation_states(self, evaluation_id: str, entries: Sequence[LedgerEntry]) -> None:
        self._append(EVAL_LEDGER, (evaluation_id,), entries)
