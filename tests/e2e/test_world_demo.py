"""The demo's world story at CI size, end to end through the real CLI: synth -> train-clip ->
ingest (parser, tagger with the trained model, counter; chDB, in-process bus) -> evaluate -> report
-> world-report. Asserts the finding itself (a positive, significant slope of accuracy against log
true frequency) and floors on the counts' precision and recall against the ground truth.

The floors are set well below what this world gives (the ones measured are in the report of the run), so
they catch a broken stage, not noise: text matching is exact up to misaligned captions, and image
tags come from a small model trained for a minute."""

from __future__ import annotations

import pytest

from conceptfreq import demo

# Text hits are the caption's own concepts, so they are exact: only a matcher bug lowers them.
TEXT_FLOOR = 0.99
# Image tags come from the trained model: precision and recall floors for a working tagger.
IMAGE_PRECISION_FLOOR, IMAGE_RECALL_FLOOR = 0.5, 0.3


@pytest.fixture(scope="module")
def world_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    saved = demo.OUT, demo.CACHE
    demo.OUT, demo.CACHE = out, out / "cache"
    try:
        result = demo.world_story(demo.SCALES["ci"], f"chdb://{out / 'store'}")
    finally:
        demo.OUT, demo.CACHE = saved
    return result, out


def test_accuracy_rises_log_linearly_with_true_frequency(world_result):
    result, _ = world_result
    trend = {t["frequency"]: t for t in result["trends"]}["true matched"]["per_concept"]
    low, _ = trend["slope_ci"]
    assert trend["slope_per_decade"] > 0 and low > 0, trend
    assert trend["ols_slope_p_value"] < 0.05, trend


def test_counts_are_close_to_the_ground_truth(world_result):
    result, _ = world_result
    counts = {row["kind"]: row for row in result["counts"]}
    assert counts["text"]["precision"] >= TEXT_FLOOR and counts["text"]["recall"] >= TEXT_FLOOR, counts["text"]
    assert counts["image"]["precision"] >= IMAGE_PRECISION_FLOOR, counts["image"]
    assert counts["image"]["recall"] >= IMAGE_RECALL_FLOOR, counts["image"]
    assert counts["matched"]["precision"] >= IMAGE_PRECISION_FLOOR, counts["matched"]


def test_the_story_writes_its_report_and_plot(world_result):
    # Its wall time per stage is measured by tests/bench/bench_world.py, not asserted here.
    _, out = world_result
    assert (out / "report" / "report.html").stat().st_size > 1000
    assert (out / "report" / "trend-truth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
