"""Store writes and `count --workers N`, each beside its baseline in the same run:

- `write_shard` of real text-stage results (CC-3M captions, 10,000 samples a shard): the columnar
  insert against the row path it replaced (row tuples; JSONEachRow lines on chDB), on embedded
  chDB and on a ClickHouse server (conceptfreq.devservers);
- `count_shards` with 2 workers against 1, the shard loop alone (minus the matcher's build), on
  parquet shards and on webdataset text tars (tests/bench/ingest_data.py); the whole command's wall
  time with 1 and 2 workers is bench_ingest's."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from conceptfreq.adapters.store import open_store
from conceptfreq.core.counting import DONE, ShardResult
from conceptfreq.core.matching import DEFAULT_METHOD
from conceptfreq.core.vocabulary import default
from conceptfreq.devservers import clickhouse_server
from conceptfreq.parser.stage import ParseShard
from tests.bench.bench_pipeline import in_process_rate
from tests.bench.ingest_data import write_layout

SHARDS, SAMPLES_PER_SHARD = 10, 10_000
WRITE_ROUNDS = 3


def _row(figure: str, value: float, unit: str, baseline: str, baseline_value: float) -> dict:
    return {"benchmark": "writes", "figure": figure, "value": value, "unit": unit, "baseline": baseline,
            "baseline_value": baseline_value, "ratio": value / baseline_value if baseline_value else None}


def write_shard_rows(store, result: ShardResult) -> None:
    """The row path `write_shard` had before the columnar writes: one Python tuple per row."""
    store._insert("text_hits", ["dataset", "vocabulary_version", "shard", "attempt_id", "sample_key", "concept_ids"],
                  ((result.dataset, result.vocabulary_version, result.shard, result.attempt_id, key, concepts)
                   for key, concepts in result.hits))
    store._insert("shard_concept_counts", ["dataset", "vocabulary_version", "shard", "stage", "attempt_id", "kind", "rule",
                                           "concept_id", "count"],
                  ((result.dataset, result.vocabulary_version, result.shard, result.stage, result.attempt_id, result.stage,
                    result.rule, concept, count) for concept, count in sorted(result.counts.items())))
    store.record_state(result.dataset, result.vocabulary_version, result.shard, result.stage, DONE,
                       attempt_id=result.attempt_id, samples=result.samples, skip_reasons=result.skipped, notes=result.notes)


def write_rates(store_url: str, results: list[ShardResult], vocabulary) -> tuple[float, float]:
    """(columnar, row) rows/s of write_shard, best of WRITE_ROUNDS, the two paths interleaved."""
    store = open_store(store_url)
    try:
        store.save_vocabulary(vocabulary)
        store.announce(results[0].dataset, vocabulary.version, [r.shard for r in results])
        rows = sum(len(r.hits) + len(r.counts) for r in results)
        best = {"columnar": float("inf"), "rows": float("inf")}
        for _ in range(WRITE_ROUNDS):
            for path, write in (("columnar", store.write_shard), ("rows", lambda r: write_shard_rows(store, r))):
                fresh = [dataclasses.replace(r, attempt_id=uuid.uuid4().hex) for r in results]
                started = time.perf_counter()
                for result in fresh:
                    write(result)
                best[path] = min(best[path], time.perf_counter() - started)
        return rows / best["columnar"], rows / best["rows"]
    finally:
        store.close()


def loop_rate(shards: list[str], workers: int, store_dir: Path, vocabulary) -> float:
    """samples/s of the shard loop alone, in a fresh store: how it scales, whatever start-up costs."""
    shutil.rmtree(store_dir, ignore_errors=True)
    return in_process_rate(f"chdb://{store_dir}", shards, vocabulary, workers)


def run() -> list[dict]:
    vocabulary = default()
    tmp = Path(tempfile.mkdtemp(prefix="conceptfreq-bench-writes-"))
    out: list[dict] = []
    try:
        layouts = {layout: write_layout(layout, tmp, SHARDS, SAMPLES_PER_SHARD) for layout in ("parquet", "wds-text")}
        parse = ParseShard(vocabulary, DEFAULT_METHOD, "caption")
        results = [parse.run("bench", shard) for shard in layouts["parquet"][:3]]
        hit_rows = sum(len(r.hits) for r in results) // len(results)
        with clickhouse_server() as clickhouse:
            for name, url in (("chDB", f"chdb://{tmp / 'writes'}"), ("ClickHouse 18.16 server", clickhouse.url("bench_writes"))):
                columnar, rows = write_rates(url, results, vocabulary)
                out.append(_row(f"write_shard, {name} ({hit_rows:,} hit rows a shard), best of {WRITE_ROUNDS}", columnar,
                                "rows/s", "row path (tuples / JSONEachRow), same run", rows))
        for layout, paths in layouts.items():
            rates = {1: 0.0, 2: 0.0}
            for _ in range(2):
                for workers in (1, 2):
                    rates[workers] = max(rates[workers], loop_rate(paths, workers, tmp / "loop-store", vocabulary))
            out.append(_row(f"count_shards, 2 workers, {layout}: shard loop without start-up (best of 2)", rates[2],
                            "samples/s", "1 worker, same run", rates[1]))
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    from tests.bench import print_table

    print_table(run())
