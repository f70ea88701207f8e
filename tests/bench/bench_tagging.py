"""Image tagging on this CPU: where a shard's time goes (the share spent decoding images), the
tagger's images/s end to end in process for the tiny model, and `retag`'s images/s from stored
scores against that re-run rate. The Triton-vs-in-process encode overhead and ViT-B-32 encode
rates are bench_inference.py's; the GPU figures are `make bench-gpu`'s (tests/bench/gpu.py).

Input: synthetic webdataset shards of 256 px JPEGs (half noise, half flat colour: the two ends of
what JPEG decoding costs), the packaged 2,593-concept vocabulary, one prompt per concept."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARDS = 3
SAMPLES_PER_SHARD = 400
IMAGE_SIZE = 256
VIT_IMAGES = 96
VIT_CONCEPTS = 200  # ViT-B-32's text tower takes ~20 ms per prompt here; the decode share does not depend on it


def _row(figure: str, value: float, unit: str, baseline: str = "", baseline_value: float | None = None) -> dict:
    ratio = value / baseline_value if baseline_value else None
    return {"benchmark": "tagging", "figure": figure, "value": value, "unit": unit, "baseline": baseline,
            "baseline_value": baseline_value, "ratio": ratio}


def _backend(model: str, weights: Path):
    from conceptfreq.adapters.inference import open_inference
    from conceptfreq.adapters.inference.models import tiny_checkpoint

    pretrained = str(tiny_checkpoint(weights)) if model == "conceptfreq-tiny" else None
    # One torch thread: decode threads beside a multi-threaded torch oversubscribe a small host
    # (measured here: 2 torch threads made the tiny model's tagging 3x slower, not faster).
    return open_inference("torch://cpu", model, pretrained, threads=1)


def _stage_times(backend, index, shards: list[str], batch: int, limit: int | None = None) -> dict[str, float]:
    """Each step of tagging on its own, with no overlap (one decode worker in this thread): seconds."""
    import numpy as np

    from conceptfreq.adapters.images import FastPreprocess, ImageDecoder
    from conceptfreq.adapters.shards import read_shard
    from conceptfreq.core.tagging import top_scores

    times = dict.fromkeys(("read", "decode", "encode", "score"), 0.0)
    decoder = ImageDecoder(FastPreprocess.wrap(backend.preprocess), draft_size=tuple(backend.image_size[::-1]))
    images = 0
    for shard in shards:
        started = time.perf_counter()
        data = [s.image for s in read_shard(shard, with_images=True)][:limit]
        times["read"] += time.perf_counter() - started
        started = time.perf_counter()
        pixels = np.stack([decoder(d).pixels for d in data])
        times["decode"] += time.perf_counter() - started
        for start in range(0, len(pixels), batch):
            started = time.perf_counter()
            embeddings = backend.encode_images(pixels[start:start + batch])
            encoded = time.perf_counter()
            top_scores(embeddings, index.embeddings, index.concept_ids, logit_scale=backend.logit_scale)
            times["encode"] += encoded - started
            times["score"] += time.perf_counter() - encoded
        images += len(pixels)
    times["images"] = images
    return times


def run() -> list[dict]:
    from conceptfreq.adapters.store import open_store
    from conceptfreq.core.prompts import make_prompts
    from conceptfreq.core.tagging import parse_rule
    from conceptfreq.core.vocabulary import default, from_names
    from conceptfreq.synthetic import write_shards
    from conceptfreq.tagger.retag import Retag
    from conceptfreq.tagger.stage import ConceptIndexes, DecodeOptions, TagImages, TagShard

    rows: list[dict] = []
    vocabulary = default()
    workers = max(1, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="bench-tagging-") as tmp:
        tmp = Path(tmp)
        shards = write_shards(tmp / "shards", n_shards=SHARDS, samples_per_shard=SAMPLES_PER_SHARD,
                              concept_names=[c.name for c in vocabulary][:200], with_images=True, image_size=IMAGE_SIZE)
        for model, batch, limit in (("conceptfreq-tiny", 64, None), ("ViT-B-32", 32, VIT_IMAGES)):
            backend = _backend(model, tmp / "weights")
            concepts = vocabulary if limit is None else from_names([[c.name] for c in list(vocabulary)[:VIT_CONCEPTS]])
            index = ConceptIndexes(backend, make_prompts("simple"), str(tmp / "cache")).get(concepts)
            times = _stage_times(backend, index, shards[:1] if limit else shards, batch, limit)
            total = sum(times[k] for k in ("read", "decode", "encode", "score"))
            row = _row(f"{model}: share of tagging time spent decoding images ({backend.image_size[0]} px input, "
                       f"{len(index.names):,} concepts)", times["decode"] / total, "fraction")
            row["baseline"] = (f"read {times['read'] / total:.0%}, encode {times['encode'] / total:.0%}, "
                               f"score {times['score'] / total:.0%}")
            rows += [row, _row(f"{model}: decode + preprocess, one thread", times["images"] / times["decode"], "images/s")]
            if limit:
                backend.close()
                continue
            # End to end in process: read, decode in worker threads, encode, score, apply rules.
            images = TagImages(backend, batch_size=batch, decode=DecodeOptions(workers=workers))
            rules = [parse_rule("softmax:p=0.5")]
            started = time.perf_counter()
            results = [TagShard(images).run("bench", shard, index, rules) for shard in shards]
            tag_s = time.perf_counter() - started
            tagged = sum(len(r.keys) for r in results)
            rows.append(_row(f"{model}: tagger end to end in process ({workers} decode threads, 1 torch thread, batch {batch})",
                             tagged / tag_s, "images/s", "the same steps one after another", times["images"] / total))
            store = open_store(f"chdb://{tmp / 'store'}")
            try:
                store.record_rule("bench", vocabulary.version, rules[0])
                started = time.perf_counter()
                for result in results:
                    store.write_image_shard(result)
                write_s = time.perf_counter() - started
                rows.append(_row(f"{model}: tagger with the store write (chDB)", tagged / (tag_s + write_s), "images/s",
                                 "tagging alone", tagged / tag_s))
                report = Retag(store, "bench", vocabulary.version, parse_rule("softmax:p=0.2"), recount=None).run()
                rows.append(_row("retag from stored top-32 scores (chDB, no model)", report.images / report.seconds, "images/s",
                                 "tagger re-run with the store write", tagged / (tag_s + write_s)))
            finally:
                store.close()
                images.close()
                backend.close()
    return rows
