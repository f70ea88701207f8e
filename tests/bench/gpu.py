"""`make bench-gpu` (python -m tests.bench.gpu): the tagger's images/s on a CUDA machine, end to end.

For ViT-B-32 at fp16 (seeded random weights unless --pretrained; speed does not depend on the
values), from webdataset tar bytes to top-k scores, hits and counts stored in embedded chDB,
against the packaged 2,593-concept vocabulary (one prompt per concept: the ensemble only changes
the one-off concept embeddings), top-32, the default rule:
- encode only (the reference): pixels already on the device, the forward pass plus scoring and
  top-k there (the device scorer), nothing decoded or stored;
- in process, device decode: the tagger's `--image-decoder auto` on CUDA: nvJPEG through
  torchvision, resize/crop/normalize on the GPU, top-k on the GPU (tagger/stage.py path "device");
- in process, CPU decode: Pillow in a process pool, uint8 pixels through pinned buffers, top-k on
  the GPU (path "pinned");
- through Triton: a local tritonserver (the nvidia-pytriton wheel's, python backend, instances on
  the GPU) started with a repository whose image tower takes uint8 pixels, the client sending
  batches with several in flight; skipped with a message where no tritonserver is installed.
Each end-to-end row also gives the seconds spent tagging and storing, since chDB writes are a
separate cost from the GPU path. `--models ViT-L-14:fp16` adds models; `--evaluation` adds
`conceptfreq evaluate`'s own path.

Prints a table and writes build/bench-gpu.json. Exits with a message (status 1) where no CUDA
device is present. `--smoke` runs every path on the CPU with the tiny model and a few images
(the device decoder then runs through libjpeg-turbo), to check the script without a GPU; its
figures say nothing about GPU speed. tests/integration/test_bench_gpu_smoke.py runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DEFAULT_MODELS = ("ViT-B-32:fp16",)
PATH_LABELS = {"device": "device decode (torchvision: nvJPEG on CUDA), top-k on the device",
               "pinned": "CPU decode ({workers} processes), uint8 through pinned buffers, top-k on the device",
               "host": "CPU decode ({workers} processes), top-k on the host"}
RULE = "softmax:p=0.5"
TOP_K = 32
_STARTED = time.perf_counter()


def synthetic_jpegs(n: int, size: int, seed: int = 0) -> list[bytes]:
    """Photo-like JPEGs: smooth gradients plus noise, so decoding costs what a web photo costs."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        base = np.stack([np.sin(x * rng.uniform(1, 9) + rng.uniform(0, 6)), np.cos(y * rng.uniform(1, 9)), x * y], -1)
        pixels = np.clip(127 + 90 * base + rng.normal(0, 18, (size, size, 3)), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def write_shards(tmp: Path, jpegs: list[bytes], total: int, per_shard: int) -> list[str]:
    from conceptfreq.synthetic import tar_bytes

    shards = []
    for shard in range(-(-total // per_shard)):
        path = tmp / f"bench-{shard:05d}.tar"
        keys = [f"{shard:05d}{i:05d}" for i in range(min(per_shard, total - shard * per_shard))]
        path.write_bytes(tar_bytes([m for i, key in enumerate(keys)
                                    for m in ((f"{key}.txt", b"a photo"), (f"{key}.jpg", jpegs[(shard * per_shard + i) % len(jpegs)]))]))
        shards.append(str(path))
    return shards


def _sync(device: str) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def encode_only(backend, index, batch: int, rounds: int) -> float:
    """Device-resident pixels through the device scorer: the ceiling for every end-to-end row."""
    import torch

    from conceptfreq.adapters.inference.device_scoring import DeviceScorer

    scorer = DeviceScorer(backend, index.embeddings, index.concept_ids, k=TOP_K, batch_size=batch)
    generator = torch.Generator(device="cpu").manual_seed(0)
    pixels = torch.randint(0, 256, (batch, 3, *backend.image_size), generator=generator, dtype=torch.uint8).to(backend.device)
    scorer.submit_device(pixels)  # warm-up: cuDNN autotuning, allocator
    scorer.drain()
    started = time.perf_counter()
    for _ in range(rounds):
        scorer.submit_device(pixels)
        list(scorer.finished())
    scorer.drain()
    _sync(backend.device)
    return rounds * batch / (time.perf_counter() - started)


def tag_and_store(backend, index, shards: list[str], *, batch: int, workers: int, decoder: str, store, dataset: str
                  ) -> dict:
    """The tagger's own path over `shards`, each result written to the store: images/s and the split."""
    from conceptfreq.core.tagging import parse_rule
    from conceptfreq.tagger.stage import DecodeOptions, TagImages, TagShard

    images = TagImages(backend, top_k=TOP_K, batch_size=batch,
                       decode=DecodeOptions(workers=workers, executor="process" if workers else "thread", chunk=32, decoder=decoder))
    stage = TagShard(images)
    rules = store.ensure_rule(dataset, index.vocabulary_version, parse_rule(RULE))
    try:
        store.write_image_shard(stage.run(dataset, shards[0], index, rules))  # warm-up: workers, autotuning, the tables
        tagging = storing = 0.0
        tagged = 0
        for shard in shards:
            started = time.perf_counter()
            result = stage.run(dataset, shard, index, rules)
            tagged_at = time.perf_counter()
            store.write_image_shard(result)
            storing += time.perf_counter() - tagged_at
            tagging += tagged_at - started
            tagged += len(result.keys)
        stored = store.visible_image_attempts(dataset, index.vocabulary_version)
        if len(stored) != len(shards):
            raise RuntimeError(f"{len(stored)} of {len(shards)} shards stored")
        return {"path": images.path, "images": tagged, "tag_s": tagging, "store_s": storing,
                "images_per_s": tagged / (tagging + storing)}
    finally:
        images.close()


@contextlib.contextmanager
def local_triton(tmp: Path, model: str, pretrained, precision: str, kind: str, batch: int):
    """A tritonserver serving `model` with a uint8 image input, or None where none is installed."""
    from conceptfreq.adapters.inference.repository import write_model_repository

    try:
        from conceptfreq.devservers import triton_server
        from conceptfreq.devservers.triton import _pytriton_root

        _pytriton_root()
    except (ImportError, RuntimeError) as error:
        print(f"  [{time.perf_counter() - _STARTED:5.0f} s] no tritonserver here ({error}): Triton rows skipped, in-process only", file=sys.stderr)
        yield None
        return
    repository = tmp / f"triton-{model}-{precision}"
    write_model_repository(repository, model, pretrained, precision_name=precision, kind=kind, max_batch_size=batch,
                           image_input="uint8", max_queue_delay_us=1000, cache_dir=str(tmp / "cache"))
    with triton_server(repository, start_timeout_s=300) as server:
        print(f"  [{time.perf_counter() - _STARTED:5.0f} s] tritonserver ready at {server.url}", file=sys.stderr)
        yield server


def evaluation(model: str, precision: str, device: str, tmp: Path, images: int, batch: int, workers: int, pretrained) -> float:
    from conceptfreq.adapters.store import open_store
    from conceptfreq.core.vocabulary import from_names
    from conceptfreq.evaluator.plan import plan
    from conceptfreq.evaluator.run import Evaluator, InferenceConfig, run_local
    from conceptfreq.evaluator.synthetic import samples, write_wds

    names = ["dog", "cat", "tench", "goose", "church", "parachute", "golf ball", "chain saw", "french horn", "garbage truck"]
    data = tmp / "eval-wds"
    if not data.exists():
        write_wds(data, names, samples(len(names), -(-images // len(names)), seed=2, size=256), shards=max(1, images // 1024))
    vocabulary = from_names([[n] for n in names])
    store = open_store(f"chdb://{tmp / f'eval-store-{model}-{precision}'}")
    evaluator = Evaluator(store, InferenceConfig(f"torch://{device}", batch, workers=workers, cache_dir=str(tmp / "cache")))
    try:
        store.save_vocabulary(vocabulary)
        spec, _ = plan(str(data), model=model, pretrained=pretrained, precision=precision, vocabulary=vocabulary, prompts="ensemble")
        evaluator.stage(spec)
        summary = run_local(evaluator, spec, progress=False)
        return summary.images / summary.seconds
    finally:
        evaluator.close()
        store.close()


def _row(figure: str, value: float, baseline: float | None, **extra) -> dict:
    row = {"benchmark": "gpu", "figure": figure, "value": value, "unit": "images/s"}
    if baseline:
        row.update(baseline="encode only", baseline_value=baseline, ratio=value / baseline)
    row.update(extra)
    print(f"  [{time.perf_counter() - _STARTED:5.0f} s] {figure}: {value:,.0f} images/s", file=sys.stderr)
    return row


def measure_model(model: str, precision: str, *, device: str, pretrained, args, tmp: Path, jpegs: list[bytes], name: str) -> list[dict]:
    from conceptfreq.adapters.inference import open_inference
    from conceptfreq.adapters.store import open_store
    from conceptfreq.core.prompts import make_prompts
    from conceptfreq.core.vocabulary import default, from_names
    from conceptfreq.tagger.stage import ConceptIndexes

    label = f"{model} {precision} on {name}"
    shards = write_shards(tmp, jpegs, args.images, args.per_shard)
    vocabulary = default()
    if args.concepts:
        # Smoke runs: a slice of the vocabulary, since the CPU encodes every concept's prompt twice
        # (in process and through Triton's text tower) and that, not tagging, would dominate.
        vocabulary = from_names([[concept.name] for concept in list(vocabulary)[:args.concepts]], name="bench-smoke")
    store = open_store(f"chdb://{tmp / f'store-{model}-{precision}'}")
    rows = []
    backend = open_inference(f"torch://{device}", model, pretrained, precision, batch_size=args.batch)
    try:
        store.save_vocabulary(vocabulary)
        index = ConceptIndexes(backend, make_prompts("simple"), str(tmp / "cache")).get(vocabulary)
        encode = encode_only(backend, index, args.batch, max(3, args.images // args.batch // 2))
        rows.append(_row(f"{label}: encode only (pixels on the device, score + top-{TOP_K}), batch {args.batch}", encode, None))
        for decoder, workers in (("torchvision", 0), ("pil", args.workers)):
            result = tag_and_store(backend, index, shards, batch=args.batch, workers=workers, decoder=decoder, store=store,
                                   dataset=f"bench-{decoder}")
            rows.append(_row(f"{label}: in process, {PATH_LABELS[result['path']].format(workers=workers)}, tar -> chDB", result["images_per_s"], encode,
                             tag_s=result["tag_s"], store_s=result["store_s"], images=result["images"], path=result["path"]))
    finally:
        backend.close()
    kind = "gpu" if device.startswith("cuda") else "cpu"
    with local_triton(tmp, model, pretrained, precision, kind, args.batch) as server:
        if server is not None:
            remote = open_inference(server.url, model, pretrained, precision, in_flight=args.in_flight)
            try:
                index = ConceptIndexes(remote, make_prompts("simple"), str(tmp / "cache")).get(vocabulary)
                result = tag_and_store(remote, index, shards, batch=args.batch, workers=args.workers, decoder="pil", store=store,
                                       dataset="bench-triton")
                rows.append(_row(f"{label}: through Triton (uint8 wire, {args.in_flight} batches in flight, CPU decode), tar -> chDB",
                                 result["images_per_s"], rows[0]["value"], tag_s=result["tag_s"], store_s=result["store_s"],
                                 images=result["images"]))
            finally:
                remote.close()
    store.close()
    if args.evaluation:
        value = evaluation(model, precision, device, tmp, args.images, args.batch, args.workers, pretrained)
        rows.append(_row(f"{label}: evaluate end to end (webdataset, 256 px, exact preprocessing)", value, rows[0]["value"]))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32768, help="images per end-to-end measurement (default 32768)")
    parser.add_argument("--per-shard", type=int, default=8192, help="images per tar shard (default 8192)")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--in-flight", type=int, default=4, help="Triton batches on the wire at once")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2), help="CPU decode processes")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="MODEL:PRECISION")
    parser.add_argument("--pretrained", default=None, help="weights for every model (default: seeded random)")
    parser.add_argument("--evaluation", action="store_true", help="also measure `conceptfreq evaluate`'s path")
    parser.add_argument("--concepts", type=int, default=0, help="score against the first N concepts only (default: all)")
    parser.add_argument("--smoke", action="store_true", help="check the script on the CPU: tiny model, few images")
    parser.add_argument("--out", default=None, help="where the JSON rows go (default build/bench-gpu[-smoke].json)")
    args = parser.parse_args(argv)

    import torch

    from tests.bench.__main__ import print_table

    device, pretrained = "cuda", args.pretrained
    models = [tuple(m.split(":", 1)) if ":" in m else (m, "fp16") for m in args.models]
    tmp_root = tempfile.TemporaryDirectory(prefix="bench-gpu-")
    tmp = Path(tmp_root.name)
    if args.smoke:
        from conceptfreq.adapters.inference.models import TINY_MODEL, tiny_checkpoint

        models, device, pretrained = [(TINY_MODEL, "fp32")], "cpu", str(tiny_checkpoint(tmp))
        args.images, args.per_shard, args.batch, args.workers, args.in_flight, args.concepts = 64, 32, 16, 1, 2, 40
    elif not torch.cuda.is_available():
        print("bench-gpu: no CUDA device here (torch.cuda.is_available() is False); run it on a GPU machine, "
              "or `python -m tests.bench.gpu --smoke` to check the script on the CPU", file=sys.stderr)
        return 1
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu (smoke)"
    print(f"bench-gpu on {name}; {args.images} images per run in shards of {args.per_shard}, batch {args.batch}, "
          f"{args.workers} decode processes", file=sys.stderr)
    jpegs = synthetic_jpegs(min(512, args.images), 256)
    started = time.perf_counter()
    rows = []
    with tmp_root:
        for model, precision in models:
            rows += measure_model(model, precision, device=device, pretrained=pretrained, args=args, tmp=tmp, jpegs=jpegs, name=name)
            if device == "cuda":
                torch.cuda.empty_cache()
    print_table(rows)
    out = Path(args.out) if args.out else Path("build") / ("bench-gpu-smoke.json" if args.smoke else "bench-gpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"\n(rows also in {out}; {time.perf_counter() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
