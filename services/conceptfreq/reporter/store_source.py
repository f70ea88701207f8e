"""The count store as a report source: counts of one (dataset, kind, rule) joined with per-class
zero-shot results. The same methods as `PaperArtifacts`, so reports, the CLI and the service run
unchanged on either.

`CountStore.frequencies` sums every rule of a kind; the paper's artifacts hold several rules per
kind (lemmatized and lowercased text; RAM++ at five thresholds), so these queries select one rule.
All SQL runs on ClickHouse 18.16 and chDB 26.
"""

from __future__ import annotations

import numpy as np

from conceptfreq.adapters.store import CountStore, visible
from conceptfreq.core.counting import KINDS
from conceptfreq.core.trends import TrendData
from conceptfreq.errors import NotFoundError, UserError
from conceptfreq.reporter.importer import PAPER_SHARD_PREFIX
from conceptfreq.reporter.paper import METHOD_ALIASES, PAPER_DOWNSTREAM, method_kind

# Rows of a dataset's kind that readers see: each shard's latest attempt, if it is done.
_VISIBLE_KIND = "dataset = %(d)s AND kind = %(k)s AND " + visible(across_vocabularies=True)
_VISIBLE = _VISIBLE_KIND + " AND rule = %(r)s"


class StoreSource:
    def __init__(self, store: CountStore):
        self.store = store

    def __repr__(self) -> str:
        return f"StoreSource({self.store.location!r})"

    # --- what is there -------------------------------------------------------------------------

    def datasets(self) -> list[str]:
        return sorted({s.dataset for s in self.store.datasets()})

    def models(self, dataset: str, prompts: str = "ensemble") -> list[str]:
        rows = self.store.execute("""SELECT DISTINCT model FROM {db}.zero_shot_results
            WHERE pretrained = %(p)s AND prompts = %(pr)s ORDER BY model""", p=dataset, pr=prompts)
        return [r[0] for r in rows]

    def rules(self, dataset: str, kind: str) -> list[str]:
        rows = self.store.execute(f"SELECT DISTINCT rule FROM {{db}}.shard_counts WHERE {_VISIBLE_KIND} ORDER BY rule",
                                  d=dataset, k=kind)
        return [r[0] for r in rows]

    def resolve_count(self, dataset: str, count: str, rule: str | None = None) -> tuple[str, str]:
        """(kind, rule) for `--count` (a kind, or a paper method name) and an optional `--rule`."""
        if dataset not in self.datasets():
            raise NotFoundError(f"dataset {dataset!r} has no counts in the store: known: {', '.join(self.datasets()) or 'none'} "
                                "(count it first, or import the paper's artifacts with `conceptfreq import-paper`)")
        if count in KINDS:
            kind = count
        else:
            method = METHOD_ALIASES.get(count, count)
            kind, rule = method_kind(method), rule or method
        available = self.rules(dataset, kind)
        if not available:
            raise NotFoundError(f"dataset {dataset!r} has no {kind} counts")
        if rule is None:
            default = METHOD_ALIASES[kind]
            if len(available) == 1:
                rule = available[0]
            elif default in available:
                rule = default  # the paper's choice for this kind, when its counts were imported
            else:
                raise UserError(f"dataset {dataset!r} has {kind} counts under several rules ({', '.join(available)}): "
                                "pick one with --rule")
        if rule not in available:
            raise NotFoundError(f"dataset {dataset!r} has no {kind} counts under rule {rule!r}: available: {', '.join(available)}")
        return kind, rule

    def _counts(self, dataset: str, kind: str, rule: str) -> tuple[dict[tuple[str, int], int], set[str]]:
        """{(vocabulary version, concept id): count}, and the versions counted by whole-vocabulary shards
        (where a missing concept means 0, not "not counted")."""
        params = {"d": dataset, "k": kind, "r": rule}
        rows = self.store.execute(f"""SELECT vocabulary_version, concept_id, sum(count) FROM {{db}}.shard_counts
            WHERE {_VISIBLE} GROUP BY vocabulary_version, concept_id""", **params)
        full = self.store.execute(f"""SELECT DISTINCT vocabulary_version FROM {{db}}.shard_counts
            WHERE {_VISIBLE} AND shard NOT LIKE '{PAPER_SHARD_PREFIX}%%'""", **params)
        return {(v, int(c)): int(n) for v, c, n in rows}, {r[0] for r in full}

    def _results(self, model: str, pretrained: str, prompts: str) -> list[tuple]:
        return self.store.execute("""SELECT eval_dataset, class_name, argMax(vocabulary_version, seq),
                argMax(concept_id, seq), argMax(accuracy, seq), argMax(total, seq)
            FROM {db}.zero_shot_results WHERE model = %(m)s AND pretrained = %(p)s AND prompts = %(pr)s
            GROUP BY eval_dataset, class_name ORDER BY eval_dataset, class_name""", m=model, p=pretrained, pr=prompts)

    # --- report source -------------------------------------------------------------------------

    def trend_data(self, dataset: str, model: str, count: str = "matched", prompts: str = "ensemble",
                   downstream: list[str] | None = None, rule: str | None = None, pretrained: str | None = None,
                   **_) -> tuple[TrendData, dict]:
        kind, rule = self.resolve_count(dataset, count, rule)
        pretrained = pretrained or dataset
        results = self._results(model, pretrained, prompts)
        if not results:
            raise NotFoundError(f"no {prompts} zero-shot results for model {model!r} pretrained on {pretrained!r}: "
                                f"models with results: {', '.join(self.models(pretrained, prompts)) or 'none'}")
        available = sorted({r[0] for r in results})
        chosen = list(downstream) if downstream else ([d for d in PAPER_DOWNSTREAM if d in available] or available)
        order = {d: i for i, d in enumerate(chosen)}
        counts, full = self._counts(dataset, kind, rule)
        rows, uncounted = [], 0
        for eval_dataset, name, version, concept, accuracy, total in sorted(results, key=lambda r: (order.get(r[0], -1), r[1])):
            if eval_dataset not in order:
                continue
            n = counts.get((version, int(concept)), 0 if version in full else None)
            if n is None:
                uncounted += 1
                continue
            rows.append((name, eval_dataset, n, float(accuracy), int(total)))
        used = sorted({r[1] for r in rows}, key=order.get)
        # Test-set sizes sharpen the logit fit, but only if every class has one (the paper's results have none).
        totals = np.array([r[4] for r in rows], dtype=float)
        data = TrendData(tuple(r[0] for r in rows), [r[2] for r in rows], [r[3] for r in rows], tuple(r[1] for r in rows),
                         totals=totals if rows and totals.min() > 0 else None)
        info = {"source": "store", "store": self.store.location, "dataset": dataset, "model": model, "pretrained": pretrained,
                "prompts": prompts, "count": rule, "kind": kind, "rule": rule, "downstream": used,
                "missing_counts": [d for d in chosen if d in available and d not in used],
                "missing_evaluations": [d for d in chosen if d not in available], "unmatched_classes": uncounted}
        return data, info

    def concept_counts(self, dataset: str, count: str = "matched", rule: str | None = None,
                       downstream: list[str] | None = None, **_) -> dict[str, int]:
        """{concept name: count} over every concept counted under (kind, rule); the largest where a name repeats."""
        kind, rule = self.resolve_count(dataset, count, rule)
        counts, full = self._counts(dataset, kind, rule)
        versions = sorted({v for v, _ in counts} | full)
        rows = self.store.execute("""SELECT vocabulary_version, concept_id, name, sources FROM {db}.concepts
            WHERE vocabulary_version IN %(vs)s""", vs=tuple(versions)) if versions else []
        wanted = set(downstream) if downstream else None
        pooled: dict[str, int] = {}
        for version, concept, name, sources in rows:
            if wanted is not None and not wanted & set(sources):
                continue
            n = counts.get((version, int(concept)), 0 if version in full else None)
            if n is not None:
                pooled[name] = max(n, pooled.get(name, 0))
        return pooled

    def evaluated_concepts(self, prompts: str = "ensemble", downstream: list[str] | None = None) -> dict[str, int]:
        only = "AND eval_dataset IN %(ds)s" if downstream else ""
        rows = self.store.execute(f"""SELECT class_name, uniqExact(model, pretrained) FROM {{db}}.zero_shot_results
            WHERE prompts = %(pr)s {only} GROUP BY class_name""", pr=prompts, ds=tuple(downstream or ()))
        return {name: int(n) for name, n in rows}

    def sources(self, downstream: list[str]) -> set[str]:
        rows = self.store.execute("""SELECT DISTINCT name FROM {db}.concepts
            WHERE hasAny(sources, %(ds)s)""", ds=list(downstream))
        return {r[0] for r in rows}

    def let_it_wag(self) -> list[str] | None:
        return None  # not stored; pass the list with --let-it-wag

    def misalignment(self, dataset: str) -> dict | None:
        return None  # needs per-sample image hits next to the text hits; the store does not keep them yet

    def dataset_size(self, dataset: str) -> int | None:
        sizes = [s.samples for s in self.store.datasets() if s.dataset == dataset]
        return max(sizes) if sizes and max(sizes) > 0 else None
