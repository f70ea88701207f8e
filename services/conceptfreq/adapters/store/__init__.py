"""Open the count store named by a URL.

- `clickhouse://[user[:password]@]host[:port]/database[?option=value&...]`: a ClickHouse server
  (native protocol). Options (CLICKHOUSE_OPTIONS): `cluster=NAME` runs the schema ON CLUSTER with
  Replicated engines (migrations.on_cluster); `alt_hosts=h2:9000,h3:9000` are replicas to fail
  over to; `insert_quorum=N` makes an insert wait for N replicas (safer, but writes stop while
  fewer are up); `distributed_ddl_task_timeout=S`; `secure=1` with `ca_certs=`, `certfile=`,
  `keyfile=`, `verify=0|1` for TLS; `password_file=PATH` reads the password from a file (a
  mounted Secret) instead of the URL; `connect_timeout_s=5` and `timeout_s=60` bound the waits: an
  unreachable server is UnavailableError within them.
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


# Store URL options of a ClickHouse server and what each becomes: a Client argument, a query
# setting, or a TLS argument of clickhouse-driver.
CLICKHOUSE_OPTIONS = {
    "cluster": "name", "alt_hosts": "hosts", "password_file": "path",
    "insert_quorum": "setting", "distributed_ddl_task_timeout": "setting",
    "secure": "tls-flag", "verify": "tls-flag", "ca_certs": "tls", "certfile": "tls", "keyfile": "tls",
    "connect_timeout_s": "seconds", "timeout_s": "seconds",
}
# The seconds options and the clickhouse-driver argument each becomes.
_TIMEOUTS = {"connect_timeout_s": "connect_timeout", "timeout_s": "send_receive_timeout"}


def _clickhouse_options(url) -> dict:
    options: dict = {"settings": {}, "tls": {}}
    for name, value in parse_qsl(url.query):
        kind = CLICKHOUSE_OPTIONS.get(name)
        if kind is None:
            raise UserError(f"unknown ClickHouse store option {name!r}; known: {', '.join(CLICKHOUSE_OPTIONS)}")
        if kind == "setting":
            if not value.isdigit():
                raise UserError(f"ClickHouse store option {name}={value!r} must be a whole number")
            options["settings"][name] = int(value)
        elif kind == "tls-flag":
            if value not in ("0", "1", "true", "false"):
                raise UserError(f"ClickHouse store option {name}={value!r} must be 0 or 1")
            options["tls"][name] = value in ("1", "true")
        elif kind == "tls":
            options["tls"][name] = value
        elif kind == "seconds":
            try:
                options.setdefault("timeouts", {})[_TIMEOUTS[name]] = float(value)
            except ValueError:
                raise UserError(f"store option {name}={value!r} must be a number of seconds") from None
        elif kind == "name" and not value.replace("_", "").replace("-", "").isalnum():
            raise UserError(f"invalid ClickHouse cluster name {value!r} in the store URL: use letters, digits, - and _")
        else:
            options[name] = value
    return options


def _clickhouse(url) -> ClickHouseBackend:
    database = url.path.strip("/") or "conceptfreq"
    if not database.replace("_", "").isalnum():
        raise UserError(f"invalid ClickHouse database name {database!r} in the store URL: use letters, digits and _")
    options = _clickhouse_options(url)
    password = unquote(url.password or "")
    if options.get("password_file"):
        try:
            password = Path(options["password_file"]).read_text().strip()
        except OSError as error:
            raise UserError(f"cannot read the ClickHouse password file {options['password_file']}: {error.strerror}") from error
    return ClickHouseBackend(url.hostname or "127.0.0.1", url.port or 9000, database,
                             user=unquote(url.username or "default"), password=password,
                             cluster=options.get("cluster", ""), alt_hosts=options.get("alt_hosts", ""),
                             settings=options["settings"], tls=options["tls"], **options.get("timeouts", {}))


def _chdb(url) -> ChdbBackend:
    path = Path(unquote(url.netloc + url.path)).expanduser()
    if not str(path):
        raise UserError("the chdb store URL needs a directory: chdb:///path/to/dir")
    path.mkdir(parents=True, exist_ok=True)
    return ChdbBackend(str(path))


STORE_SCHEMES = {"clickhouse": _clickhouse, "chdb": _chdb}


def open_store(url: str | None = None, migrate: bool = True, read_only: bool = False) -> CountStore:
    """The store named by `url`, its schema brought up to date (`migrate`). A reader (`read_only`)
    never changes a server's schema, so it works with read-only credentials; it only checks that
    `conceptfreq migrate` has run. An embedded store belongs to whoever opens it and is migrated."""
    url = url or default_store_url()
    parts = urlsplit(url)
    opener = STORE_SCHEMES.get(parts.scheme)
    if opener is None:
        raise UserError(f"unknown store URL {url!r}: use clickhouse://host:9000/db or chdb:///path/to/dir")
    store = CountStore(opener(parts))
    if read_only and parts.scheme != "chdb":
        store.check_schema()
    elif migrate:
        store.migrate()
    return store
