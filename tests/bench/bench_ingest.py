"""Ingest end to end: `conceptfreq count` samples/s for each shard layout, wall time a user waits
(process start-up included) into a fresh embedded chDB store, beside the matcher alone on the same
captions in the same run.

Data: the 15,833 real CC-3M validation captions (../shared/data), repeated in order to fill 10 shards
of 10,000 samples (tests/bench/ingest_data.py): parquet, webdataset tar with text members only,
img2dataset tar with ~12 KB JPEGs (local file), and the same tar read through its parquet sidecar.
Then the same at 10 shards of 40,000 (how cost grows with the data), 1 and 2 worker processes, and
what a LAION-400M text pass would take at each measured rate. The store exists (migrated before
the clock starts), as a user's does after its first use. The matcher is the cached one a
second run finds (a first run on a new vocabulary builds it once; bench_matching measures that).
Peak memory is the parent process's VmHWM (with 2 workers, each worker's is about the same).
Skips, with a row saying so, when the reference data is not beside the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.ingest_data import CAPTIONS_TSV, write_layout

SHARDS = 10
SIZES = (10_000, 40_000)
LAION_400M = 400_000_000
RUNS = 2  # best of: the machine is shared and noisy
# (layout, caption source, target samples/s at one core)
CASES = (("parquet", "shard", 500_000), ("wds-text", "shard", 300_000), ("img2dataset", "shard", 150_000),
         ("img2dataset", "sidecar", 500_000))
LABELS = {("parquet", "shard"): "parquet (caption column)", ("wds-text", "shard"): "webdataset tar, .txt + .json",
          ("img2dataset", "shard"): "img2dataset tar, 12 KB .jpg + .txt + .json",
          ("img2dataset", "sidecar"): "img2dataset tar via its parquet sidecar"}


def count(paths: list[str], source: str, workers: int, scratch: Path) -> dict:
    """One `conceptfreq count` in a fresh process, into a new store already migrated (as a user's
    store is after its first use): wall seconds, samples, peak MiB."""
    store = scratch / f"store-{time.monotonic_ns()}"
    subprocess.run([sys.executable, "-m", "conceptfreq.cli", "migrate", "--store", f"chdb://{store}"], check=True, capture_output=True)
    peak_file = scratch / "peak"
    pattern = paths[0] if len(paths) == 1 else "{" + ",".join(paths) + "}"
    command = [sys.executable, "-m", "tests.bench.peak", "count", "--dataset", "bench", "--shards", pattern,
               "--store", f"chdb://{store}", "--workers", str(workers), "--captions-from", source, "--json", "--no-progress"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "CONCEPTFREQ_BENCH_PEAK_FILE": str(peak_file)})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"count failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    shutil.rmtree(store, ignore_errors=True)
    return {"seconds": seconds, "samples": summary["samples"], "peak_mib": float(peak_file.read_text())}


def best(paths: list[str], source: str, workers: int, scratch: Path) -> dict:
    return min((count(paths, source, workers, scratch) for _ in range(RUNS)), key=lambda r: r["seconds"])


def matcher_rate(captions: list[str]) -> float:
    """Captions/s of the default matcher alone (built before the clock starts), best of 3."""
    from conceptfreq.core.matching import make_matcher
    from conceptfreq.core.vocabulary import default

    matcher = make_matcher(default())
    rates = []
    for _ in range(3):
        started = time.process_time()
        matcher.match(captions)
        rates.append(len(captions) / (time.process_time() - started))
    return max(rates)


def _row(figure: str, value: float, unit: str, baseline: str, baseline_value: float | None) -> dict:
    return {"benchmark": "ingest", "figure": figure, "value": value, "unit": unit, "baseline": baseline,
            "baseline_value": baseline_value, "ratio": value / baseline_value if baseline_value else None}


def run() -> list[dict]:
    if not CAPTIONS_TSV.exists():
        return [_row(f"skipped: {CAPTIONS_TSV} not found", 0.0, "", "", None)]
    scratch = Path(tempfile.mkdtemp(prefix="conceptfreq-bench-ingest-"))
    rows: list[dict] = []
    try:
        with open(CAPTIONS_TSV, encoding="utf-8") as f:
            captions = [line.split("\t", 1)[0] for line in f]
        captions = (captions * (SHARDS * SIZES[0] // len(captions) + 1))[:SHARDS * SIZES[0]]
        alone = matcher_rate(captions)
        matcher = "matcher alone, same captions (in process, 1 core)"
        rates: dict[tuple, float] = {}
        for size in SIZES:
            layouts: dict[str, list[str]] = {}
            for layout, source, target in CASES:
                if size != SIZES[0] and layout == "img2dataset":
                    continue  # 5 GB of JPEGs at the larger size; the smaller one shows the skip-the-payload cost
                if layout not in layouts:
                    layouts[layout] = write_layout(layout, scratch / f"data-{size}", SHARDS, size)
                result = best(layouts[layout], source, 1, scratch)
                rate = result["samples"] / result["seconds"]
                rates[(layout, source, size)] = rate
                rows.append(_row(f"count, {LABELS[(layout, source)]}, {SHARDS}x{size:,}, 1 worker (target >= {target:,}/s; "
                                 f"peak {result['peak_mib']:,.0f} MiB)", rate, "samples/s", matcher, alone))
            for layout in ("parquet", "wds-text"):
                two = best(layouts[layout], "shard", 2, scratch)
                rate = two["samples"] / two["seconds"]
                rows.append(_row(f"count, {LABELS[(layout, 'shard')]}, {SHARDS}x{size:,}, 2 workers (target >= 1.7x 1 worker; "
                                 f"peak {two['peak_mib']:,.0f} MiB)", rate, "samples/s", "same, 1 worker",
                                 rates[(layout, "shard", size)]))
            shutil.rmtree(scratch / f"data-{size}", ignore_errors=True)
        for (layout, source, size), rate in rates.items():
            if size == SIZES[-1] or layout == "img2dataset":
                rows.append(_row(f"LAION-400M text pass at the rate of {LABELS[(layout, source)]}, {SHARDS}x{size:,}",
                                 LAION_400M / rate / 60, "core-minutes", "at the matcher's rate", LAION_400M / alone / 60))
        return rows
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    from tests.bench.__main__ import print_table

    print_table(run())
