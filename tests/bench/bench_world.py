"""The demo's world story at CI size: wall time per stage (synth, train, ingest, evaluate, report),
each as a share of the whole story measured in the same run, and training steps/s against the
same model's inference-only steps/s (forward passes of the same batches, no gradients), measured
side by side here, so the ratio says what training costs over encoding on this machine."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _row(figure: str, value: float, unit: str, baseline: str = "", baseline_value: float | None = None) -> dict:
    ratio = value / baseline_value if baseline_value else None
    return {"benchmark": "world demo", "figure": figure, "value": value, "unit": unit, "baseline": baseline,
            "baseline_value": baseline_value, "ratio": ratio}


def _steps_per_second(model: str, batch: int, steps: int, train: bool) -> float:
    import torch
    from open_clip.loss import ClipLoss

    from conceptfreq.adapters.inference.models import _open_clip, _quiet_random_init

    open_clip = _open_clip()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with _quiet_random_init():
        module = open_clip.create_model(model)
    tokens = open_clip.get_tokenizer(model)(["a photo of a kite next to two pelicans"] * batch)
    images = torch.randn(batch, 3, 64, 64)
    optimizer, loss_fn = torch.optim.AdamW(module.parameters(), lr=1e-3), ClipLoss()
    module.train(train)

    def one():
        if train:
            loss = loss_fn(*module(images, tokens))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        else:
            with torch.no_grad():
                module(images, tokens)

    one()  # warm-up: first-call allocations
    started = time.perf_counter()
    for _ in range(steps):
        one()
    return steps / (time.perf_counter() - started)


def run() -> list[dict]:
    from conceptfreq import demo

    rows = []
    scale = demo.SCALES["ci"]
    training = _steps_per_second(demo.MODEL, scale.batch_size, 10, train=True)
    inference = _steps_per_second(demo.MODEL, scale.batch_size, 10, train=False)
    rows.append(_row(f"train-clip steps/s, {demo.MODEL}, batch {scale.batch_size}, 1 thread", training, "steps/s",
                     "forward passes of the same batches, no gradients", inference))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        saved = demo.OUT, demo.CACHE
        demo.OUT, demo.CACHE = out, out / "cache"
        demo.TIMINGS.clear()
        started = time.monotonic()
        try:
            demo.world_story(scale, f"chdb://{out / 'store'}")
        finally:
            demo.OUT, demo.CACHE = saved
        total = time.monotonic() - started
    for stage, seconds in demo.TIMINGS.items():
        rows.append(_row(f"CI-sized world story ({scale.samples:,} pairs, {scale.concepts} concepts, {scale.steps} steps): {stage}",
                         seconds, "s", "the whole story, same run", total))
    rows.append(_row("CI-sized world story: total", total, "s"))
    return rows
