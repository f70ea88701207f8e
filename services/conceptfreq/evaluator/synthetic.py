"""Synthetic eval sets in every supported layout, for tests, benchmarks and demos.

Each image is a flat color with a little noise, so it is a valid, decodable image of any size;
`paint` says which class's color a sample carries. With `ColorBackend`, a "model" that reads an
image's color and the color word of a text, every zero-shot answer is known by construction, so
the whole path (readers, mapping, sharding, counting, storing) can be checked against a hand count.
Deterministic for a seed.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from conceptfreq.synthetic import tar_bytes

PALETTE = [(220, 20, 60), (34, 139, 34), (30, 144, 255), (255, 215, 0), (148, 0, 211), (255, 140, 0),
           (0, 206, 209), (139, 69, 19), (255, 105, 180), (128, 128, 128), (0, 0, 0), (255, 255, 255)]
COLOR_NAMES = ["red", "green", "blue", "yellow", "purple", "orange", "cyan", "brown", "pink", "gray", "black", "white"]


class ColorBackend:
    """The inference interface (adapters/inference) with known answers: an image embeds as the
    one-hot of its nearest palette color, a text as the one-hot of the first color word in it.
    Register it as `color://` with `INFERENCE_SCHEMES["color"] = color_backend`."""

    scheme = "color"
    url = "color://"
    model, pretrained, precision, model_id = "color", None, "fp32", "color/palette"
    image_size, max_batch_size, logit_scale = (2, 2), 4, 100.0
    embed_dim = len(PALETTE)

    def preprocess(self, image) -> np.ndarray:
        mean = np.asarray(image.convert("RGB"), np.float64).reshape(-1, 3).mean(axis=0)
        nearest = int(np.argmin(((np.asarray(PALETTE) - mean) ** 2).sum(axis=1)))
        return np.full((3, 2, 2), nearest, np.float32)

    def encode_images(self, pixels) -> np.ndarray:
        return np.eye(self.embed_dim, dtype=np.float32)[np.asarray(pixels)[:, 0, 0, 0].astype(int)]

    def encode_texts(self, texts) -> np.ndarray:
        out = np.zeros((len(texts), self.embed_dim), np.float32)
        for row, text in enumerate(texts):
            words = [w.strip(".,;:!?") for w in text.lower().split()]
            out[row, next((i for i, color in enumerate(COLOR_NAMES) if color in words), 0)] = 1.0
        return out

    def close(self) -> None:
        pass


def color_backend(*_args, **_kwargs) -> ColorBackend:
    """An INFERENCE_SCHEMES opener for ColorBackend."""
    return ColorBackend()


def image_bytes(color: Sequence[int], size: int = 48, seed: int = 0, format: str = "JPEG") -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.asarray(color, np.float64)[None, None, :] + rng.normal(0, 6, (size, size, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format, quality=90)
    return buffer.getvalue()


def samples(n_classes: int, per_class: int | Sequence[int], *, paint: dict[tuple[int, int], int] | None = None,
            seed: int = 0, size: int = 48, colors: Sequence[int] | None = None) -> list[tuple[int, bytes, int]]:
    """(label, jpeg, painted class) per sample, class-major. Class c is PALETTE[colors[c]] (default
    PALETTE[c]); `paint[(label, i)]` recolors the i-th image of a class with another class's color
    (a wrong answer for a color-reading model)."""
    colors = list(colors) if colors is not None else list(range(n_classes))
    counts = [per_class] * n_classes if isinstance(per_class, int) else list(per_class)
    out = []
    for label in range(n_classes):
        for i in range(counts[label]):
            painted = (paint or {}).get((label, i), label)
            color = PALETTE[colors[painted] % len(PALETTE)]
            out.append((label, image_bytes(color, size, seed * 100_003 + label * 1_009 + i), painted))
    return out


def write_imagefolder(root: Path, classnames: Sequence[str], items: list[tuple[int, bytes, int]]) -> Path:
    root = Path(root)
    for name in classnames:
        (root / name.replace(" ", "_")).mkdir(parents=True, exist_ok=True)
    for index, (label, data, _) in enumerate(items):
        (root / classnames[label].replace(" ", "_") / f"img_{index:05d}.jpg").write_bytes(data)
    return root


def write_wds(root: Path, classnames: Sequence[str] | None, items: list[tuple[int, bytes, int]], *, shards: int = 2,
              split: str = "test", templates: Sequence[str] = (), captions: list[list[str]] | None = None) -> Path:
    """clip_benchmark's layout: ROOT/classnames.txt, ROOT/zeroshot_classification_templates.txt,
    ROOT/SPLIT/{0..n-1}.tar with KEY.jpg + KEY.cls (or KEY.txt: captions, one per line)."""
    root = Path(root)
    (root / split).mkdir(parents=True, exist_ok=True)
    if classnames:
        (root / "classnames.txt").write_text("\n".join(classnames) + "\n")
    if templates:
        (root / "zeroshot_classification_templates.txt").write_text("\n".join(templates) + "\n")
    per_shard = (len(items) + shards - 1) // shards
    for shard in range(shards):
        members = []
        for index in range(shard * per_shard, min(len(items), (shard + 1) * per_shard)):
            label, data, _ = items[index]
            key = f"s{index:07d}"
            members.append((f"{key}.jpg", data))
            if captions is not None:
                members.append((f"{key}.txt", "\n".join(captions[index]).encode()))
            else:
                members.append((f"{key}.cls", str(label).encode()))
        (root / split / f"{shard}.tar").write_bytes(tar_bytes(members))
    return root


def write_parquet(root: Path, classnames: Sequence[str], items: list[tuple[int, bytes, int]], *, files: int = 2,
                  string_labels: bool = False) -> Path:
    """Hugging Face's layout (the "Let It Wag!" release): image {bytes, path} and a ClassLabel `label`,
    whose names are in the file metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    (root / "data").mkdir(parents=True, exist_ok=True)
    features = {"image": {"_type": "Image"},
                "label": {"_type": "Value", "dtype": "string"} if string_labels else {"_type": "ClassLabel", "names": list(classnames)}}
    metadata = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    per_file = (len(items) + files - 1) // files
    for part in range(files):
        chunk = items[part * per_file:(part + 1) * per_file]
        table = pa.table({
            "image": [{"bytes": data, "path": f"{part}-{i}.jpg"} for i, (_, data, _) in enumerate(chunk)],
            "label": [classnames[label] if string_labels else label for label, _, _ in chunk],
        })
        pq.write_table(table.replace_schema_metadata(metadata), root / "data" / f"test-{part:05d}-of-{files:05d}.parquet")
    return root


def write_csv(path: Path, classnames: Sequence[str], items: list[tuple[int, bytes, int]], *, by_name: bool = True) -> Path:
    """A manifest with relative image paths: `path,label`."""
    path = Path(path)
    images = path.parent / "images"
    images.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["path", "label"])
        for index, (label, data, _) in enumerate(items):
            (images / f"{index:05d}.jpg").write_bytes(data)
            writer.writerow([f"images/{index:05d}.jpg", classnames[label] if by_name else label])
    return path
