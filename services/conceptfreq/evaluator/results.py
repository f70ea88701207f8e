"""An evaluation's records, in the evaluator's terms (its plan, `EvalSpec`), over the store's
evaluation tables (adapters/store/evaluations.py and results.py, which say why a shard evaluated
twice never counts twice).

When every shard is done, the per-class results are published to the store's results (source
'evaluator'), where the reporter reads them beside the paper's imports. Publishing recomputes from
the sums, so doing it twice (two pods finishing together) writes the same rows."""

from __future__ import annotations

from typing import Sequence

from conceptfreq.adapters.metrics import EVAL_TOP1
from conceptfreq.adapters.store import ClassResult, ConceptRetrieval, CountStore, LedgerProgress
from conceptfreq.core.evaluation import ClassificationSummary, ClassTally, ConceptRecall, summarize
from conceptfreq.evaluator.plan import EvalSpec

SOURCE = "evaluator"


class EvalStore:
    def __init__(self, store: CountStore):
        self.store = store

    def save(self, spec: EvalSpec) -> None:
        self.store.save_evaluation(spec)

    def spec(self, evaluation_id: str) -> EvalSpec | None:
        body = self.store.evaluation_plan(evaluation_id)
        return EvalSpec.from_json(body) if body else None

    def specs(self, model: str = "", eval_dataset: str = "") -> list[EvalSpec]:
        return [EvalSpec.from_json(body) for body in self.store.evaluation_plans(model, eval_dataset)]

    def progress(self, spec: EvalSpec) -> LedgerProgress:
        return self.store.evaluation_progress(spec.evaluation_id, spec.shards)

    def announce(self, spec: EvalSpec) -> None:
        self.store.announce_evaluation(spec.evaluation_id, spec.shards)

    def running(self, spec: EvalSpec, shard: str) -> None:
        self.store.evaluation_shard_running(spec.evaluation_id, shard)

    def write_shard(self, spec: EvalSpec, shard: str, counts: ClassTally, model_id: str) -> str:
        return self.store.write_evaluation_shard(spec.evaluation_id, shard, spec.concept_ids, counts, model_id)

    def fail_shard(self, spec: EvalSpec, shard: str, reason: str) -> None:
        self.store.fail_evaluation_shard(spec.evaluation_id, shard, reason)

    def totals(self, spec: EvalSpec) -> ClassTally:
        return self.store.evaluation_totals(spec.evaluation_id, spec.shards, len(spec.classnames))

    def summary(self, spec: EvalSpec) -> ClassificationSummary:
        return summarize(self.totals(spec), spec.classnames, spec.concept_ids)

    def publish(self, spec: EvalSpec, summary: ClassificationSummary | None = None) -> int:
        """Write per-class results for the reporter; returns the rows written."""
        summary = summary or self.summary(spec)
        written = self.store.write_results([
            ClassResult(spec.model, spec.pretrained_label, spec.prompts.mode, spec.eval_dataset, c.name, spec.vocabulary_version,
                        int(c.concept_id), c.correct_top1, c.total, c.accuracy, SOURCE)
            for c in summary.classes if c.total and c.concept_id is not None])
        EVAL_TOP1.labels(spec.model, spec.pretrained_label, spec.eval_dataset, spec.prompts.mode).set(summary.top1)
        return written

    def results(self, model: str, eval_dataset: str, pretrained: str = "", prompts: str = "") -> list[ClassResult]:
        return self.store.results(model, eval_dataset, pretrained, prompts)

    def write_retrieval(self, spec: EvalSpec, recalls: Sequence[ConceptRecall], names: dict[int, str]) -> int:
        return self.store.write_retrieval([
            ConceptRetrieval(spec.model, spec.pretrained_label, spec.eval_dataset, spec.vocabulary_version, r.concept_id,
                             names.get(r.concept_id, ""), r.direction, r.k, r.hits, r.total, r.recall, spec.evaluation_id)
            for r in recalls])

    def retrieval(self, model: str, eval_dataset: str, pretrained: str = "") -> list[ConceptRetrieval]:
        return self.store.retrieval(model, eval_dataset, pretrained)
