"""The count store: one set of SQL over either backend (ClickHouse server or embedded chDB).

Exactly-once effect comes from the ledger, not from the data tables: a stage first inserts its
rows under a fresh attempt_id, then appends a ledger row that marks that attempt `done`. Readers
only see rows whose (stage, shard, attempt_id) is the latest done attempt, so
- a crash before the ledger row leaves invisible rows (garbage, never double counts);
- writing a shard again replaces its rows, whatever changed in between.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from conceptfreq.adapters.store.migrations import MIGRATIONS
from conceptfreq.core.counting import DONE, FAILED, IMAGE, KINDS, MATCHED, PENDING, TEXT, ShardResult, choose_rule
from conceptfreq.core.vocabulary import Vocabulary, parse_json


@dataclass
class ShardState:
    dataset: str
    vocabulary_version: str
    shard: str
    stage: str
    state: str
    attempt_id: str
    samples: int
    skipped: int
    skip_reasons: dict[str, int]
    notes: dict[str, int]
    reason: str
    updated_at_ms: int


@dataclass
class DatasetSummary:
    dataset: str
    vocabulary_version: str
    states: dict[str, int] = field(default_factory=dict)  # "stage:state" -> shards
    samples: int = 0


def visible(stage: str = "stage", narrow: str = "", across_vocabularies: bool = False) -> str:
    """The one SQL condition that makes counts exactly-once (module docstring): a row is visible when
    its (stage, shard, attempt_id) is the latest ledger row of that stage and shard and that row is
    `done`. Parameters %(d)s, and %(v)s unless across_vocabularies (then the vocabulary version is part
    of the key). `stage` is the row's stage column, or a literal for tables that hold one stage
    (`'text'`); `narrow` adds conditions on the ledger scan, e.g. "AND stage = %(stage)s"."""
    key = "vocabulary_version, stage, shard" if across_vocabularies else "stage, shard"
    row = f"vocabulary_version, {stage}, shard" if across_vocabularies else f"{stage}, shard"
    version = "" if across_vocabularies else " AND vocabulary_version = %(v)s"
    return f"""({row}, attempt_id) IN (
        SELECT {key}, argMax(attempt_id, seq) FROM {{db}}.shard_ledger
        WHERE dataset = %(d)s{version} {narrow}
        GROUP BY {key} HAVING argMax(state, seq) = 'done')"""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class CountStore:
    def __init__(self, backend):
        self.backend = backend
        self.db = backend.database

    @property
    def location(self) -> str:
        return self.backend.location

    def close(self) -> None:
        self.backend.close()

    def _sql(self, template: str) -> str:
        return template.replace("{db}", self.db)

    def execute(self, template: str, **params) -> list[tuple]:
        return self.backend.execute(self._sql(template), params)

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
        self.backend.insert(f"{self.db}.{table}", columns, rows)

    # --- schema -------------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply the migrations not yet applied; return their versions."""
        self.backend.execute(f"CREATE DATABASE IF NOT EXISTS {self.db}")
        self.execute("""CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
            version UInt32, name String, applied_at_ms UInt64) ENGINE = ReplacingMergeTree() ORDER BY version""")
        applied = {row[0] for row in self.execute("SELECT version FROM {db}.schema_migrations")}
        done = []
        for migration in MIGRATIONS:
            if migration.version in applied:
                continue
            for statement in migration.statements:
                self.execute(statement)
            self.insert("schema_migrations", ["version", "name", "applied_at_ms"], [(migration.version, migration.name, _now_ms())])
            done.append(migration.version)
        return done

    def schema_version(self) -> int:
        (version,), = self.execute("SELECT max(version) FROM {db}.schema_migrations")
        return int(version)

    # --- vocabularies ---------------------------------------------------------------------------

    def save_vocabulary(self, vocabulary: Vocabulary) -> str:
        version = vocabulary.version
        if not self.execute("SELECT count() FROM {db}.vocabularies WHERE version = %(v)s", v=version)[0][0]:
            self.insert("concepts", ["vocabulary_version", "concept_id", "name", "aliases", "sources"],
                        [(version, c.id, c.name, list(c.aliases), list(c.sources)) for c in vocabulary])
            self.insert("vocabularies", ["version", "name", "body", "created_at_ms"],
                        [(version, vocabulary.name, json.dumps(vocabulary.to_json(), ensure_ascii=False), _now_ms())])
        return version

    def load_vocabulary(self, version: str) -> Vocabulary | None:
        rows = self.execute("SELECT body FROM {db}.vocabularies WHERE version = %(v)s LIMIT 1", v=version)
        return parse_json(rows[0][0]) if rows else None

    def vocabulary_versions(self, dataset: str) -> list[str]:
        """Vocabulary versions with done shards for a dataset, most recently written first."""
        rows = self.execute("""SELECT vocabulary_version, max(seq) AS last FROM {db}.shard_ledger
            WHERE dataset = %(d)s AND state = 'done' GROUP BY vocabulary_version ORDER BY last DESC""", d=dataset)
        return [r[0] for r in rows]

    # --- ledger ---------------------------------------------------------------------------------

    def record_state(self, dataset: str, vocabulary_version: str, shard: str, stage: str, state: str, *,
                     attempt_id: str = "", samples: int = 0, skip_reasons: dict[str, int] | None = None,
                     notes: dict[str, int] | None = None, reason: str = "") -> None:
        self.insert("shard_ledger", _LEDGER_COLUMNS, [_ledger_row(
            dataset, vocabulary_version, shard, stage, state, time.time_ns(), attempt_id=attempt_id, samples=samples,
            skip_reasons=skip_reasons, notes=notes, reason=reason)])

    def announce(self, dataset: str, vocabulary_version: str, shards: Sequence[str], stages: Sequence[str] = (TEXT,)) -> int:
        """Record shards as pending; shards the ledger already knows keep their state. Returns how many were new."""
        known = {(s.stage, s.shard) for s in self.shard_states(dataset, vocabulary_version)}
        now = time.time_ns()
        rows = [_ledger_row(dataset, vocabulary_version, shard, stage, PENDING, now)
                for stage in stages for shard in shards if (stage, shard) not in known]
        self.insert("shard_ledger", _LEDGER_COLUMNS, rows)
        return len(rows)

    def shard_states(self, dataset: str, vocabulary_version: str | None = None) -> list[ShardState]:
        rows = self.execute("""SELECT vocabulary_version, shard, stage, argMax(state, seq), argMax(attempt_id, seq),
                argMax(samples, seq), argMax(skipped, seq), argMax(skip_reason_names, seq),
                argMax(skip_reason_counts, seq), argMax(reason, seq), max(updated_at_ms)
            FROM {db}.shard_ledger
            WHERE dataset = %(d)s AND (%(all)s = 1 OR vocabulary_version = %(v)s)
            GROUP BY vocabulary_version, stage, shard ORDER BY vocabulary_version, stage, shard""",
                            d=dataset, v=vocabulary_version or "", all=int(vocabulary_version is None))
        states = []
        for version, shard, stage, state, attempt, samples, skipped, names, counts, reason, updated in rows:
            reasons = dict(zip(names, (int(c) for c in counts)))
            notes = {k[5:]: v for k, v in reasons.items() if k.startswith("note:")}
            skips = {k: v for k, v in reasons.items() if not k.startswith("note:")}
            states.append(ShardState(dataset, version, shard, stage, state, attempt, int(samples), int(skipped),
                                     skips, notes, reason, int(updated)))
        return states

    def datasets(self) -> list[DatasetSummary]:
        rows = self.execute("""SELECT dataset, vocabulary_version, stage, state, count(), sum(samples) FROM (
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

    # --- writes ---------------------------------------------------------------------------------

    def write_shard(self, result: ShardResult) -> None:
        """Make `result` the visible rows of its shard and stage. Safe to repeat; see module docstring."""
        if result.stage == TEXT:
            self.insert("text_hits", ["dataset", "vocabulary_version", "shard", "attempt_id", "sample_key", "concept_ids"],
                        ((result.dataset, result.vocabulary_version, result.shard, result.attempt_id, key, concepts)
                         for key, concepts in result.hits))
        self.insert("shard_counts", ["dataset", "vocabulary_version", "shard", "stage", "attempt_id", "kind", "rule", "concept_id", "count"],
                    ((result.dataset, result.vocabulary_version, result.shard, result.stage, result.attempt_id,
                      result.stage, result.rule, concept, count)
                     for concept, count in sorted(result.counts.items())))
        self.record_state(result.dataset, result.vocabulary_version, result.shard, result.stage, DONE,
                          attempt_id=result.attempt_id, samples=result.samples, skip_reasons=result.skipped, notes=result.notes)

    def fail_shard(self, dataset: str, vocabulary_version: str, shard: str, stage: str, reason: str) -> None:
        self.record_state(dataset, vocabulary_version, shard, stage, FAILED, reason=reason)

    # --- queries --------------------------------------------------------------------------------

    _VISIBLE = visible()

    def rules(self, dataset: str, vocabulary_version: str) -> dict[str, dict[str, int]]:
        """{kind: {rule: shards}} of the visible counts: which rules each kind was counted under."""
        rows = self.execute(f"""SELECT kind, rule, uniqExact(shard) FROM {{db}}.shard_counts
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND {self._VISIBLE} GROUP BY kind, rule""",
                            d=dataset, v=vocabulary_version)
        out: dict[str, dict[str, int]] = {}
        for kind, rule, shards in rows:
            out.setdefault(kind, {})[rule] = int(shards)
        return out

    def default_rules(self, dataset: str, vocabulary_version: str) -> dict[str, str]:
        """The rule each kind is read under unless one is asked for; see core.counting.choose_rule.
        Image and matched counts go by the dataset's active tagging rule, when one was recorded."""
        chosen = {kind: choose_rule(kind, rules) for kind, rules in self.rules(dataset, vocabulary_version).items()}
        active = self.active_rule(dataset, vocabulary_version)
        if active:
            # Even where the active rule has no hits yet: falling back to another rule would pass its
            # counts off as the active rule's.
            chosen.update({IMAGE: active, MATCHED: active})
        return chosen

    def read_rules(self, dataset: str, vocabulary_version: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
        """The rule each kind is read under: the default rules, with `overrides` on top."""
        return {**self.default_rules(dataset, vocabulary_version), **(overrides or {})}

    def frequencies(self, dataset: str, vocabulary_version: str, concept_ids: Sequence[int] | None = None,
                    rules: dict[str, str] | None = None) -> dict[int, dict[str, int]]:
        """{concept id: {kind: samples}} over the done shards, each kind under one rule (`rules`,
        else the default rules); concepts never hit are absent. Counts under different rules
        (a threshold before and after `retag`, the paper's methods) are never added together."""
        return self.counts_under(dataset, vocabulary_version, self.read_rules(dataset, vocabulary_version, rules), concept_ids)

    def counts_under(self, dataset: str, vocabulary_version: str, rules: dict[str, str],
                     concept_ids: Sequence[int] | None = None) -> dict[int, dict[str, int]]:
        """`frequencies` for rules already chosen with read_rules (a caller that also shows them)."""
        if not rules:
            return {}
        only = "AND concept_id IN %(ids)s" if concept_ids else ""
        rows = self.execute(f"""SELECT concept_id, kind, sum(count) FROM {{db}}.shard_counts
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s {only} AND (kind, rule) IN %(rules)s AND {self._VISIBLE}
            GROUP BY concept_id, kind""", d=dataset, v=vocabulary_version, ids=tuple(concept_ids or ()),
                            rules=tuple(rules.items()))
        out: dict[int, dict[str, int]] = {}
        for concept, kind, count in rows:
            out.setdefault(int(concept), dict.fromkeys(KINDS, 0))[kind] = int(count)
        return out

    def done_shards(self, dataset: str, vocabulary_version: str, stage: str = TEXT) -> tuple[int, int]:
        """(shards, samples) of a stage's done shards."""
        (shards, samples), = self.execute("""SELECT count(), sum(samples) FROM (
            SELECT argMax(samples, seq) AS samples, argMax(state, seq) AS state FROM {db}.shard_ledger
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND stage = %(s)s GROUP BY shard) WHERE state = 'done'""",
                                          d=dataset, v=vocabulary_version, s=stage)
        return int(shards), int(samples or 0)

    def samples_counted(self, dataset: str, vocabulary_version: str, stage: str = TEXT) -> int:
        return self.done_shards(dataset, vocabulary_version, stage)[1]

    def text_hits(self, dataset: str, vocabulary_version: str, shard: str) -> dict[str, list[int]]:
        """Visible per-sample text hits of one shard."""
        rows = self.execute(f"""SELECT sample_key, concept_ids FROM {{db}}.text_hits
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND shard = %(s)s
              AND {visible(stage="'text'", narrow="AND shard = %(s)s")}
            ORDER BY sample_key""", d=dataset, v=vocabulary_version, s=shard)
        return {key: [int(c) for c in concepts] for key, concepts in rows}


    # --- pipeline: announced events, per-shard stage attempts, concept totals (the counter) -------

    def record_events(self, dataset: str, vocabulary_version: str, events: Sequence[tuple[str, bytes]]) -> None:
        """Keep the serialized ShardEvent of each (shard, event) pair; the latest per shard wins."""
        now = time.time_ns()
        self.insert("shard_events", ["dataset", "vocabulary_version", "shard", "event", "seq"],
                    [(dataset, vocabulary_version, shard, base64.b64encode(event).decode(), now) for shard, event in events])

    def announced_events(self, dataset: str, vocabulary_version: str) -> dict[str, bytes]:
        """{shard: serialized ShardEvent} as last announced."""
        rows = self.execute("""SELECT shard, argMax(event, seq) FROM {db}.shard_events
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s GROUP BY shard""", d=dataset, v=vocabulary_version)
        return {shard: base64.b64decode(event) for shard, event in rows}

    def stage_attempts(self, dataset: str, vocabulary_version: str, shards: Sequence[str]) -> dict[str, dict[str, tuple[str, str, int]]]:
        """{shard: {stage: (state, attempt_id, samples)}}, the ledger's latest row per stage of these shards only."""
        if not shards:
            return {}
        rows = self.execute("""SELECT shard, stage, argMax(state, seq), argMax(attempt_id, seq), argMax(samples, seq)
            FROM {db}.shard_ledger WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND shard IN %(s)s
            GROUP BY shard, stage""", d=dataset, v=vocabulary_version, s=tuple(shards))
        out: dict[str, dict[str, tuple[str, str, int]]] = {}
        for shard, stage, state, attempt, samples in rows:
            out.setdefault(shard, {})[stage] = (state, attempt, int(samples))
        return out

    def record_states(self, dataset: str, vocabulary_version: str, stage: str, state: str,
                      shards: Sequence[tuple[str, str, int]], reason: str = "") -> None:
        """One ledger row per (shard, attempt_id, samples), in one insert: ClickHouse wants few, big inserts."""
        now = time.time_ns()
        self.insert("shard_ledger", _LEDGER_COLUMNS, [_ledger_row(dataset, vocabulary_version, shard, stage, state, now, attempt_id=attempt,
                                                                  samples=samples, reason=reason) for shard, attempt, samples in shards])

    def refresh_totals(self, dataset: str, vocabulary_version: str) -> str:
        """Recompute the per-concept totals from the visible shard counts under a new snapshot,
        then make it the latest (see migration 11); returns the snapshot id."""
        snapshot = uuid.uuid4().hex
        # Taken before reading, so that of two concurrent refreshes the one that read later wins.
        seq = time.time_ns()
        shards, samples = self.done_shards(dataset, vocabulary_version, TEXT)
        # Each kind under its default rule, as `frequencies` reads it: counts of two rules never add up.
        rules = tuple(self.default_rules(dataset, vocabulary_version).items())
        if rules:
            self.execute(f"""INSERT INTO {{db}}.concept_totals (dataset, vocabulary_version, snapshot, kind, concept_id, count)
                SELECT %(d)s, %(v)s, %(snap)s, kind, concept_id, sum(count) FROM {{db}}.shard_counts
                WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND (kind, rule) IN %(rules)s AND {self._VISIBLE}
                GROUP BY kind, concept_id""", d=dataset, v=vocabulary_version, snap=snapshot, rules=rules)
        self.insert("totals_snapshots", ["dataset", "vocabulary_version", "snapshot", "seq", "shards", "samples", "computed_at_ms"],
                    [(dataset, vocabulary_version, snapshot, seq, shards, samples, seq // 1_000_000)])
        return snapshot

    def totals_snapshot(self, dataset: str, vocabulary_version: str) -> tuple[str, int, int, int] | None:
        """(snapshot, text shards done, samples, computed_at_ms) of the latest totals, or None."""
        rows = self.execute("""SELECT argMax(snapshot, seq), argMax(shards, seq), argMax(samples, seq), max(computed_at_ms)
            FROM {db}.totals_snapshots WHERE dataset = %(d)s AND vocabulary_version = %(v)s HAVING count() > 0""",
                            d=dataset, v=vocabulary_version)
        return (rows[0][0], int(rows[0][1]), int(rows[0][2]), int(rows[0][3])) if rows else None

    def concept_totals(self, dataset: str, vocabulary_version: str) -> dict[int, dict[str, int]]:
        """{concept id: {kind: samples}} from the latest totals snapshot; same shape as frequencies()."""
        latest = self.totals_snapshot(dataset, vocabulary_version)
        if latest is None:
            return {}
        rows = self.execute("""SELECT concept_id, kind, count FROM {db}.concept_totals
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND snapshot = %(snap)s""",
                            d=dataset, v=vocabulary_version, snap=latest[0])
        out: dict[int, dict[str, int]] = {}
        for concept, kind, count in rows:
            out.setdefault(int(concept), dict.fromkeys(KINDS, 0))[kind] = int(count)
        return out

    def prune_totals(self, dataset: str, vocabulary_version: str, keep: int = 2) -> int:
        """Delete the rows of superseded snapshots but the `keep` latest (a reader may still be on
        the one before the latest). A mutation: call it now and then, not on every refresh."""
        old = [r[0] for r in self.execute("""SELECT snapshot FROM {db}.totals_snapshots
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s ORDER BY seq DESC LIMIT %(keep)s, 1000""",
                                          d=dataset, v=vocabulary_version, keep=keep)]
        if old:
            self.execute("""ALTER TABLE {db}.concept_totals DELETE
                WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND snapshot IN %(old)s""",
                         d=dataset, v=vocabulary_version, old=tuple(old))
            self.execute("""ALTER TABLE {db}.totals_snapshots DELETE
                WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND snapshot IN %(old)s""",
                         d=dataset, v=vocabulary_version, old=tuple(old))
        return len(old)

    # --- tagging rules (issue 4; the rest of the image side is in conceptfreq/tagger/records.py) ----

    def tagging_rules(self, dataset: str, vocabulary_version: str) -> list[str]:
        """The tagging rules recorded for a dataset (by the tagger or `retag`), the active one first."""
        rows = self.execute("""SELECT rule, max(seq) AS last FROM {db}.tagging_rules
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s GROUP BY rule ORDER BY last DESC""",
                            d=dataset, v=vocabulary_version)
        return [r[0] for r in rows]

    def active_rule(self, dataset: str, vocabulary_version: str) -> str | None:
        """The latest tagging rule recorded for a dataset: what image and matched counts are read
        under by default. None when none was (text-only or imported counts)."""
        rules = self.tagging_rules(dataset, vocabulary_version)
        return rules[0] if rules else None


_LEDGER_COLUMNS = ["dataset", "vocabulary_version", "shard", "stage", "state", "attempt_id", "samples", "skipped",
                   "skip_reason_names", "skip_reason_counts", "reason", "seq", "updated_at_ms"]


def _ledger_row(dataset: str, vocabulary_version: str, shard: str, stage: str, state: str, seq: int, *, attempt_id: str = "",
                samples: int = 0, skip_reasons: dict[str, int] | None = None, notes: dict[str, int] | None = None,
                reason: str = "") -> tuple:
    """One shard_ledger row in _LEDGER_COLUMNS order. Notes (counted, yet the sample was used) share the
    skip-reason arrays under a `note:` prefix; shard_states splits them apart again."""
    skip_reasons, notes = skip_reasons or {}, notes or {}
    return (dataset, vocabulary_version, shard, stage, state, attempt_id, samples, sum(skip_reasons.values()),
            list(skip_reasons) + [f"note:{n}" for n in notes], list(skip_reasons.values()) + list(notes.values()),
            reason, seq, seq // 1_000_000)
