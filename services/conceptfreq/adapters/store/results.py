"""Per-class zero-shot results and per-concept retrieval (migrations 100 and 202): written by
`import-paper` (source 'paper') and by the evaluator (source 'evaluator'), read by `results` and
the reporter. Rewrites replace: readers take argMax(..., seq) per key, so the latest write wins
before and after merges."""

from __future__ import annotations

from typing import NamedTuple, Sequence

from conceptfreq.adapters.store.tables import Tables, now_seq


class ClassResult(NamedTuple):
    """One class's zero-shot result. `accuracy` is in percent (0-100), the paper's unit; `total` 0
    means the test-set size is unknown. `concept_id` is the class's concept in `vocabulary_version`,
    which is how results join the counts."""

    model: str
    pretrained: str
    prompts: str
    eval_dataset: str
    class_name: str
    vocabulary_version: str
    concept_id: int
    correct: int
    total: int
    accuracy: float
    source: str


class ConceptRetrieval(NamedTuple):
    model: str
    pretrained: str
    eval_dataset: str
    vocabulary_version: str
    concept_id: int
    concept: str
    direction: str
    k: int
    hits: int
    total: int
    recall: float
    evaluation_id: str


_RESULT_COLUMNS = ["model", "pretrained", "prompts", "eval_dataset", "class_name", "vocabulary_version", "concept_id",
                   "correct", "total", "accuracy", "source", "seq"]
_RETRIEVAL_COLUMNS = ["model", "pretrained", "eval_dataset", "vocabulary_version", "concept_id", "concept", "direction", "k",
                      "hits", "total", "recall", "evaluation_id", "seq"]
_BATCH = 20_000


class ResultTables(Tables):
    def write_results(self, results: Sequence[ClassResult]) -> int:
        """Write per-class results (in batches: the paper's artifacts hold hundreds of thousands)."""
        seq = now_seq()
        for start in range(0, len(results), _BATCH):
            self._insert("zero_shot_results", _RESULT_COLUMNS, [(*r, seq) for r in results[start:start + _BATCH]])
        return len(results)

    def results(self, model: str, eval_dataset: str = "", pretrained: str = "", prompts: str = "") -> list[ClassResult]:
        """The latest result of every class, by pretrained, prompts, eval set and class."""
        rows = self._execute("""SELECT pretrained, prompts, eval_dataset, class_name, argMax(vocabulary_version, seq),
                argMax(concept_id, seq), argMax(correct, seq), argMax(total, seq), argMax(accuracy, seq), argMax(source, seq)
            FROM {db}.zero_shot_results WHERE model = %(m)s AND (%(d)s = '' OR eval_dataset = %(d)s)
              AND (%(p)s = '' OR pretrained = %(p)s) AND (%(pr)s = '' OR prompts = %(pr)s)
            GROUP BY pretrained, prompts, eval_dataset, class_name ORDER BY pretrained, prompts, eval_dataset, class_name""",
                             m=model, d=eval_dataset, p=pretrained, pr=prompts)
        return [ClassResult(model, p, pr, d, name, version, int(concept), int(correct), int(total), float(accuracy), source)
                for p, pr, d, name, version, concept, correct, total, accuracy, source in rows]

    def models(self, pretrained: str, prompts: str) -> list[str]:
        rows = self._execute("""SELECT DISTINCT model FROM {db}.zero_shot_results
            WHERE pretrained = %(p)s AND prompts = %(pr)s ORDER BY model""", p=pretrained, pr=prompts)
        return [r[0] for r in rows]

    def evaluated_classes(self, prompts: str, eval_datasets: Sequence[str] = ()) -> dict[str, int]:
        """{class name: models-and-weights evaluated on it}."""
        only = "AND eval_dataset IN %(ds)s" if eval_datasets else ""
        rows = self._execute(f"""SELECT class_name, uniqExact(model, pretrained) FROM {{db}}.zero_shot_results
            WHERE prompts = %(pr)s {only} GROUP BY class_name""", pr=prompts, ds=tuple(eval_datasets))
        return {name: int(n) for name, n in rows}

    def write_retrieval(self, recalls: Sequence[ConceptRetrieval]) -> int:
        seq = now_seq()
        self._insert("zero_shot_retrieval", _RETRIEVAL_COLUMNS, [(*r, seq) for r in recalls])
        return len(recalls)

    def retrieval(self, model: str, eval_dataset: str, pretrained: str = "") -> list[ConceptRetrieval]:
        """The latest recall of every (weights, concept, direction, k)."""
        rows = self._execute("""SELECT pretrained, vocabulary_version, concept_id, argMax(concept, seq), direction, k,
                argMax(hits, seq), argMax(total, seq), argMax(recall, seq), argMax(evaluation_id, seq)
            FROM {db}.zero_shot_retrieval WHERE model = %(m)s AND eval_dataset = %(d)s AND (%(p)s = '' OR pretrained = %(p)s)
            GROUP BY pretrained, vocabulary_version, concept_id, direction, k
            ORDER BY pretrained, concept_id, direction, k""", m=model, d=eval_dataset, p=pretrained)
        return [ConceptRetrieval(model, p, eval_dataset, v, int(c), name, direction, int(k), int(hits), int(total), float(recall), e)
                for p, v, c, name, direction, k, hits, total, recall, e in rows]
