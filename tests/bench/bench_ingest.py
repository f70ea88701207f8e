"""Ingest end to end: `conceptfreq count` samples/s for each shard layout, wall time a user waits
(process start-up included) into a fresh embedded chDB store, beside the matcher alone on the same
captions in the same run.

Data: the 15,833 real CC-3M validation captions (../shared/data), repeated in order to fill 10 shards
of 10,000 samples (tests/bench/ingest_data.py): parquet, webdataset tar with text members only,
img2dataset tar with ~12 KB JPEGs (local file), and the same tar read through its parquet sidecar.
Then the same at 10 shards of 40,000, and from the two sizes how cost grows with the data: the
steady rate of the extra samples and the fixed cost of a run; 1 and 2 worker processes, also on
count's own clock (start-up and exit left out, since they do not run in parallel); and what a
LAION-400M text pass would take at the steady rate (it pays the fixed cost once). The store
exists (migrated before the clock starts), as a user's does after its first use. The matcher is
the cached one a second run finds (a first run on a new vocabulary builds it once;
bench_matching measures that).
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
RUNS = 3  # best of: the machine is shared and noisy (one run in two can be 25% slow)
# (layout, caption source, target samples/s at one core)
CASES = (("parquet", "shard", 500_000), ("wds-text", "shard", 300_000), ("img2dataset", "shard", 150_000),
         ("img2dataset", "sidecar", 500_000))
MATCHER = "matcher alone, same captions (in process, 1 core)"
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
    return {"seconds": seconds, "samples": summary["samples"], "peak_mib": float(peak_file.read_text()),
            "counting_s": summary["seconds"]}


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
        runs: dict[tuple, dict] = {}  # (layout, source, size): the best 1-worker run
        for size in SIZES:
            layouts: dict[str, list[str]] = {}
            for layout, source, target in CASES:
                if size != SIZES[0] and layout == "img2dataset":
                    continue  # 5 GB of JPEGs at the larger size; the smaller one shows the skip-the-payload cost
                if layout not in layouts:
                    layouts[layout] = write_layout(layout, scratch / f"data-{size}", SHARDS, size)
                result = runs[(layout, source, size)] = best(layouts[layout], source, 1, scratch)
                rate = result["samples"] / result["seconds"]
                rows.append(_row(f"count, {LABELS[(layout, source)]}, {SHARDS}x{size:,}, 1 worker (target >= {target:,}/s; "
                                 f"peak {result['peak_mib']:,.0f} MiB)", rate, "samples/s", MATCHER, alone))
            for layout in ("parquet", "wds-text"):
                one = runs[(layout, "shard", size)]
                two = best(layouts[layout], "shard", 2, scratch)
                rows.append(_row(f"count, {LABELS[(layout, 'shard')]}, {SHARDS}x{size:,}, 2 workers (target >= 1.7x 1 worker; "
                                 f"peak {two['peak_mib']:,.0f} MiB)", two["samples"] / two["seconds"], "samples/s", "same, 1 worker",
                                 one["samples"] / one["seconds"]))
                rows.append(_row(f"count, {LABELS[(layout, 'shard')]}, {SHARDS}x{size:,}, 2 workers, on count's own clock "
                                 "(start-up and exit left out)", two["samples"] / two["counting_s"], "samples/s",
                                 "same, 1 worker", one["samples"] / one["counting_s"]))
            shutil.rmtree(scratch / f"data-{size}", ignore_errors=True)
        rows += steady_rows(runs, alone)
        return rows
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def steady_rows(runs: dict[tuple, dict], alone: float) -> list[dict]:
    """How cost grows with the data, from the two sizes of each layout measured at both: the rate of
    the extra samples (what a long run goes at once started) and the fixed cost of a run (start-up,
    store, totals, exit); and the core-minutes of a LAION-400M text pass, which pays the fixed cost
    once: at that steady rate where both sizes were measured, else at the end-to-end rate."""
    rows = []
    for (layout, source), label in LABELS.items():
        small, large = runs.get((layout, source, SIZES[0])), runs.get((layout, source, SIZES[-1]))
        if small and large:
            steady = (large["samples"] - small["samples"]) / max(large["seconds"] - small["seconds"], 1e-9)
            fixed = small["seconds"] - small["samples"] / steady
            rows.append(_row(f"count, {label}: steady rate (the extra samples of {SHARDS}x{SIZES[-1]:,} over "
                             f"{SHARDS}x{SIZES[0]:,}, per extra second)", steady, "samples/s", MATCHER, alone))
            rows.append(_row(f"count, {label}: fixed cost of a run (start-up, store, totals, exit)", fixed, "s", "", None))
            rate, basis = steady, "steady rate"
        else:
            rate, basis = small["samples"] / small["seconds"], f"end-to-end rate at {SHARDS}x{SIZES[0]:,}"
        rows.append(_row(f"LAION-400M text pass, {label}, at the {basis}", LAION_400M / rate / 60, "core-minutes",
                         "at the matcher's rate", LAION_400M / alone / 60))
    return rows


if __name__ == "__main__":
    from tests.bench.__main__ import print_table

    print_table(run())
