"""Vocabularies by version, read once from the store, and what is built from them (matchers, stages,
concept indexes) built once per key: building a matcher costs far more than parsing one small shard.
Shared by the stage handlers, the gRPC servicers and the query service."""

from __future__ import annotations

import threading
from typing import Callable, TypeVar

from conceptfreq.adapters.store import CountStore
from conceptfreq.core.vocabulary import Vocabulary
from conceptfreq.errors import NotFoundError, UserError

T = TypeVar("T")


class Vocabularies:
    def __init__(self, store: CountStore, default: Vocabulary | None = None):
        self.store = store
        self.default = default
        self._vocabularies: dict[str, Vocabulary] = {default.version: default} if default else {}
        self._built: dict[tuple, object] = {}
        self._lock = threading.Lock()  # gRPC threads and the consumer share the caches

    def get(self, version: str) -> Vocabulary | None:
        if version not in self._vocabularies:
            vocabulary = self.store.load_vocabulary(version)
            if vocabulary is None:
                return None
            with self._lock:
                self._vocabularies[version] = vocabulary
        return self._vocabularies[version]

    def resolve(self, version: str, role: str = "this service") -> Vocabulary:
        """The vocabulary a request names, or the default one when it names none."""
        if version:
            vocabulary = self.get(version)
            if vocabulary is None:
                raise NotFoundError(f"vocabulary version {version!r} is not in the store")
            return vocabulary
        if self.default is None:
            raise UserError(f"{role} has no default vocabulary: set vocabulary_version")
        return self.default

    def built(self, key: tuple, factory: Callable[[], T]) -> T:
        """factory(), once per key."""
        with self._lock:
            if key not in self._built:
                self._built[key] = factory()
            return self._built[key]
