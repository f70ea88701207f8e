"""The per-concept totals of every dataset, held in memory and kept fresh from the store.

A query never aggregates counts: it reads the totals snapshot the counter last made
(adapters/store/totals.py), loaded once per (dataset, vocabulary) and replaced whole when a newer
snapshot appears. A `refresh` looks for newer snapshots (one small query per loaded dataset), at
most every `max_staleness_s`; the query service runs it in a background thread, so answers come
from memory and are never older than the last counted shard by more than that interval plus one
snapshot load. Each answer says which snapshot it was read from (`Freshness`).
"""

from __future__ import annotations

import difflib
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from conceptfreq.adapters.store import CountStore
from conceptfreq.core.rules import resolve_rules
from conceptfreq.core.vocabulary import Concept, Vocabulary
from conceptfreq.errors import NotFoundError
from conceptfreq.pipeline.vocabularies import Vocabularies


_UNSEEN = object()
_NAMES_REMEMBERED = 200_000  # names per dataset; past that, names are looked up afresh


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Freshness:
    snapshot: str
    computed_at_ms: int
    checked_at_ms: int
    max_staleness_ms: int


@dataclass
class DatasetTotals:
    """One (dataset, vocabulary)'s totals as of one snapshot: immutable once built, swapped whole."""

    dataset: str
    vocabulary: Vocabulary
    snapshot: str
    computed_at_ms: int
    samples: int
    shards: int
    counts: dict[tuple[str, str], np.ndarray]     # (kind, rule) -> count per concept id
    rules: dict[str, dict[str, int]]              # kind -> rule -> shards (what core/rules.py decides from)
    default_rules: dict[str, str]                 # kind -> the rule it is read under by default
    tagging_rules: list[str] = field(default_factory=list)   # recorded for the dataset, the active one first
    checked_at_ms: int = 0
    _ranks: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    _names: dict[str, Concept | None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.size = max((c.id for c in self.vocabulary), default=-1) + 1
        self._zeros = np.zeros(self.size, dtype=np.int64)

    def column(self, kind: str, rule: str | None) -> np.ndarray:
        """Counts of one kind under `rule` (default: the kind's default rule), one per concept id."""
        rule = rule or self.default_rules.get(kind)
        found = self.counts.get((kind, rule)) if rule else None
        return found if found is not None else self._zeros

    def ranks(self, kind: str, rule: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rank, percentile) per concept id: rank 1 is the most frequent, equal counts share a rank
        (competition ranking); percentile is the share of concepts with a smaller count."""
        key = (kind, rule or self.default_rules.get(kind, ""))
        if key not in self._ranks:
            ids = np.array([c.id for c in self.vocabulary], dtype=np.int64)
            values = self.column(kind, rule)[ids]
            ordered = np.sort(values)
            smaller = np.searchsorted(ordered, values, side="left")
            larger = len(values) - np.searchsorted(ordered, values, side="right")
            rank, percentile = np.zeros(self.size, dtype=np.int64), np.zeros(self.size)
            rank[ids] = larger + 1
            percentile[ids] = 100.0 * smaller / max(1, len(values))
            self._ranks[key] = (rank, percentile)
        return self._ranks[key]

    def resolve(self, names: list[str]) -> tuple[list[Concept], list[str]]:
        """Vocabulary.resolve, remembering each name: the same class lists come back call after call."""
        found, unknown = [], []
        known = self._names
        for name in names:
            concept = known.get(name, _UNSEEN)
            if concept is _UNSEEN:
                concept = self.vocabulary.get(name)
                if len(known) < _NAMES_REMEMBERED:
                    known[name] = concept
            (found.append(concept) if concept is not None else unknown.append(name))
        return found, unknown

    def freshness(self, max_staleness_ms: int) -> Freshness:
        return Freshness(self.snapshot, self.computed_at_ms, self.checked_at_ms, max_staleness_ms)


class FrequencyIndex:
    def __init__(self, store: CountStore, max_staleness_s: float = 1.0):
        self.store = store
        self.max_staleness_s = max_staleness_s
        self.vocabularies = Vocabularies(store)
        self._loaded: dict[tuple[str, str], DatasetTotals] = {}
        self._latest_version: dict[str, tuple[str | None, float]] = {}   # dataset -> (latest version, when looked up)
        self._lock = threading.Lock()

    @property
    def max_staleness_ms(self) -> int:
        return int(self.max_staleness_s * 1000)

    def version_of(self, dataset: str) -> str | None:
        """The latest vocabulary version a dataset was counted with. Known datasets are answered from
        memory (`refresh` keeps them current); an unknown name asks the store at most every
        max_staleness_s, so a stream of bad names cannot keep the store busy."""
        cached = self._latest_version.get(dataset)
        if cached and (cached[0] is not None or time.monotonic() - cached[1] < self.max_staleness_s):
            return cached[0]
        versions = self.store.vocabulary_versions(dataset)
        version = versions[0] if versions else None
        if version is not None or len(self._latest_version) < _NAMES_REMEMBERED:
            self._latest_version[dataset] = (version, time.monotonic())
        return version

    def totals(self, dataset: str, version: str) -> DatasetTotals:
        """The dataset's totals under `version`, loaded on first use."""
        key = (dataset, version)
        loaded = self._loaded.get(key)
        if loaded is None:
            loaded = self._load(dataset, version)
            with self._lock:
                self._loaded[key] = loaded
        return loaded

    def _load(self, dataset: str, version: str, previous: DatasetTotals | None = None) -> DatasetTotals:
        vocabulary = previous.vocabulary if previous else self.vocabularies.resolve(version)
        snapshot = self.store.totals_snapshot(dataset, version)
        if snapshot is not None and previous is not None and snapshot.snapshot == previous.snapshot:
            previous.checked_at_ms = _now_ms()
            return previous
        totals = self.store.totals(dataset, version, snapshot)
        size = max((c.id for c in vocabulary), default=-1) + 1
        columns = {}
        for key, by_concept in totals.counts.items():
            column = np.zeros(size, dtype=np.int64)
            ids = np.fromiter((i for i in by_concept if i < size), dtype=np.int64)
            column[ids] = [by_concept[i] for i in ids.tolist()]
            columns[key] = column
        tagging_rules = self.store.tagging_rules(dataset, version)
        return DatasetTotals(dataset, vocabulary, snapshot.snapshot if snapshot else "", snapshot.computed_at_ms if snapshot else 0,
                             snapshot.samples if snapshot else 0, snapshot.shards if snapshot else 0, columns, totals.rules,
                             resolve_rules(totals.facts(tagging_rules[0] if tagging_rules else None)), tagging_rules,
                             checked_at_ms=_now_ms(), _names=previous._names if previous else {})

    def refresh(self) -> int:
        """Look again for each known dataset's latest vocabulary, and replace every loaded dataset's
        totals whose snapshot is no longer the latest; returns how many were replaced."""
        for dataset, (version, _) in list(self._latest_version.items()):
            if version is not None:
                versions = self.store.vocabulary_versions(dataset)
                self._latest_version[dataset] = (versions[0] if versions else None, time.monotonic())
        replaced = 0
        for key, current in list(self._loaded.items()):
            fresh = self._load(*key, previous=current)
            if fresh is not current:
                with self._lock:
                    self._loaded[key] = fresh
                replaced += 1
        return replaced

    def follow(self, stop: threading.Event) -> None:
        """Refresh every max_staleness_s until `stop` is set (the query service's background thread)."""
        while not stop.wait(self.max_staleness_s):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - a store hiccup must not end the refresher; answers stay as they were
                time.sleep(self.max_staleness_s)

    def resolve(self, dataset: str, version: str | None) -> DatasetTotals:
        """The totals a request names: the dataset, with its latest vocabulary unless one is given."""
        version = version or self.version_of(dataset)
        if version is None:
            known = self.known_datasets()
            close = difflib.get_close_matches(dataset, known, n=3, cutoff=0.5)
            hint = (f"did you mean {', '.join(map(repr, close))}? " if close else "") + (
                f"known datasets: {', '.join(known[:20])}" if known else "the store has no counts yet: run `conceptfreq count` first")
            raise NotFoundError(f"no counts for dataset {shown_name(dataset)} in {self.store.location} ({hint})")
        return self.totals(dataset, version)

    def known_datasets(self) -> list[str]:
        return sorted({s.dataset for s in self.store.datasets()})


def shown_name(name: str, limit: int = 80) -> str:
    """A name for an error message: never the whole of a megabyte someone sent."""
    return repr(name if len(name) <= limit else name[:limit] + "...")
