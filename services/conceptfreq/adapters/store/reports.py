"""Counts as the reporter reads them: one (kind, rule) of a dataset across every vocabulary version
it was counted with (a dataset imported from the paper has one vocabulary per downstream set), and
concept names and sources to join them with results."""

from __future__ import annotations

from typing import Sequence

from conceptfreq.adapters.store.ledger import visible
from conceptfreq.adapters.store.tables import Tables

_VISIBLE_KIND = "dataset = %(d)s AND kind = %(k)s AND " + visible(across_vocabularies=True)
_VISIBLE = _VISIBLE_KIND + " AND rule = %(r)s"


class ReportTables(Tables):
    def rules_across_vocabularies(self, dataset: str, kind: str) -> dict[str, int]:
        """{rule: shards} of a kind's visible counts over every vocabulary version."""
        rows = self._execute(f"""SELECT rule, uniqExact(vocabulary_version, shard) FROM {{db}}.shard_concept_counts
            WHERE {_VISIBLE_KIND} GROUP BY rule ORDER BY rule""", d=dataset, k=kind)
        return {rule: int(shards) for rule, shards in rows}

    def latest_tagging_rule(self, dataset: str) -> str | None:
        """The active tagging rule of the dataset's most recently recorded vocabulary version."""
        rows = self._execute("""SELECT argMax(rule, seq) FROM {db}.tagging_rules WHERE dataset = %(d)s HAVING count() > 0""",
                             d=dataset)
        return rows[0][0] if rows else None

    def counts_across_vocabularies(self, dataset: str, kind: str, rule: str,
                                   excluded_shard_prefix: str) -> tuple[dict[tuple[str, int], int], set[str]]:
        """{(vocabulary version, concept id): count}, and the versions counted by whole-vocabulary
        shards, i.e. whose shard names do not start with `excluded_shard_prefix` (there a missing
        concept means 0, not "not counted")."""
        params = {"d": dataset, "k": kind, "r": rule}
        rows = self._execute(f"""SELECT vocabulary_version, concept_id, sum(count) FROM {{db}}.shard_concept_counts
            WHERE {_VISIBLE} GROUP BY vocabulary_version, concept_id""", **params)
        full = self._execute(f"""SELECT DISTINCT vocabulary_version FROM {{db}}.shard_concept_counts
            WHERE {_VISIBLE} AND shard NOT LIKE %(pattern)s""", **params,
                             pattern=excluded_shard_prefix.replace("%", "\\%") + "%")
        return {(v, int(c)): int(n) for v, c, n in rows}, {r[0] for r in full}

    def concept_names(self, versions: Sequence[str]) -> list[tuple[str, int, str, list[str]]]:
        """(vocabulary version, concept id, name, sources) of every concept of these versions."""
        if not versions:
            return []
        rows = self._execute("""SELECT vocabulary_version, concept_id, name, sources FROM {db}.concepts
            WHERE vocabulary_version IN %(vs)s""", vs=tuple(versions))
        return [(v, int(c), name, list(sources)) for v, c, name, sources in rows]

    def concepts_from(self, eval_datasets: Sequence[str]) -> set[str]:
        """Names of the concepts any vocabulary takes from these downstream sets."""
        rows = self._execute("""SELECT DISTINCT name FROM {db}.concepts WHERE hasAny(sources, %(ds)s)""", ds=list(eval_datasets))
        return {r[0] for r in rows}
