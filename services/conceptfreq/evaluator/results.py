"""Evaluations in the count store (migrations 200-202, and 100's zero_shot_results).

Idempotence is the shard ledger's (adapters/store/store.py): a shard's class counts are inserted
under a fresh attempt_id, then an eval_ledger row marks that attempt done; only the latest done
attempt of each shard is summed. So a redelivered eval-shard event, a crash between the two
inserts, or two pods racing on one shard never count a sample twice, and an evaluation's totals
are the sum over its shards however it was split.

When every shard is done, the per-class results are published to zero_shot_results (source
'evaluator'), where the reporter reads them beside the paper's imports. Publishing recomputes from
the sums, so doing it twice (two pods finishing together) writes the same rows.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from conceptfreq.adapters.metrics import EVAL_TOP1
from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import DONE, FAILED, PENDING, RUNNING
from conceptfreq.core.evaluation import ClassificationSummary, ClassTally, ConceptRecall, summarize
from conceptfreq.evaluator.plan import EvalSpec

SOURCE = "evaluator"
_LEDGER = ["evaluation_id", "shard", "state", "attempt_id", "model_id", "samples", "skipped", "skip_reason_names",
           "skip_reason_counts", "reason", "seq", "updated_at_ms"]
RESULT_COLUMNS = ["model", "pretrained", "prompts", "eval_dataset", "class_name", "vocabulary_version", "concept_id",
                  "correct", "total", "accuracy", "source", "seq"]


@dataclass
class ShardRow:
    state: str
    attempt_id: str
    model_id: str
    samples: int
    skipped: dict[str, int]
    reason: str


@dataclass
class Progress:
    shards: int
    states: dict[str, ShardRow] = field(default_factory=dict)

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
                for reason, n in row.skipped.items():
                    out[reason] = out.get(reason, 0) + n
        return out

    @property
    def model_ids(self) -> list[str]:
        return sorted({row.model_id for row in self.states.values() if row.state == DONE and row.model_id})

    def failures(self) -> list[tuple[str, str]]:
        return sorted((shard, row.reason) for shard, row in self.states.items() if row.state == FAILED)


def _now() -> tuple[int, int]:
    seq = time.time_ns()
    return seq, seq // 1_000_000


class EvalStore:
    def __init__(self, store: CountStore):
        self.store = store

    # --- evaluations ----------------------------------------------------------------------------

    def save(self, spec: EvalSpec) -> None:
        seq, _ = _now()
        self.store.insert("evaluations", ["evaluation_id", "task", "model", "pretrained", "precision", "prompts", "eval_dataset",
                                          "data", "vocabulary_version", "shards", "spec", "created_at_ms", "seq"],
                          [(spec.evaluation_id, spec.task, spec.model, spec.pretrained_label, spec.precision, spec.prompts.mode,
                            spec.eval_dataset, spec.data, spec.vocabulary_version, len(spec.shards), spec.to_json(),
                            spec.created_at_ms, seq)])

    def spec(self, evaluation_id: str) -> EvalSpec | None:
        rows = self.store.execute("""SELECT argMax(spec, seq) FROM {db}.evaluations WHERE evaluation_id = %(e)s
            GROUP BY evaluation_id""", e=evaluation_id)
        return EvalSpec.from_json(rows[0][0]) if rows else None

    def specs(self, model: str = "", eval_dataset: str = "") -> list[EvalSpec]:
        rows = self.store.execute("""SELECT argMax(spec, seq), max(created_at_ms) AS created FROM {db}.evaluations
            WHERE (%(m)s = '' OR model = %(m)s) AND (%(d)s = '' OR eval_dataset = %(d)s)
            GROUP BY evaluation_id ORDER BY created DESC""", m=model, d=eval_dataset)
        return [EvalSpec.from_json(r[0]) for r in rows]

    # --- shards ---------------------------------------------------------------------------------

    def progress(self, spec: EvalSpec) -> Progress:
        rows = self.store.execute("""SELECT shard, argMax(state, seq), argMax(attempt_id, seq), argMax(model_id, seq),
                argMax(samples, seq), argMax(skip_reason_names, seq), argMax(skip_reason_counts, seq), argMax(reason, seq)
            FROM {db}.eval_ledger WHERE evaluation_id = %(e)s GROUP BY shard""", e=spec.evaluation_id)
        wanted = set(spec.shards)
        states = {shard: ShardRow(state, attempt, model_id, int(samples), dict(zip(names, map(int, counts))), reason)
                  for shard, state, attempt, model_id, samples, names, counts, reason in rows if shard in wanted}
        return Progress(len(spec.shards), states)

    def _ledger(self, spec: EvalSpec, shard: str, state: str, *, attempt_id: str = "", model_id: str = "", samples: int = 0,
                skipped: dict[str, int] | None = None, reason: str = "") -> None:
        skipped = skipped or {}
        seq, ms = _now()
        self.store.insert("eval_ledger", _LEDGER, [(spec.evaluation_id, shard, state, attempt_id, model_id, samples,
                                                    sum(skipped.values()), list(skipped), list(skipped.values()), reason, seq, ms)])

    def announce(self, spec: EvalSpec) -> None:
        """Record the shards that have no ledger row yet as pending, so progress counts them."""
        known = set(self.progress(spec).states)
        seq, ms = _now()
        self.store.insert("eval_ledger", _LEDGER, [(spec.evaluation_id, shard, PENDING, "", "", 0, 0, [], [], "", seq, ms)
                                                   for shard in spec.shards if shard not in known])

    def running(self, spec: EvalSpec, shard: str) -> None:
        self._ledger(spec, shard, RUNNING)

    def write_shard(self, spec: EvalSpec, shard: str, counts: ClassTally, model_id: str) -> str:
        """Make `counts` the visible counts of `shard`; returns the attempt id. Safe to repeat."""
        attempt = uuid.uuid4().hex
        concepts = [-1 if c is None else int(c) for c in spec.concept_ids] or [-1] * len(counts.total)
        nonzero = np.flatnonzero(counts.total)
        self.store.insert("eval_shard_counts", ["evaluation_id", "shard", "attempt_id", "class_index", "concept_id",
                                                "correct_top1", "correct_top5", "total"],
                          [(spec.evaluation_id, shard, attempt, int(i), concepts[i], int(counts.correct_top1[i]),
                            int(counts.correct_top5[i]), int(counts.total[i])) for i in nonzero])
        self._ledger(spec, shard, DONE, attempt_id=attempt, model_id=model_id, samples=counts.samples, skipped=counts.skipped)
        return attempt

    def fail_shard(self, spec: EvalSpec, shard: str, reason: str) -> None:
        self._ledger(spec, shard, FAILED, reason=reason)

    def totals(self, spec: EvalSpec) -> ClassTally:
        """Sum over the shards' latest done attempts."""
        counts = ClassTally.zeros(len(spec.classnames))
        rows = self.store.execute("""SELECT class_index, sum(correct_top1), sum(correct_top5), sum(total)
            FROM {db}.eval_shard_counts WHERE evaluation_id = %(e)s AND (shard, attempt_id) IN (
                SELECT shard, argMax(attempt_id, seq) FROM {db}.eval_ledger WHERE evaluation_id = %(e)s
                GROUP BY shard HAVING argMax(state, seq) = 'done')
            GROUP BY class_index""", e=spec.evaluation_id)
        for index, top1, top5, total in rows:
            if index < len(counts.total):
                counts.correct_top1[index], counts.correct_top5[index], counts.total[index] = top1, top5, total
        counts.skipped = self.progress(spec).skipped
        return counts

    def summary(self, spec: EvalSpec) -> ClassificationSummary:
        return summarize(self.totals(spec), spec.classnames, spec.concept_ids)

    # --- results for the reporter ---------------------------------------------------------------

    def publish(self, spec: EvalSpec, summary: ClassificationSummary | None = None) -> int:
        """Write per-class results to zero_shot_results; returns the rows written."""
        summary = summary or self.summary(spec)
        seq, _ = _now()
        rows = [(spec.model, spec.pretrained_label, spec.prompts.mode, spec.eval_dataset, c.name, spec.vocabulary_version,
                 int(c.concept_id), c.correct_top1, c.total, c.accuracy, SOURCE, seq)
                for c in summary.classes if c.total and c.concept_id is not None]
        self.store.insert("zero_shot_results", RESULT_COLUMNS, rows)
        EVAL_TOP1.labels(spec.model, spec.pretrained_label, spec.eval_dataset, spec.prompts.mode).set(summary.top1)
        return len(rows)

    def results(self, model: str, eval_dataset: str, pretrained: str = "", prompts: str = "") -> list[tuple]:
        """(pretrained, prompts, class, concept_id, correct, total, accuracy, source), latest write per class."""
        return self.store.execute("""SELECT pretrained, prompts, class_name, argMax(concept_id, seq), argMax(correct, seq),
                argMax(total, seq), argMax(accuracy, seq), argMax(source, seq)
            FROM {db}.zero_shot_results WHERE model = %(m)s AND eval_dataset = %(d)s
              AND (%(p)s = '' OR pretrained = %(p)s) AND (%(pr)s = '' OR prompts = %(pr)s)
            GROUP BY pretrained, prompts, class_name ORDER BY pretrained, prompts, class_name""",
                                  m=model, d=eval_dataset, p=pretrained, pr=prompts)

    def write_retrieval(self, spec: EvalSpec, recalls: Sequence[ConceptRecall], names: dict[int, str]) -> int:
        seq, _ = _now()
        rows = [(spec.model, spec.pretrained_label, spec.eval_dataset, spec.vocabulary_version, r.concept_id,
                 names.get(r.concept_id, ""), r.direction, r.k, r.hits, r.total, r.recall, spec.evaluation_id, seq)
                for r in recalls]
        self.store.insert("zero_shot_retrieval", ["model", "pretrained", "eval_dataset", "vocabulary_version", "concept_id",
                                                  "concept", "direction", "k", "hits", "total", "recall", "evaluation_id", "seq"], rows)
        return len(rows)

    def retrieval(self, model: str, eval_dataset: str, pretrained: str = "") -> list[tuple]:
        """(pretrained, concept_id, concept, direction, k, hits, total, recall), latest write per key."""
        return self.store.execute("""SELECT pretrained, concept_id, argMax(concept, seq), direction, k, argMax(hits, seq),
                argMax(total, seq), argMax(recall, seq)
            FROM {db}.zero_shot_retrieval WHERE model = %(m)s AND eval_dataset = %(d)s AND (%(p)s = '' OR pretrained = %(p)s)
            GROUP BY pretrained, vocabulary_version, concept_id, direction, k
            ORDER BY pretrained, concept_id, direction, k""", m=model, d=eval_dataset, p=pretrained)
