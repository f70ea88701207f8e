"""What a report reads, whatever it reads from: the paper's published artifacts (paper.py) or the
count store (store_source.py). analysis.py, the CLI and ReportService take any `ReportSource`."""

from __future__ import annotations

from typing import Protocol

from conceptfreq.core.trends import TrendData


class ReportSource(Protocol):
    def datasets(self) -> list[str]:
        """Pretraining datasets with counts."""

    def models(self, dataset: str, prompts: str = "ensemble") -> list[str]:
        """Models with zero-shot results, pretrained on `dataset`."""

    def trend_data(self, dataset: str, model: str, count: str = ..., prompts: str = "ensemble",
                   downstream: list[str] | None = None, rule: str | None = None, **options) -> tuple[TrendData, dict]:
        """Per-class (count, accuracy) of a model pretrained on `dataset`, and what was used (`info`)."""

    def concept_counts(self, dataset: str, count: str = ..., downstream: list[str] | None = None,
                       rule: str | None = None, **options) -> dict[str, int]:
        """{concept name: count} under one kind and rule."""

    def evaluated_concepts(self, prompts: str = "ensemble", downstream: list[str] | None = None) -> dict[str, int]:
        """{class name: how many (model, weights) were evaluated on it}."""

    def sources(self, downstream: list[str]) -> set[str]:
        """Names of the concepts taken from these downstream sets."""

    def let_it_wag(self) -> list[str] | None:
        """The paper's long-tail class list, where the source has it."""

    def misalignment(self, dataset: str) -> dict | None:
        """How many image-caption pairs share no concept, where the source knows."""

    def dataset_size(self, dataset: str) -> int | None:
        """Samples counted, where the source knows."""
