"""`make bench-gpu` (python -m tests.bench.gpu): image throughput on a CUDA machine.

For ViT-B-32 fp16, ViT-B-32 bf16 and ViT-L-14 fp16 (seeded random weights unless --pretrained;
speed does not depend on the values), at batch 256:
- encode only: preprocessed pixels already on the host, the GPU forward pass plus transfers;
- end to end, CPU decode: synthetic JPEGs decoded and preprocessed by open_clip's transform in a
  process pool (the tagger's ImageDecoder, JPEG draft mode on), overlapped with the GPU;
- end to end, GPU decode: nvJPEG through torchvision.io.decode_jpeg, then resize, crop and
  normalize on the GPU (close to, but not bit-equal with, open_clip's PIL transform);
- tagger end to end: the tagger's own path (webdataset shards, process-pool decode, encode, scores
  against the 2,593-concept vocabulary, top-32, the default rule; no store write);
- evaluation: `conceptfreq evaluate`'s own path (read shards, decode with exact open_clip
  preprocessing, encode, count, store) on a synthetic webdataset eval set.

Prints a table and writes build/bench-gpu.json. Exits with a message (status 1) where no CUDA
device is present. `--smoke` runs every path on the CPU with the tiny model and a few images, to
check the script itself on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CONFIGS = (("ViT-B-32", "fp16"), ("ViT-B-32", "bf16"), ("ViT-L-14", "fp16"))


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


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def encode_only(backend, jpegs: list[bytes], batch: int, rounds: int) -> float:
    from conceptfreq.adapters.images import ImageDecoder

    decoder = ImageDecoder(backend.preprocess)
    pixels = np.stack([decoder(jpegs[i % len(jpegs)]).pixels for i in range(batch)])
    backend.encode_images(pixels)  # warm-up: cuDNN autotuning, allocator
    started = time.perf_counter()
    for _ in range(rounds):
        backend.encode_images(pixels)
    return rounds * batch / (time.perf_counter() - started)


def cpu_decode_end_to_end(backend, jpegs: list[bytes], batch: int, total: int, workers: int) -> float:
    from conceptfreq.adapters.images import DecodePool, ImageDecoder

    decoder = ImageDecoder(backend.preprocess, draft_size=tuple(backend.image_size[::-1]))
    stream = (jpegs[i % len(jpegs)] for i in range(total))
    with DecodePool(decoder, workers=workers, executor="process", chunk=32, window=4 * workers) as pool:
        warm = [d.pixels for _, d in zip(range(batch), pool.map(jpegs[:batch]))]
        backend.encode_images(np.stack(warm))
        started = time.perf_counter()
        pending = []
        for decoded in pool.map(stream):
            pending.append(decoded.pixels)
            if len(pending) == batch:
                backend.encode_images(np.stack(pending))
                pending = []
        if pending:
            backend.encode_images(np.stack(pending))
    return total / (time.perf_counter() - started)


def gpu_decode_end_to_end(backend, jpegs: list[bytes], batch: int, total: int) -> float:
    import torch
    import torch.nn.functional as F
    from torchvision.io import decode_jpeg

    device = backend.device
    cfg = backend._loaded.preprocess_cfg
    height, width = backend.image_size
    mean = torch.tensor(cfg["mean"], device=device).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"], device=device).view(1, 3, 1, 1)
    encoded = [torch.frombuffer(bytearray(j), dtype=torch.uint8) for j in jpegs]
    module, dtype = backend._loaded.module, backend._loaded.input_dtype

    def one_batch(start: int) -> None:
        chunk = [encoded[(start + i) % len(encoded)] for i in range(batch)]
        images = decode_jpeg(chunk, device=device)  # nvJPEG on CUDA; libjpeg-turbo on the CPU
        resized = []
        for image in images:
            h, w = image.shape[-2:]
            scale = max(height / h, width / w)  # open_clip's "shortest" resize, then a center crop
            image = F.interpolate(image[None].float(), size=(max(height, round(h * scale)), max(width, round(w * scale))),
                                  mode="bicubic", align_corners=False, antialias=True)
            top, left = (image.shape[-2] - height) // 2, (image.shape[-1] - width) // 2
            resized.append(image[..., top:top + height, left:left + width])
        pixels = ((torch.cat(resized) / 255.0 - mean) / std).to(dtype)
        with torch.inference_mode(), backend._loaded.autocast():
            module.encode_image(pixels)

    one_batch(0)
    _sync(device)
    started = time.perf_counter()
    for start in range(0, total, batch):
        one_batch(start)
    _sync(device)
    return (total // batch * batch + (batch if total % batch else 0)) / (time.perf_counter() - started)


def tagger_end_to_end(backend, jpegs: list[bytes], batch: int, total: int, workers: int, tmp: Path) -> float:
    """The tagger's own path (tagger/stage.py): webdataset shards read, decoded in a process pool,
    encoded, scored against the packaged 2,593-concept vocabulary, top-32 kept, the default rule
    applied. No store write (bench_tagging.py measures that on the CPU). One prompt per concept:
    the prompt ensemble only changes the one-off concept embeddings, not the rate."""
    from conceptfreq.core.prompts import make_prompts
    from conceptfreq.core.tagging import parse_rule
    from conceptfreq.core.vocabulary import default
    from conceptfreq.synthetic import tar_bytes
    from conceptfreq.tagger.stage import ConceptIndexes, DecodeOptions, TagImages, TagShard

    per_shard = 1024
    shards = []
    for shard in range(-(-total // per_shard)):
        path = tmp / f"tagging-{shard:05d}.tar"
        if not path.exists():
            keys = [f"{shard:05d}{i:05d}" for i in range(min(per_shard, total - shard * per_shard))]
            path.write_bytes(tar_bytes([m for i, key in enumerate(keys)
                                        for m in ((f"{key}.txt", b"a photo"), (f"{key}.jpg", jpegs[i % len(jpegs)]))]))
        shards.append(str(path))
    index = ConceptIndexes(backend, make_prompts("simple"), str(tmp / "cache")).get(default())
    images = TagImages(backend, batch_size=batch, decode=DecodeOptions(workers=workers, executor="process", chunk=32))
    stage, rules = TagShard(images), [parse_rule("softmax:p=0.5")]
    try:
        stage.run("bench", shards[0], index, rules)  # warm-up: worker processes, cuDNN autotuning
        started = time.perf_counter()
        tagged = sum(len(stage.run("bench", shard, index, rules).keys) for shard in shards)
        return tagged / (time.perf_counter() - started)
    finally:
        images.close()


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
    store = open_store(f"chdb://{tmp / f'store-{model}-{precision}'}")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8192, help="images per end-to-end measurement (default 8192)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1), help="CPU decode processes")
    parser.add_argument("--pretrained", default=None, help="weights for every model (default: seeded random)")
    parser.add_argument("--smoke", action="store_true", help="check the script on the CPU: tiny model, few images")
    args = parser.parse_args(argv)

    import torch

    from conceptfreq.adapters.inference import open_inference
    from tests.bench.__main__ import print_table

    configs, device, pretrained = CONFIGS, "cuda", args.pretrained
    tmp_root = tempfile.TemporaryDirectory(prefix="bench-gpu-")
    tmp = Path(tmp_root.name)
    if args.smoke:
        from conceptfreq.adapters.inference.models import TINY_MODEL, tiny_checkpoint

        configs, device, pretrained = ((TINY_MODEL, "bf16"),), "cpu", str(tiny_checkpoint(tmp))
        args.images, args.batch, args.workers = 64, 16, 2
    elif not torch.cuda.is_available():
        print("bench-gpu: no CUDA device here (torch.cuda.is_available() is False); run it on a GPU machine, "
              "or `python -m tests.bench.gpu --smoke` to check the script on the CPU", file=sys.stderr)
        return 1
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu (smoke)"
    print(f"bench-gpu on {name}; {args.images} images per run, batch {args.batch}, {args.workers} decode processes", file=sys.stderr)
    jpegs = synthetic_jpegs(min(512, args.images), 384)
    rows = []
    with tmp_root:
        for model, precision in configs:
            backend = open_inference(f"torch://{device}", model, pretrained, precision, batch_size=args.batch)
            label = f"{model} {precision} on {name}"
            encode = encode_only(backend, jpegs, args.batch, max(3, args.images // args.batch // 4))
            rows.append({"benchmark": "gpu", "figure": f"{label}: encode only, batch {args.batch}", "value": encode, "unit": "images/s"})
            for figure, measure in (("end to end, CPU decode (PIL, draft mode)",
                                     lambda: cpu_decode_end_to_end(backend, jpegs, args.batch, args.images, args.workers)),
                                    ("end to end, GPU decode (nvJPEG)", lambda: gpu_decode_end_to_end(backend, jpegs, args.batch, args.images))):
                value = measure()
                rows.append({"benchmark": "gpu", "figure": f"{label}: {figure}, 384 px JPEGs", "value": value, "unit": "images/s",
                             "baseline": "encode only", "baseline_value": encode, "ratio": value / encode})
                print(f"  {rows[-1]['figure']}: {value:,.0f} images/s", file=sys.stderr)
            value = tagger_end_to_end(backend, jpegs, args.batch, args.images, args.workers, tmp)
            rows.append({"benchmark": "gpu", "figure": f"{label}: tagger end to end (shards, process decode, score vs 2,593 concepts, "
                                                       "top-32, rule), 384 px JPEGs", "value": value, "unit": "images/s",
                         "baseline": "encode only", "baseline_value": encode, "ratio": value / encode})
            print(f"  {rows[-1]['figure']}: {value:,.0f} images/s", file=sys.stderr)
            backend.close()
            value = evaluation(model, precision, device, tmp, args.images, args.batch, args.workers, pretrained)
            rows.append({"benchmark": "gpu", "figure": f"{label}: evaluate end to end (webdataset, 256 px, exact preprocessing)",
                         "value": value, "unit": "images/s", "baseline": "encode only", "baseline_value": encode, "ratio": value / encode})
            if device == "cuda":
                torch.cuda.empty_cache()
    print_table(rows)
    out = Path("build") / ("bench-gpu-smoke.json" if args.smoke else "bench-gpu.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"\n(rows also in {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
