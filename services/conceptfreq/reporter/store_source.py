"""The count store as a `ReportSource` (source.py): counts of one (dataset, kind, rule) joined with
per-class zero-shot results, over every vocabulary version the dataset was counted with. The same
methods as `PaperArtifacts`, so reports, the CLI and the service run unchanged on either."""

from __future__ import annotations

import numpy as np

from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import KINDS
from conceptfreq.core.rules import resolve_rule
from conceptfreq.core.trends import TrendData
from conceptfreq.errors import NotFoundError
from conceptfreq.reporter.importer import PAPER_SHARD_PREFIX
from conceptfreq.reporter.paper import METHOD_ALIASES, PAPER_DOWNSTREAM, method_kind


class StoreSource:
    def __init__(self, store: CountStore):
        self.store = store

    def __repr__(self) -> str:
        return f"StoreSource({self.store.location!r})"

    # --- what is there -------------------------------------------------------------------------

    def datasets(self) -> list[str]:
        return sorted({s.dataset for s in self.store.datasets()})

    def models(self, dataset: str, prompts: str = "ensemble") -> list[str]:
        return self.store.models(dataset, prompts)

    def rules(self, dataset: str, kind: str) -> list[str]:
        return sorted(self.store.rules_across_vocabularies(dataset, kind))

    def resolve_count(self, dataset: str, count: str, rule: str | None = None) -> tuple[str, str]:
        """(kind, rule) for `--count` (a kind, or a paper method name) and an optional `--rule`,
        strictly (core/rules.py): a fit never guesses between rules."""
        if dataset not in self.datasets():
            raise NotFoundError(f"dataset {dataset!r} has no counts in the store: known: {', '.join(self.datasets()) or 'none'} "
                                "(count it first, or import the paper's artifacts with `conceptfreq import-paper`)")
        if count in KINDS:
            kind = count
        else:
            method = METHOD_ALIASES.get(count, count)
            kind, rule = method_kind(method), rule or method
        return kind, resolve_rule(kind, self.store.report_rule_facts(dataset, kind), rule, strict=True, dataset=f"dataset {dataset!r}")

    def _counts(self, dataset: str, kind: str, rule: str) -> tuple[dict[tuple[str, int], int], set[str]]:
        return self.store.counts_across_vocabularies(dataset, kind, rule, excluded_shard_prefix=PAPER_SHARD_PREFIX)

    # --- report source -------------------------------------------------------------------------

    def trend_data(self, dataset: str, model: str, count: str = "matched", prompts: str = "ensemble",
                   downstream: list[str] | None = None, rule: str | None = None, pretrained: str | None = None,
                   **_) -> tuple[TrendData, dict]:
        kind, rule = self.resolve_count(dataset, count, rule)
        pretrained = pretrained or dataset
        results = self.store.results(model, pretrained=pretrained, prompts=prompts)
        if not results:
            raise NotFoundError(f"no {prompts} zero-shot results for model {model!r} pretrained on {pretrained!r}: "
                                f"models with results: {', '.join(self.models(pretrained, prompts)) or 'none'}")
        available = sorted({r.eval_dataset for r in results})
        chosen = list(downstream) if downstream else ([d for d in PAPER_DOWNSTREAM if d in available] or available)
        order = {d: i for i, d in enumerate(chosen)}
        counts, full = self._counts(dataset, kind, rule)
        rows, uncounted = [], 0
        for r in sorted(results, key=lambda r: (order.get(r.eval_dataset, -1), r.class_name)):
            if r.eval_dataset not in order:
                continue
            n = counts.get((r.vocabulary_version, r.concept_id), 0 if r.vocabulary_version in full else None)
            if n is None:
                uncounted += 1
                continue
            rows.append((r.class_name, r.eval_dataset, n, r.accuracy, r.total))
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
        wanted = set(downstream) if downstream else None
        pooled: dict[str, int] = {}
        for version, concept, name, sources in self.store.concept_names(sorted({v for v, _ in counts} | full)):
            if wanted is not None and not wanted & set(sources):
                continue
            n = counts.get((version, concept), 0 if version in full else None)
            if n is not None:
                pooled[name] = max(n, pooled.get(name, 0))
        return pooled

    def evaluated_concepts(self, prompts: str = "ensemble", downstream: list[str] | None = None) -> dict[str, int]:
        return self.store.evaluated_classes(prompts, downstream or ())

    def sources(self, downstream: list[str]) -> set[str]:
        return self.store.concepts_from(downstream)

    def let_it_wag(self) -> list[str] | None:
        return None  # not stored; pass the list with --let-it-wag

    def misalignment(self, dataset: str) -> dict | None:
        """The misalignment of the dataset's matched shards under its active tagging rule (the first
        listed), with the other rules beside it; None when no shard was matched."""
        found = self.store.misalignment(dataset)
        if not found:
            return None
        active = self.store.latest_tagging_rule(dataset)
        found.sort(key=lambda m: (m.rule != active, m.rule))
        return {**found[0].to_json(), "rules": [m.to_json() for m in found]}

    def dataset_size(self, dataset: str) -> int | None:
        sizes = [s.samples for s in self.store.datasets() if s.dataset == dataset]
        return max(sizes) if sizes and max(sizes) > 0 else None
