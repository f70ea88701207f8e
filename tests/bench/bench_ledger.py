"""The price of a clock-independent ledger order: a ledger append reads its shards' highest seq
before it writes (adapters/store/ledger.py). Measured side by side with appends that take the
writer's clock alone (the old rule), on chDB and on a ClickHouse server, in the same run."""

from __future__ import annotations

import tempfile
import time

from conceptfreq.adapters.store import ledger, open_store
from conceptfreq.adapters.store.tables import now_seq
from conceptfreq.devservers import clickhouse_server

APPENDS, ROUNDS = 200, 3


def _per_append_ms(store, label: str) -> float:
    started = time.perf_counter()
    for i in range(APPENDS):
        store.record_state("bench", label, f"s{i % 50}", "text", "done", attempt_id=str(i), samples=1)
    return (time.perf_counter() - started) / APPENDS * 1000


def _measure(store, backend: str) -> dict:
    logical = ledger.LedgerTables._next_seq
    clock_only, with_order = [], []
    try:
        for round_ in range(ROUNDS):  # interleaved, keeping the fastest: a busy neighbour must not skew the ratio
            ledger.LedgerTables._next_seq = lambda self, table, scope, shards: now_seq()
            clock_only.append(_per_append_ms(store, f"clock{round_}"))
            ledger.LedgerTables._next_seq = logical
            with_order.append(_per_append_ms(store, f"logical{round_}"))
    finally:
        ledger.LedgerTables._next_seq = logical
    value, base = min(with_order), min(clock_only)
    return {"benchmark": "ledger", "figure": f"append, logical seq ({backend})", "value": value, "unit": "ms",
            "baseline": "append, writer's clock only", "baseline_value": base, "ratio": value / base}


def run() -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"chdb://{tmp}/store")
        try:
            rows.append(_measure(store, "chDB"))
        finally:
            store.close()
    with clickhouse_server() as server:
        store = open_store(server.url("bench_ledger"))
        try:
            rows.append(_measure(store, "ClickHouse 18.16"))
        finally:
            store.close()
    return rows
