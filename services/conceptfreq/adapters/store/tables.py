"""The one place where SQL meets a backend: every table family of the store (ledger.py, counts.py,
images.py, evaluations.py, results.py, totals.py, reports.py) is a `Tables` over the same backend,
and `CountStore` (store.py) is all of them at once.

`_execute` and `_insert` are private to this package: SQL lives here and nowhere else, so a change
of schema or engine touches one package. `{db}` in a statement is the store's database."""

from __future__ import annotations

import time
from typing import Iterable, Sequence


def now_seq() -> int:
    """A write's `seq`: newer writes of the same key win in ReplacingMergeTree tables and argMax reads."""
    return time.time_ns()


class Tables:
    def __init__(self, backend):
        self.backend = backend
        self.db = backend.database

    @property
    def location(self) -> str:
        return self.backend.location

    def close(self) -> None:
        self.backend.close()

    def _sql(self, template: str) -> str:
        return template.replace("{db}", self.db)

    def _execute(self, template: str, **params) -> list[tuple]:
        return self.backend.execute(self._sql(template), params)

    def _insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
        self.backend.insert(f"{self.db}.{table}", columns, rows)
