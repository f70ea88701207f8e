"""The two SQL backends of the count store. Both take the same SQL text and the same parameters,
so every query is written once (store.py); only transport and result decoding differ here."""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np

# clickhouse-driver builds a date lookup table for 1900-2299 when it is imported (0.13 s and about
# 40 MB, measured); its documented switch fills the table lazily instead. The store has no Date columns.
os.environ.setdefault("CLICKHOUSE_DRIVER_LASY_DATE_LUT", "1")
from clickhouse_driver.util.escape import escape_params  # noqa: E402

from conceptfreq.adapters.store.migrations import ClusterDDL, on_cluster
from conceptfreq.errors import UnavailableError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArrayColumn:
    """An Array(T) column as one flat array and offsets: row i is values[offsets[i]:offsets[i + 1]]
    (offsets has one more entry than there are rows and starts at 0)."""

    offsets: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lists(self) -> list[list]:
        flat, bounds = self.values.tolist(), self.offsets.tolist()
        return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


@dataclass(frozen=True)
class RepeatedColumn:
    """values[i] in counts[i] rows, in order: the shard and attempt columns of rows written for
    several shards at once. Arrow builds each run in C, where a list of one str per row would cost
    a Python object each (a third of a second per 200,000 samples' hits, measured)."""

    values: Sequence[Any]
    counts: Sequence[int]

    def __len__(self) -> int:
        return int(sum(self.counts))


# What `insert_columns` takes for one column: a value for every row (str, int or float), a numpy
# array, an ArrayColumn, a RepeatedColumn, or any sequence of one value per row.
Column = Union[str, int, float, np.ndarray, ArrayColumn, RepeatedColumn, Sequence[Any]]


def _row_count(columns: Mapping[str, Column]) -> int:
    sizes = {len(c) for c in columns.values() if not isinstance(c, (str, int, float))}
    if len(sizes) != 1:
        raise ValueError(f"columns of one insert must have one length, not {sorted(sizes)}")
    return sizes.pop()


class ClickHouseBackend:
    """A ClickHouse server over the native protocol (clickhouse-driver). Runs on 18.16 and up."""

    scheme = "clickhouse"

    def __init__(self, host: str, port: int, database: str, user: str = "default", password: str = "",
                 connect_timeout: float = 5, send_receive_timeout: float = 60, *, cluster: str = "",
                 alt_hosts: str = "", settings: dict[str, int] | None = None, tls: dict[str, Any] | None = None):
        from clickhouse_driver import Client

        self.database = database
        self.cluster = cluster
        self.location = f"clickhouse://{host}:{port}/{database}" + (f"?cluster={cluster}" if cluster else "")
        # alt_hosts: clickhouse-driver tries them in order when a connection fails, so a client
        # of a replicated cluster moves to a live replica when its own goes down.
        self._client = Client(host=host, port=port, user=user, password=password, alt_hosts=alt_hosts or None,
                              connect_timeout=connect_timeout, send_receive_timeout=send_receive_timeout,
                              settings=dict(settings or {}), **(tls or {}))
        self._lock = threading.Lock()  # one clickhouse-driver Client is not safe across threads

    def server_version(self) -> tuple[int, ...]:
        (version,), = self.execute("SELECT version()")
        return tuple(int(p) for p in version.split(".")[:3])

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
        if self.cluster:
            ddl = on_cluster(sql, self.cluster)
            if ddl is not None:
                return self._cluster_ddl(ddl)
        return self._execute(sql, params)

    def _cluster_ddl(self, ddl: ClusterDDL) -> list[tuple]:
        """Run schema DDL ON CLUSTER, unless this replica has the object already. Every service
        migrates when it starts; asking the cluster each time would block each start for
        distributed_ddl_task_timeout while a replica is down."""
        if ddl.table:
            exists = "SELECT count() FROM system.tables WHERE database = %(d)s AND name = %(t)s"
        else:
            exists = "SELECT count() FROM system.databases WHERE name = %(d)s"
        if self._execute(exists, {"d": ddl.database, "t": ddl.table})[0][0]:
            return []
        try:
            return self._execute(ddl.sql)
        except Exception as error:
            # 159 (TIMEOUT_EXCEEDED): a replica did not answer in time. The statement stays in the
            # cluster's DDL queue, and that replica runs it when it comes back.
            if getattr(error, "code", None) != 159:
                raise
            log.warning("%s: a replica did not apply the DDL in time; it will when it returns (%s)",
                        self.location, str(error).splitlines()[0])
            return []

    def _execute(self, sql: str, params: Any = None, columnar: bool = False) -> list[tuple]:
        with self._lock:
            try:
                return self._client.execute(sql, params or {}, columnar=columnar)
            except (OSError, EOFError) as error:
                self._client.disconnect()
                raise UnavailableError(f"ClickHouse at {self.location} is unreachable: {error}") from error
            except Exception as error:
                if type(error).__name__ in {"NetworkError", "SocketTimeoutError"}:
                    self._client.disconnect()
                    raise UnavailableError(f"ClickHouse at {self.location} is unreachable: {error}") from error
                raise

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(r) for r in rows]
        if rows:
            # Rows go as the second argument: inlined VALUES hang clickhouse-driver (docs/platform.md).
            self.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES", rows)

    def insert_columns(self, table: str, columns: Mapping[str, Column]) -> None:
        """One insert of whole columns: clickhouse-driver's columnar mode takes a list per column,
        so no row tuple is built, and the driver skips turning rows into columns (bench_writes
        compares it with the row path on a ClickHouse 18.16 server: about 1.3x)."""
        rows = _row_count(columns)
        if not rows:
            return
        data = [_python(values, rows) for values in columns.values()]
        # Data as the second argument, as in `insert` (inlined VALUES hang clickhouse-driver).
        self._execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES", data, columnar=True)

    def close(self) -> None:
        with self._lock:  # after a query another thread has in flight, not under it
            self._client.disconnect()


class ChdbBackend:
    """Embedded ClickHouse (chDB) on a local directory: the one-machine default.

    Only one process may open a directory at a time, so a run that writes from several worker
    processes funnels its writes through the parent."""

    scheme = "chdb"

    def __init__(self, path: str, database: str = "conceptfreq"):
        from chdb import session

        self.database = database
        self.location = f"chdb://{path}"
        try:
            self._session = session.Session(path)
        except Exception as error:  # chDB raises a bare RuntimeError when the directory is locked
            raise UnavailableError(f"cannot open the embedded store at {path}: {error} "
                                   "(is another conceptfreq process using it?)") from error
        self._lock = threading.Lock()
        # The native protocol returns Python ints; make chDB's JSON do the same for (U)Int64.
        self._session.query("SET output_format_json_quote_64bit_integers=0")

    def server_version(self) -> tuple[int, ...]:
        (version,), = self.execute("SELECT version()")
        return tuple(int(p) for p in version.split(".")[:3])

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
        if params:
            sql = sql % escape_params(params, None)
        with self._lock:
            result = self._session.query(sql, "JSONCompact")
        raw = result.bytes() if hasattr(result, "bytes") else bytes(result)
        if not raw.strip():
            return []
        return [tuple(row) for row in json.loads(raw)["data"]]

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        lines = [json.dumps(dict(zip(columns, row)), ensure_ascii=False) for row in rows]
        if lines:
            with self._lock:
                self._session.query(f"INSERT INTO {table} ({', '.join(columns)}) FORMAT JSONEachRow\n" + "\n".join(lines))

    def insert_columns(self, table: str, columns: Mapping[str, Column]) -> None:
        """One insert of whole columns as an Arrow IPC stream through chDB's streaming insert: the
        columns go over as buffers, with no per-row text to build or parse. Measured on 50,000
        text-hit rows with chDB 4.4 (26.9): JSONEachRow 0.60 s, ArrowStream 0.10 s, Arrow file
        0.29 s, Parquet 0.35 s, the Python() table function 0.12 s (2.8 s on its first call)."""
        import pyarrow as pa

        rows = _row_count(columns)
        if not rows:
            return
        if not hasattr(self._session, "send_insert"):  # chDB before its streaming insert: the row path
            self.insert(table, list(columns), zip(*(_python(values, rows) for values in columns.values())))
            return
        arrays = [_arrow(values, rows) for values in columns.values()]
        table_ = pa.Table.from_arrays(arrays, names=list(columns))
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table_.schema) as writer:
            writer.write_table(table_)
        with self._lock:
            with self._session.send_insert(f"INSERT INTO {table} ({', '.join(columns)})", "ArrowStream") as inserter:
                inserter.append(sink.getvalue().to_pybytes())
                inserter.finish()

    def close(self) -> None:
        with self._lock:  # after a query another thread has in flight, not under it
            self._session.close()


def _python(values: Column, rows: int) -> list:
    """One column as a list of Python values, one per row."""
    if isinstance(values, (str, int, float)):
        return [values] * rows
    if isinstance(values, ArrayColumn):
        return values.lists()
    if isinstance(values, RepeatedColumn):
        return [value for value, count in zip(values.values, values.counts) for _ in range(count)]
    if isinstance(values, np.ndarray):
        return values.tolist()
    return values if isinstance(values, list) else list(values)


def _arrow(values: Column, rows: int):
    """One column as an Arrow array; ClickHouse casts Arrow's types to the table's column types.
    Built from numpy buffers, because pa.array() and pa.scalar() import pandas on their first call,
    even for a numpy array: 0.3 s of a `count` run's 1.9 s, measured. pa.array() stays the path for
    anything else (None values, bools, mixed types)."""
    import pyarrow as pa

    if isinstance(values, (str, int, float)):
        values = RepeatedColumn([values], [rows])
    if isinstance(values, ArrayColumn):
        offsets = np.asarray(values.offsets)
        items = _arrow(np.asarray(values.values), len(values.values))
        if offsets[-1] < 2**31:
            return pa.ListArray.from_arrays(_numeric(offsets.astype(np.int32, copy=False)), items)
        return pa.LargeListArray.from_arrays(_numeric(offsets.astype(np.int64, copy=False)), items)
    if isinstance(values, RepeatedColumn):
        counts = np.asarray(values.counts, dtype=np.int64)
        if all(isinstance(value, str) for value in values.values):  # a dictionary of the distinct values
            distinct = {value: index for index, value in enumerate(dict.fromkeys(values.values))}
            runs = np.repeat(np.fromiter((distinct[v] for v in values.values), np.int32, len(values.values)), counts)
            return pa.DictionaryArray.from_arrays(_numeric(runs), _strings(list(distinct)))
        return _arrow(np.repeat(np.asarray(values.values), counts), rows)
    if isinstance(values, np.ndarray):
        return _numeric(values) if values.dtype.kind in "iuf" else pa.array(values)
    values = values if isinstance(values, list) else list(values)
    if values and isinstance(values[0], str):
        try:
            return _strings(values)
        except TypeError:  # not every value is a str ("".join says so in C)
            pass
    return pa.array(values)


def _numeric(values: np.ndarray):
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def _strings(values: list[str]):
    """A String array from one encode of all the values joined (no Python object per row)."""
    import pyarrow as pa

    joined = "".join(values)
    data = joined.encode()
    if len(data) == len(joined):  # ASCII: a character is a byte
        lengths = np.fromiter(map(len, values), np.int64, len(values))
    else:
        lengths = np.fromiter((len(value.encode()) for value in values), np.int64, len(values))
    offsets = np.zeros(len(values) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if len(data) < 2**31:
        return pa.StringArray.from_buffers(len(values), pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data))
    return pa.LargeStringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(data))
