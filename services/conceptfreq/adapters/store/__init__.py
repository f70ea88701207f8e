"""Open the count store named by a URL.

- `clickhouse://[user[:password]@]host[:port]/database[?connect_timeout_s=5&timeout_s=60]`: a ClickHouse
  server (native protocol); an unreachable one is UnavailableError within connect_timeout_s
- `chdb:///absolute/dir` or `chdb://relative/dir`: embedded ClickHouse in that directory (the default)
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from conceptfreq.adapters.store.backends import ChdbBackend, ClickHouseBackend
from conceptfreq.adapters.store.images import ImageAttempt, Misalignment
from conceptfreq.adapters.store.ledger import DatasetSummary, LedgerEntry, LedgerProgress, ShardState
from conceptfreq.adapters.store.results import ClassResult, ConceptRetrieval
from conceptfreq.adapters.store.store import CountStore
from conceptfreq.errors import UserError

__all__ = ["CountStore", "DatasetSummary", "LedgerEntry", "LedgerProgress", "ShardState", "ImageAttempt", "Misalignment",
           "ClassResult", "ConceptRetrieval", "open_store", "default_store_url", "STORE_SCHEMES"]


def default_store_url() -> str:
    """$CONCEPTFREQ_STORE, else an embedded store under $XDG_DATA_HOME (~/.local/share)."""
    if os.environ.get("CONCEPTFREQ_STORE"):
        return os.environ["CONCEPTFREQ_STORE"]
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"chdb://{base / 'conceptfreq' / 'store'}"


def _clickhouse(url) -> ClickHouseBackend:
    database = url.path.strip("/") or "conceptfreq"
    if not database.replace("_", "").isalnum():
        raise UserError(f"invalid ClickHouse database name {database!r} in the store URL: use letters, digits and _")
    return ClickHouseBackend(url.hostname or "127.0.0.1", url.port or 9000, database,
                             user=unquote(url.username or "default"), password=unquote(url.password or ""),
                             **_timeouts(url.query))


_TIMEOUTS = {"connect_timeout_s": "connect_timeout", "timeout_s": "send_receive_timeout"}


def _timeouts(query: str) -> dict[str, float]:
    """The store URL's bounds on waiting: connect_timeout_s (default 5) and timeout_s per request (60)."""
    out = {}
    for name, value in parse_qsl(query):
        if name not in _TIMEOUTS:
            continue  # other options belong to other readers of the URL
        try:
            out[_TIMEOUTS[name]] = float(value)
        except ValueError:
            raise UserError(f"store option {name}={value!r} must be a number of seconds") from None
    return out


def _chdb(url) -> ChdbBackend:
    path = Path(unquote(url.netloc + url.path)).expanduser()
    if not str(path):
        raise UserError("the chdb store URL needs a directory: chdb:///path/to/dir")
    path.mkdir(parents=True, exist_ok=True)
    return ChdbBackend(str(path))


STORE_SCHEMES = {"clickhouse": _clickhouse, "chdb": _chdb}


def open_store(url: str | None = None, migrate: bool = True) -> CountStore:
    url = url or default_store_url()
    parts = urlsplit(url)
    opener = STORE_SCHEMES.get(parts.scheme)
    if opener is None:
        raise UserError(f"unknown store URL {url!r}: use clickhouse://host:9000/db or chdb:///path/to/dir")
    store = CountStore(opener(parts))
    if migrate:
        store.migrate()
    return store
