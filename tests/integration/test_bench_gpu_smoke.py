"""`make bench-gpu`'s script cannot rot: its --smoke mode runs every path (encode only, device
decode, CPU decode, a real local Triton with the uint8 wire) on the CPU with the tiny model, stores
into chDB, and writes its rows. The figures are not checked: on a CPU they say nothing about a GPU."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.paths import REPO


def test_the_gpu_benchmark_smoke_mode_runs_every_path(tmp_path):
    out = tmp_path / "bench-gpu-smoke.json"
    done = subprocess.run([sys.executable, "-m", "tests.bench.gpu", "--smoke", "--out", str(out)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text())
    figures = [row["figure"] for row in rows]
    assert len(rows) == 4, figures
    assert "encode only" in figures[0] and "device decode" in figures[1] and "CPU decode" in figures[2] and "Triton" in figures[3]
    assert [row.get("path") for row in rows[1:3]] == ["device", "host"]
    # Every end-to-end row tagged and stored all 64 images, and its rate is that count over its time.
    for row in rows[1:]:
        assert row["images"] == 64 and row["value"] > 0 and row["baseline"] == "encode only"
        assert abs(row["value"] - 64 / (row["tag_s"] + row["store_s"])) < 1e-6 * row["value"]
    assert "encode only" in done.stdout and "through Triton" in done.stdout
