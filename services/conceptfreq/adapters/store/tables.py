"""The one place where SQL meets a backend: every table family of the store (ledger.py, counts.py,
images.py, evaluations.py, results.py, totals.py, reports.py) is a `Tables` over the same backend,
and `CountStore` (store.py) is all of them at once.

`_execute` and `_insert` are private to this package: SQL lives here and nowhere else, so a change
of schema or engine touches one package. `{db}` in a statement is the store's database."""

from __future__ import annotations

import errno
import os
import time
from typing import Iterable, Mapping, Sequence

from conceptfreq.adapters.store.backends import Column
from conceptfreq.errors import UnavailableError

# Test hook only: shifts this process's clock for `now_seq`, so end-to-end tests can run writers
# whose clocks disagree (real clusters do) without root or libfaketime. Unset in production.
SKEW_ENV = "CONCEPTFREQ_TEST_CLOCK_SKEW_S"


def now_seq() -> int:
    """This process's clock in ns: the floor of a write's `seq`. Newer writes of the same key win in
    ReplacingMergeTree tables and argMax reads; the ledger raises it above what a key already has
    (ledger.py), so its order does not depend on clocks."""
    skew = os.environ.get(SKEW_ENV)
    return time.time_ns() + (int(float(skew) * 1e9) if skew else 0)


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
        try:
            return self.backend.execute(self._sql(template), params)
        except Exception as error:
            raise _out_of_space(self.location, error) or error

    def _insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
        """Row by row: for the small, rare writes (ledger rows, vocabularies, rules)."""
        try:
            self.backend.insert(f"{self.db}.{table}", columns, rows)
        except Exception as error:
            raise _out_of_space(self.location, error) or error

    def _insert_columns(self, table: str, columns: Mapping[str, Column]) -> None:
        """Column by column, in one insert: every hot write (hits, scores, per-shard counts). A str,
        int or float stands for the same value in every row (see backends.Column)."""
        try:
            self.backend.insert_columns(f"{self.db}.{table}", columns)
        except Exception as error:
            raise _out_of_space(self.location, error) or error


# How a full disk shows: ClickHouse's error code (server and chDB alike) or the OS's ENOSPC.
_FULL = ("NOT_ENOUGH_SPACE", "No space left on device", "Cannot reserve")


def _out_of_space(location: str, error: Exception) -> UnavailableError | None:
    """A full disk as one line: UnavailableError, since writes succeed again once space is freed
    (services retry; a command exits 3). None for any other error."""
    if isinstance(error, UnavailableError):
        return None
    text = str(error)
    if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or any(marker in text for marker in _FULL):
        detail = next((line.strip() for line in text.splitlines() if any(m in line for m in _FULL)), text.strip())
        return UnavailableError(f"the store at {location} is out of disk space; free some and retry ({detail[:300]})")
    return None
