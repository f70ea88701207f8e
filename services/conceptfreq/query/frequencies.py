"""Answers to frequency questions, independent of how they are asked (CLI or gRPC)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import IMAGE, KINDS, MATCHED, TEXT
from conceptfreq.core.vocabulary import Concept, Vocabulary
from conceptfreq.errors import NotFoundError, UserError
from conceptfreq.pipeline.vocabularies import Vocabularies


@dataclass
class ConceptRow:
    concept_id: int
    name: str
    text: int = 0
    image: int = 0
    matched: int = 0

    def to_json(self) -> dict:
        return {"concept_id": self.concept_id, "name": self.name, "text": self.text, "image": self.image, "matched": self.matched}


@dataclass
class Answer:
    dataset: str
    vocabulary_version: str
    samples: int
    rows: list[ConceptRow]
    unknown: list[str] = field(default_factory=list)
    image_rule: str = ""  # the tagging rule the image and matched columns were read under; "" without any

    def to_json(self) -> dict:
        return {"dataset": self.dataset, "vocabulary_version": self.vocabulary_version, "samples": self.samples,
                "concepts": [r.to_json() for r in self.rows], "unknown": self.unknown, "image_rule": self.image_rule}


class FrequencyQueries:
    def __init__(self, store: CountStore):
        self.store = store
        self.vocabularies = Vocabularies(store)

    def vocabulary(self, dataset: str, version: str | None = None) -> Vocabulary:
        """The vocabulary a dataset was counted with: the given version, or the latest one."""
        if not dataset:
            raise UserError("a dataset name is required (e.g. --dataset cc3m)")
        if not version:
            versions = self.store.vocabulary_versions(dataset)
            if not versions:
                known = sorted({d.dataset for d in self.store.datasets()})
                hint = f"known datasets: {', '.join(known)}" if known else "the store has no counts yet: run `conceptfreq count` first"
                raise NotFoundError(f"no counts for dataset {dataset!r} in {self.store.location} ({hint})")
            version = versions[0]
        return self.vocabularies.resolve(version)

    def _rows(self, dataset: str, vocabulary: Vocabulary, concepts: list[Concept], rules: dict[str, str]) -> list[ConceptRow]:
        counts = self.store.counts_under(dataset, vocabulary.version, rules, [c.id for c in concepts])
        return [ConceptRow(c.id, c.name, **counts.get(c.id, dict.fromkeys(KINDS, 0))) for c in concepts]

    def rules(self, dataset: str, vocabulary: Vocabulary, image_rule: str | None = None) -> dict[str, str]:
        """The rule each kind is read under; image and matched under `image_rule` when one is asked for."""
        if not image_rule:
            return self.store.read_rules(dataset, vocabulary.version)
        known = self.store.tagging_rules(dataset, vocabulary.version)
        available = self.store.rules(dataset, vocabulary.version).get(IMAGE, {})
        if image_rule not in known and image_rule not in available:
            raise NotFoundError(f"dataset {dataset!r} has no image counts under rule {image_rule!r}: "
                                f"recorded rules: {', '.join(known or available) or 'none'}")
        return self.store.read_rules(dataset, vocabulary.version, {IMAGE: image_rule, MATCHED: image_rule})

    def frequencies(self, dataset: str, names: list[str], version: str | None = None, strict: bool = False,
                    rule: str | None = None) -> Answer:
        vocabulary = self.vocabulary(dataset, version)
        if not names:
            raise UserError("name at least one concept to query")
        concepts, unknown = vocabulary.resolve(names)
        if strict and unknown:
            raise NotFoundError(self.unknown_message(vocabulary, unknown))
        rules = self.rules(dataset, vocabulary, rule)
        return Answer(dataset, vocabulary.version, self.store.samples_counted(dataset, vocabulary.version),
                      self._rows(dataset, vocabulary, concepts, rules), unknown, rules.get(IMAGE, ""))

    def top(self, dataset: str, k: int = 20, rarest: bool = False, kind: str = TEXT, version: str | None = None) -> Answer:
        if kind not in KINDS:
            raise UserError(f"unknown count kind {kind!r}: choose one of {', '.join(KINDS)}")
        if k <= 0:
            raise UserError("k must be a positive number of concepts")
        vocabulary = self.vocabulary(dataset, version)
        # Concepts never seen have no rows; the rarest list must still show them, with 0.
        rows = self._rows(dataset, vocabulary, list(vocabulary), self.rules(dataset, vocabulary))
        rows.sort(key=lambda r: (getattr(r, kind), r.name) if rarest else (-getattr(r, kind), r.name))
        return Answer(dataset, vocabulary.version, self.store.samples_counted(dataset, vocabulary.version), rows[:k])

    @staticmethod
    def unknown_message(vocabulary: Vocabulary, unknown: list[str]) -> str:
        names = [n for c in vocabulary for n in c.names]
        parts = []
        for name in unknown:
            close = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.6)
            parts.append(f"{name!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
        return f"not in vocabulary {vocabulary.version}: {'; '.join(parts)}"
