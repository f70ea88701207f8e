"""Inference and evaluation on this CPU: `conceptfreq evaluate` images/s end to end (read, decode,
preprocess, encode, count, store) against the bare encode rate, for the tiny CLIP and ViT-B-32;
and images/s through a real Triton server against in process at batch 64, with Triton's overhead
ratio (in-process rate / Triton rate; target <= 1.15).

Weights: the project's tiny checkpoint, and ViT-B-32 with seeded random weights (no hub here):
speed does not depend on the values. Input: synthetic ImageFolder sets of 256 px JPEGs. The two
sides of each ratio run in alternation in the same run, because this machine is noisy."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BATCH = 64
IMAGE_PX = 256
# (model, eval images, Triton comparison rounds): ViT-B-32 costs ~60 ms an image on two cores.
MODELS = (("conceptfreq-tiny", 640, 12), ("ViT-B-32", 128, 1))


def _row(figure: str, value: float, unit: str, baseline: str = "", baseline_value: float | None = None,
         ratio: float | None = None) -> dict:
    if ratio is None and baseline_value:
        ratio = value / baseline_value
    return {"benchmark": "inference", "figure": figure, "value": value, "unit": unit, "baseline": baseline,
            "baseline_value": baseline_value, "ratio": ratio}


def _eval_set(root: Path, images: int) -> Path:
    from conceptfreq.evaluator.synthetic import samples, write_imagefolder

    names = ["dog", "cat", "tench", "goose", "church", "parachute", "golf ball", "chain saw"]
    per_class = -(-images // len(names))
    return write_imagefolder(root, names, samples(len(names), per_class, seed=1, size=IMAGE_PX))


def _encode_rate(backend, pixels: np.ndarray, rounds: int, warm_up: bool = True) -> float:
    if warm_up:
        backend.encode_images(pixels[:BATCH])  # first calls allocate
    started = time.perf_counter()
    for _ in range(rounds):
        backend.encode_images(pixels[:BATCH])
    return rounds * BATCH / (time.perf_counter() - started)


def _triton_overhead(remote, pixels: np.ndarray, rounds: int) -> float:
    """The client's wall time over the model's compute time inside the server (Triton's own
    statistics), for the same requests: what Triton adds (transfer, queueing, the python stub's
    IPC), measured without the noise of other processes between two separate runs."""
    client, name = remote._connect(), remote._names["image"]

    def compute_ns() -> int:
        stats = client.get_inference_statistics(model_name=name, as_json=True)["model_stats"][0]["inference_stats"]
        return int(stats["compute_infer"].get("ns", 0))

    before, wall = compute_ns(), 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        remote.encode_images(pixels[:BATCH])
        wall += time.perf_counter() - started
    return wall / ((compute_ns() - before) / 1e9)


def _encode_seconds() -> float:
    """Seconds spent in torch:// image encoding so far in this process (the backend's own histogram)."""
    from conceptfreq.adapters.metrics import INFERENCE_SECONDS

    return INFERENCE_SECONDS.labels("torch", "image")._sum.get()


def _evaluate(tmp: Path, model: str, pretrained: str | None, data: Path) -> tuple[float, float, int]:
    """(images/s end to end, images/s of the encode calls within the same run, images)."""
    from conceptfreq.adapters.store import open_store
    from conceptfreq.core.vocabulary import from_names
    from conceptfreq.evaluator.plan import plan
    from conceptfreq.evaluator.run import Evaluator, InferenceConfig, run_local

    vocabulary = from_names([[p.name.replace("_", " ")] for p in sorted(data.iterdir())])
    store = open_store(f"chdb://{tmp / ('store-' + model)}")
    evaluator = Evaluator(store, InferenceConfig("torch://cpu", BATCH, workers=2, cache_dir=str(tmp / "cache")))
    try:
        store.save_vocabulary(vocabulary)
        spec, _ = plan(str(data), model=model, pretrained=pretrained, precision="fp32", vocabulary=vocabulary, prompts="simple",
                       data_options={"shard_size": 128})
        evaluator.stage(spec)  # model load and class embeddings: once per evaluation, not per image
        encoding = _encode_seconds()
        summary = run_local(evaluator, spec, progress=False)
        return summary.images / summary.seconds, summary.images / (_encode_seconds() - encoding), summary.images
    finally:
        evaluator.close()
        store.close()


def run() -> list[dict]:
    from conceptfreq.adapters.images import ImageDecoder
    from conceptfreq.adapters.inference import open_inference
    from conceptfreq.adapters.inference.models import tiny_checkpoint
    from conceptfreq.adapters.inference.repository import write_model_repository
    from conceptfreq.devservers import triton_server

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        tmp = Path(tmp)
        tiny = str(tiny_checkpoint(tmp / "weights"))
        weights = {"conceptfreq-tiny": tiny, "ViT-B-32": None}
        repository = tmp / "triton"
        for model, pretrained in weights.items():
            write_model_repository(repository, model, pretrained, kind="cpu", max_batch_size=BATCH)
        for model, images, _ in MODELS:
            data = _eval_set(tmp / f"eval-{model}", images)
            rate, encode, n = _evaluate(tmp, model, weights[model], data)
            local = open_inference("torch://cpu", model, weights[model])
            sample = [p.read_bytes() for p in sorted(data.rglob("*.jpg"))[:BATCH]]
            decoder = ImageDecoder(local.preprocess)
            started = time.perf_counter()
            pixels = np.stack([decoder(d).pixels for d in sample])
            decode_rate = len(sample) / (time.perf_counter() - started)
            rows.append(_row(f"{model}: evaluate end to end ({n} images of {IMAGE_PX} px, batch {BATCH}, 2 decode threads)",
                             rate, "images/s", "its encode calls alone (same run)", encode))
            rows.append(_row(f"{model}: decode + preprocess, one thread ({IMAGE_PX} px JPEG -> {local.image_size[0]} px)",
                             decode_rate, "images/s"))
            local.close()

        with triton_server(repository) as server:
            for model, _, rounds in MODELS:
                local = open_inference("torch://cpu", model, weights[model])
                remote = open_inference(server.url, model, weights[model])
                pixels = np.random.default_rng(0).standard_normal((BATCH, 3, *local.image_size)).astype(np.float32)
                local_rate = remote_rate = 0.0
                for turn in range(3):  # alternate the two sides; keep each side's best
                    local_rate = max(local_rate, _encode_rate(local, pixels, rounds, warm_up=turn == 0))
                    remote_rate = max(remote_rate, _encode_rate(remote, pixels, rounds, warm_up=turn == 0))
                rows.append(_row(f"{model}: encode through Triton (python backend, gRPC, batch {BATCH})", remote_rate, "images/s",
                                 "in process (torch://)", local_rate))
                rows.append(_row(f"{model}: Triton overhead ratio at batch {BATCH}, side by side (target <= 1.15)",
                                 local_rate / remote_rate, "x", ratio=local_rate / remote_rate))
                overhead = _triton_overhead(remote, pixels, rounds)
                rows.append(_row(f"{model}: Triton overhead ratio at batch {BATCH}, client time / model compute in the server",
                                 overhead, "x", ratio=overhead))
                remote.close()
                local.close()
    return rows


if __name__ == "__main__":
    from tests.bench.__main__ import print_table

    print_table(run())
