"""The count store: one set of SQL over either backend (ClickHouse server or embedded chDB).

`CountStore` is every table family at once, each in its own module of this package (the only place
with SQL): the ledger (ledger.py), vocabularies and per-shard counts (counts.py), the image side
(images.py), evaluations (evaluations.py), results (results.py), totals (totals.py) and the
reporter's reads (reports.py). How a write becomes visible exactly once is in ledger.py."""

from __future__ import annotations

from typing import Sequence

from conceptfreq.adapters.store.evaluations import EvaluationTables
from conceptfreq.adapters.store.images import ImageTables
from conceptfreq.adapters.store.migrations import MIGRATIONS, added_column
from conceptfreq.adapters.store.reports import ReportTables
from conceptfreq.adapters.store.results import ResultTables
from conceptfreq.adapters.store.tables import now_seq
from conceptfreq.adapters.store.totals import TotalTables
from conceptfreq.core.rules import RuleFacts, resolve_rules


class CountStore(ImageTables, TotalTables, EvaluationTables, ResultTables, ReportTables):
    # --- schema -----------------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply the migrations not yet applied; return their versions."""
        self.backend.execute(f"CREATE DATABASE IF NOT EXISTS {self.db}")
        self._execute("""CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
            version UInt32, name String, applied_at_ms UInt64) ENGINE = ReplacingMergeTree() ORDER BY version""")
        applied = {row[0] for row in self._execute("SELECT version FROM {db}.schema_migrations")}
        done = []
        for migration in MIGRATIONS:
            if migration.version in applied:
                continue
            for statement in migration.statements:
                if added_column(statement) and self._has_column(*added_column(statement)):
                    continue  # added before the migration was recorded (a crash, or another replica)
                self._execute(statement)
            self._insert("schema_migrations", ["version", "name", "applied_at_ms"],
                         [(migration.version, migration.name, now_seq() // 1_000_000)])
            done.append(migration.version)
        return done

    def _has_column(self, table: str, column: str) -> bool:
        return bool(self._execute("SELECT count() FROM system.columns WHERE database = %(d)s AND table = %(t)s AND name = %(c)s",
                                  d=self.db, t=table, c=column)[0][0])

    def sync_replicas(self) -> None:
        """Wait until this server's replicated tables hold what the other replicas wrote (replication
        is asynchronous): before comparing replicas, or reading one that just came back."""
        for (table,) in self._execute("""SELECT name FROM system.tables WHERE database = %(d)s AND engine LIKE 'Replicated%%'""",
                                      d=self.db):
            self._execute(f"SYSTEM SYNC REPLICA {{db}}.{table}")

    def check_schema(self) -> None:
        """Raise a one-line error unless every migration of this code has been applied."""
        from conceptfreq.errors import UnavailableError

        latest = max(m.version for m in MIGRATIONS)
        try:
            version = self.schema_version()
        except UnavailableError:
            raise
        except Exception:  # noqa: BLE001 - the server says the table is missing; only how it says so differs
            version = 0
        if version < latest:
            raise UnavailableError(f"the store at {self.location} has schema version {version}, this code needs {latest}: "
                                   "run `conceptfreq migrate` (or the chart's migration job) with write access")

    def schema_version(self) -> int:
        (version,), = self._execute("SELECT max(version) FROM {db}.schema_migrations")
        return int(version)

    # --- which rule each kind is read under (core/rules.py) -------------------------------------------

    def rule_facts(self, dataset: str, vocabulary_version: str) -> RuleFacts:
        return RuleFacts(self.rules(dataset, vocabulary_version), self.active_rule(dataset, vocabulary_version))

    def report_rule_facts(self, dataset: str, kind: str) -> RuleFacts:
        """The same facts over every vocabulary version of the dataset, as the reporter reads counts."""
        return RuleFacts({kind: self.rules_across_vocabularies(dataset, kind)}, self.latest_tagging_rule(dataset))

    def read_rules(self, dataset: str, vocabulary_version: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
        """The rule each kind is read under by default, with `overrides` asked for."""
        return resolve_rules(self.rule_facts(dataset, vocabulary_version), overrides)

    def frequencies(self, dataset: str, vocabulary_version: str, concept_ids: Sequence[int] | None = None,
                    rules: dict[str, str] | None = None) -> dict[int, dict[str, int]]:
        """{concept id: {kind: samples}} over the done shards, each kind under one rule (`rules`,
        else the default rules); concepts never hit are absent. Counts under different rules
        (a threshold before and after `retag`, the paper's methods) are never added together."""
        return self.counts_under(dataset, vocabulary_version, self.read_rules(dataset, vocabulary_version, rules), concept_ids)
