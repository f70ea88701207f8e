"""Vocabularies, text hits and per-shard counts: what the text stage writes and frequency reads use.

Per-shard counts (`shard_concept_counts`) hold every kind: the text stage's, the tagger's under each tagging
rule (images.py) and the counter's matched counts. Readers see them through the ledger (ledger.py)
and read each kind under one rule (core/rules.py)."""

from __future__ import annotations

import json
from typing import Mapping, Sequence

import numpy as np

from conceptfreq.adapters.store.backends import ArrayColumn, RepeatedColumn
from conceptfreq.adapters.store.ledger import LedgerTables, visible
from conceptfreq.adapters.store.tables import now_seq
from conceptfreq.core.counting import KINDS, TEXT, SampleHits, ShardResult
from conceptfreq.core.vocabulary import Vocabulary, parse_json

COUNT_COLUMNS = ["dataset", "vocabulary_version", "shard", "stage", "attempt_id", "kind", "rule", "concept_id", "count"]
_VISIBLE = visible()


def concept_count_columns(runs: Sequence[tuple[tuple[str, ...], Mapping[int, int]]], scope: Sequence[str], count_type) -> dict | None:
    """Rows of per-concept counts as columns for one insert: each (scope values, {concept id:
    count}) a run of rows in concept order, the scope columns as RepeatedColumns, then `concept_id`
    and `count`; None when there are no rows."""
    scopes: list[tuple[str, ...]] = []
    lengths: list[int] = []
    ids: list[int] = []
    counts: list[int] = []
    for values, of_scope in runs:
        if of_scope:
            ordered = sorted(of_scope.items())
            scopes.append(values)
            lengths.append(len(ordered))
            ids += [concept for concept, _ in ordered]
            counts += [count for _, count in ordered]
    if not ids:
        return None
    columns = {name: RepeatedColumn(list(values), lengths) for name, values in zip(scope, zip(*scopes))}
    return {**columns, "concept_id": np.array(ids, np.uint32), "count": np.array(counts, count_type)}


class CountTables(LedgerTables):
    # --- vocabularies -----------------------------------------------------------------------------

    def save_vocabulary(self, vocabulary: Vocabulary) -> str:
        version = vocabulary.version
        if not self._execute("SELECT count() FROM {db}.vocabularies WHERE version = %(v)s", v=version)[0][0]:
            self._insert("concepts", ["vocabulary_version", "concept_id", "name", "aliases", "sources"],
                         [(version, c.id, c.name, list(c.aliases), list(c.sources)) for c in vocabulary])
            self._insert("vocabularies", ["version", "name", "body", "created_at_ms"],
                         [(version, vocabulary.name, json.dumps(vocabulary.to_json(), ensure_ascii=False), now_seq() // 1_000_000)])
        return version

    def load_vocabulary(self, version: str) -> Vocabulary | None:
        rows = self._execute("SELECT body FROM {db}.vocabularies WHERE version = %(v)s LIMIT 1", v=version)
        return parse_json(rows[0][0]) if rows else None

    # --- writes -----------------------------------------------------------------------------------

    def _write_counts(self, dataset: str, vocabulary_version: str, shard: str, stage: str, attempt_id: str, kind: str,
                      by_rule: Mapping[str, Mapping[int, int]]) -> None:
        """One attempt's per-shard counts, {rule: {concept id: count}}, in one columnar insert."""
        self._write_attempts_counts([((dataset, vocabulary_version, shard, stage, attempt_id, kind), by_rule)])

    def _write_attempts_counts(self, attempts: Sequence[tuple[tuple[str, ...], Mapping[str, Mapping[int, int]]]]) -> None:
        """The per-shard counts of several attempts, each ((dataset, vocabulary version, shard, stage,
        attempt id, kind), {rule: {concept id: count}}), in one columnar insert."""
        runs = [((*key, rule), of_rule) for key, by_rule in attempts for rule, of_rule in by_rule.items()]
        if columns := concept_count_columns(runs, COUNT_COLUMNS[:-2], np.uint64):
            self._insert_columns("shard_concept_counts", columns)

    def write_shard(self, result: ShardResult) -> None:
        """Make `result` the visible rows of its shard and stage. Safe to repeat; see ledger.py."""
        self.write_shards([result])

    def write_shards(self, results: Sequence[ShardResult]) -> None:
        """`write_shard` for several results at once: one insert per table (ClickHouse wants few,
        big inserts), the ledger rows last, so a crash in between leaves only invisible rows."""
        text = [r for r in results if r.stage == TEXT and len(r.hits)]
        if text:
            hits = SampleHits.concat([r.hits for r in text])
            lengths = [len(r.hits) for r in text]
            scope = {column: RepeatedColumn([getattr(r, column) for r in text], lengths)
                     for column in ("dataset", "vocabulary_version", "shard", "attempt_id")}
            self._insert_columns("text_hits", {**scope, "sample_key": hits.sample_keys,
                                               "concept_ids": ArrayColumn(hits.offsets, hits.concepts)})
        self._write_attempts_counts([((r.dataset, r.vocabulary_version, r.shard, r.stage, r.attempt_id, r.stage), {r.rule: r.counts})
                                     for r in results])
        self.record_done(results)

    # --- reads ------------------------------------------------------------------------------------

    def rules(self, dataset: str, vocabulary_version: str) -> dict[str, dict[str, int]]:
        """{kind: {rule: shards}} of the visible counts: which rules each kind was counted under."""
        rows = self._execute(f"""SELECT kind, rule, uniqExact(shard) FROM {{db}}.shard_concept_counts
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND {_VISIBLE} GROUP BY kind, rule""",
                             d=dataset, v=vocabulary_version)
        out: dict[str, dict[str, int]] = {}
        for kind, rule, shards in rows:
            out.setdefault(kind, {})[rule] = int(shards)
        return out

    def counts_under(self, dataset: str, vocabulary_version: str, rules: dict[str, str],
                     concept_ids: Sequence[int] | None = None) -> dict[int, dict[str, int]]:
        """`frequencies` for rules already chosen with read_rules (a caller that also shows them)."""
        if not rules:
            return {}
        only = "AND concept_id IN %(ids)s" if concept_ids else ""
        rows = self._execute(f"""SELECT concept_id, kind, sum(count) FROM {{db}}.shard_concept_counts
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s {only} AND (kind, rule) IN %(rules)s AND {_VISIBLE}
            GROUP BY concept_id, kind""", d=dataset, v=vocabulary_version, ids=tuple(concept_ids or ()),
                             rules=tuple(rules.items()))
        out: dict[int, dict[str, int]] = {}
        for concept, kind, count in rows:
            out.setdefault(int(concept), dict.fromkeys(KINDS, 0))[kind] = int(count)
        return out

    def text_hits(self, dataset: str, vocabulary_version: str, shard: str, attempt_id: str | None = None) -> dict[str, list[int]]:
        """{sample key: concept ids} of one shard's visible text attempt, or of `attempt_id`
        (samples with hits only)."""
        which = "attempt_id = %(a)s" if attempt_id else visible(stage="'text'", narrow="AND shard = %(s)s")
        rows = self._execute(f"""SELECT sample_key, concept_ids FROM {{db}}.text_hits
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND shard = %(s)s AND {which}
            ORDER BY sample_key""", d=dataset, v=vocabulary_version, s=shard, a=attempt_id or "")
        return {key: [int(c) for c in concepts] for key, concepts in rows}
