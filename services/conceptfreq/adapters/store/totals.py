"""Per-concept totals that the counter maintains (migration 11).

A total is never incremented: each refresh aggregates the visible shard counts into rows under a
new `snapshot`, then appends the snapshot to totals_snapshots; readers take the latest snapshot.
So totals inherit the ledger's exactly-once effect whatever is redelivered or replayed, a crash
mid-refresh leaves only an invisible snapshot, and a concept whose count fell to zero (a shard
rewritten) cannot linger. Superseded snapshots are deleted now and then (`prune_totals`)."""

from __future__ import annotations

import uuid

from conceptfreq.adapters.store.counts import _VISIBLE, CountTables
from conceptfreq.adapters.store.tables import now_seq
from conceptfreq.core.counting import KINDS, TEXT


class TotalTables(CountTables):
    def refresh_totals(self, dataset: str, vocabulary_version: str) -> str:
        """Recompute the totals from the visible shard counts under a new snapshot, then make it the
        latest; returns the snapshot id. Each kind under its default rule, as `frequencies` reads it:
        counts of two rules never add up."""
        rules = self.read_rules(dataset, vocabulary_version)
        snapshot = uuid.uuid4().hex
        # Taken before reading, so that of two concurrent refreshes the one that read later wins.
        seq = now_seq()
        shards, samples = self.done_shards(dataset, vocabulary_version, TEXT)
        if rules:
            self._execute(f"""INSERT INTO {{db}}.concept_totals (dataset, vocabulary_version, snapshot, kind, concept_id, count)
                SELECT %(d)s, %(v)s, %(snap)s, kind, concept_id, sum(count) FROM {{db}}.shard_counts
                WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND (kind, rule) IN %(rules)s AND {_VISIBLE}
                GROUP BY kind, concept_id""", d=dataset, v=vocabulary_version, snap=snapshot, rules=tuple(rules.items()))
        self._insert("totals_snapshots", ["dataset", "vocabulary_version", "snapshot", "seq", "shards", "samples", "computed_at_ms"],
                     [(dataset, vocabulary_version, snapshot, seq, shards, samples, seq // 1_000_000)])
        return snapshot

    def totals_snapshot(self, dataset: str, vocabulary_version: str) -> tuple[str, int, int, int] | None:
        """(snapshot, text shards done, samples, computed_at_ms) of the latest totals, or None."""
        rows = self._execute("""SELECT argMax(snapshot, seq), argMax(shards, seq), argMax(samples, seq), max(computed_at_ms)
            FROM {db}.totals_snapshots WHERE dataset = %(d)s AND vocabulary_version = %(v)s HAVING count() > 0""",
                             d=dataset, v=vocabulary_version)
        return (rows[0][0], int(rows[0][1]), int(rows[0][2]), int(rows[0][3])) if rows else None

    def concept_totals(self, dataset: str, vocabulary_version: str) -> dict[int, dict[str, int]]:
        """{concept id: {kind: samples}} from the latest totals snapshot; same shape as frequencies()."""
        latest = self.totals_snapshot(dataset, vocabulary_version)
        if latest is None:
            return {}
        rows = self._execute("""SELECT concept_id, kind, count FROM {db}.concept_totals
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND snapshot = %(snap)s""",
                             d=dataset, v=vocabulary_version, snap=latest[0])
        out: dict[int, dict[str, int]] = {}
        for concept, kind, count in rows:
            out.setdefault(int(concept), dict.fromkeys(KINDS, 0))[kind] = int(count)
        return out

    def prune_totals(self, dataset: str, vocabulary_version: str, keep: int = 2) -> int:
        """Delete the rows of superseded snapshots but the `keep` latest (a reader may still be on
        the one before the latest). A mutation: call it now and then, not on every refresh."""
        old = [r[0] for r in self._execute("""SELECT snapshot FROM {db}.totals_snapshots
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s ORDER BY seq DESC LIMIT %(keep)s, 1000""",
                                           d=dataset, v=vocabulary_version, keep=keep)]
        if old:
            for table in ("concept_totals", "totals_snapshots"):
                self._execute(f"""ALTER TABLE {{db}}.{table} DELETE
                    WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND snapshot IN %(old)s""",
                              d=dataset, v=vocabulary_version, old=tuple(old))
        return len(old)
