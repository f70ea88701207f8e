"""Evaluations: their plans and per-shard class counts (migrations 200-201).

Idempotence is the ledger's (ledger.py, `eval_ledger`): a shard's class counts are inserted under a
fresh attempt_id, then a ledger entry marks that attempt done; only the latest done attempt of each
shard is summed. So a redelivered eval-shard event, a crash between the two inserts, or two pods
racing on one shard never count a sample twice, and an evaluation's totals are the sum over its
shards however it was split.

The plan itself is the evaluator's (`EvalSpec`); the store keeps it as JSON with the columns that
listing filters on, so the store needs no evaluator code."""

from __future__ import annotations

import uuid
from typing import Protocol, Sequence

import numpy as np

from conceptfreq.adapters.store.ledger import EVAL_LEDGER, LedgerEntry, LedgerTables, visible_attempts
from conceptfreq.adapters.store.tables import now_seq
from conceptfreq.core.counting import DONE, FAILED, PENDING, RUNNING
from conceptfreq.core.evaluation import ClassTally


class EvaluationPlan(Protocol):
    evaluation_id: str
    task: str
    model: str
    pretrained_label: str
    precision: str
    eval_dataset: str
    data: str
    vocabulary_version: str
    shards: Sequence[str]
    created_at_ms: int

    @property
    def prompt_mode(self) -> str: ...

    def to_json(self) -> str: ...


class EvaluationTables(LedgerTables):
    def save_evaluation(self, plan: EvaluationPlan) -> None:
        self._insert("evaluations", ["evaluation_id", "task", "model", "pretrained", "precision", "prompts", "eval_dataset",
                                     "data", "vocabulary_version", "shards", "spec", "created_at_ms", "seq"],
                     [(plan.evaluation_id, plan.task, plan.model, plan.pretrained_label, plan.precision, plan.prompt_mode,
                       plan.eval_dataset, plan.data, plan.vocabulary_version, len(plan.shards), plan.to_json(),
                       plan.created_at_ms, now_seq())])

    def evaluation_plan(self, evaluation_id: str) -> str | None:
        """The plan's JSON as last saved."""
        rows = self._execute("""SELECT argMax(spec, seq) FROM {db}.evaluations WHERE evaluation_id = %(e)s
            GROUP BY evaluation_id""", e=evaluation_id)
        return rows[0][0] if rows else None

    def evaluation_plans(self, model: str = "", eval_dataset: str = "") -> list[str]:
        """Plans' JSON, newest first, optionally of one model and eval set."""
        rows = self._execute("""SELECT argMax(spec, seq), max(created_at_ms) AS created FROM {db}.evaluations
            WHERE (%(m)s = '' OR model = %(m)s) AND (%(d)s = '' OR eval_dataset = %(d)s)
            GROUP BY evaluation_id ORDER BY created DESC""", m=model, d=eval_dataset)
        return [r[0] for r in rows]

    def announce_evaluation(self, evaluation_id: str, shards: Sequence[str]) -> None:
        """Record the shards that have no ledger entry yet as pending, so progress counts them."""
        known = set(self.evaluation_progress(evaluation_id, shards).states)
        self.record_evaluation_states(evaluation_id, [LedgerEntry(shard, PENDING) for shard in shards if shard not in known])

    def evaluation_shard_running(self, evaluation_id: str, shard: str) -> None:
        self.record_evaluation_states(evaluation_id, [LedgerEntry(shard, RUNNING)])

    def fail_evaluation_shard(self, evaluation_id: str, shard: str, reason: str) -> None:
        self.record_evaluation_states(evaluation_id, [LedgerEntry(shard, FAILED, reason=reason)])

    def write_evaluation_shard(self, evaluation_id: str, shard: str, concept_ids: Sequence[int | None], counts: ClassTally,
                               model_id: str) -> str:
        """Make `counts` the visible class counts of `shard`; returns the attempt id. Safe to repeat."""
        attempt = uuid.uuid4().hex
        concepts = [-1 if c is None else int(c) for c in concept_ids] or [-1] * len(counts.total)
        nonzero = np.flatnonzero(counts.total)
        self._insert("eval_shard_counts", ["evaluation_id", "shard", "attempt_id", "class_index", "concept_id",
                                           "correct_top1", "correct_top5", "total"],
                     [(evaluation_id, shard, attempt, int(i), concepts[i], int(counts.correct_top1[i]),
                       int(counts.correct_top5[i]), int(counts.total[i])) for i in nonzero])
        self.record_evaluation_states(evaluation_id, [LedgerEntry(shard, DONE, attempt, counts.samples, dict(counts.skipped),
                                                                  model_id=model_id)])
        return attempt

    def evaluation_totals(self, evaluation_id: str, shards: Sequence[str], classes: int) -> ClassTally:
        """Class counts summed over the shards' latest done attempts."""
        counts = ClassTally.zeros(classes)
        rows = self._execute(f"""SELECT class_index, sum(correct_top1), sum(correct_top5), sum(total)
            FROM {{db}}.eval_shard_counts WHERE evaluation_id = %(e)s
              AND {visible_attempts(EVAL_LEDGER, "shard", "evaluation_id = %(e)s")}
            GROUP BY class_index""", e=evaluation_id)
        for index, top1, top5, total in rows:
            if index < len(counts.total):
                counts.correct_top1[index], counts.correct_top5[index], counts.total[index] = top1, top5, total
        counts.skipped = self.evaluation_progress(evaluation_id, shards).skipped
        return counts
