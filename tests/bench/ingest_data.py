"""The shard layouts of the ingest benchmark, written from the real CC-3M validation captions
(../shared/data; 15,833 captions, repeated in order to fill the shards):

- `parquet`: one file per shard with `key`, `caption` and `url` columns (LAION-metadata style);
- `wds-text`: a webdataset tar per shard, `KEY.txt` + `KEY.json` per sample;
- `img2dataset`: what img2dataset writes: `NNNNN.tar` with `KEY.jpg` (about 12 KB), `KEY.txt` and
  `KEY.json` per sample, and beside it `NNNNN.parquet` with one row per URL tried (`key`,
  `caption`, `url`, `status`; failed downloads are rows without a member in the tar).

`python -m tests.bench.ingest_data DIR [SHARDS [SAMPLES]]` writes them for a manual run."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

from tests.paths import SHARED_DATA

CAPTIONS_TSV = SHARED_DATA / "cc3m_val_captions.tsv"
LAYOUTS = ("parquet", "wds-text", "img2dataset")
JPEG_BYTES = 12_000
FAILED_EVERY = 50  # img2dataset: one URL in 50 failed to download (a row in the parquet, no member in the tar)


def cc3m_captions() -> list[tuple[str, str]]:
    """(caption, url) of the CC-3M validation split."""
    with open(CAPTIONS_TSV, encoding="utf-8") as f:
        return [tuple(line.rstrip("\n").split("\t", 1)) for line in f]


def _jpegs(n: int = 16) -> list[bytes]:
    """Distinct photo-like JPEGs of about JPEG_BYTES each (the text path never decodes them)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        pixels = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8).repeat(2, 0).repeat(2, 1)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=75)
        out.append(buffer.getvalue())
    return out


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_layout(layout: str, directory: Path, shards: int, samples_per_shard: int,
                 rows: list[tuple[str, str]] | None = None) -> list[str]:
    """Write `shards` shards of `layout` under directory/layout; returns their paths (the tars for
    img2dataset, whose parquet sidecars lie beside them). `rows` are the (caption, url) pairs to
    cycle through, by default CC-3M's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    rows = rows or cc3m_captions()
    jpegs = _jpegs() if layout == "img2dataset" else []
    out = directory / layout
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for shard in range(shards):
        keys, captions, urls, statuses = [], [], [], []
        for i in range(samples_per_shard):
            caption, url = rows[(shard * samples_per_shard + i) % len(rows)]
            keys.append(f"{shard:05d}{i:04d}" if samples_per_shard <= 10_000 else f"{shard:05d}{i:07d}")
            captions.append(caption)
            urls.append(url)
            statuses.append("failed_to_download" if layout == "img2dataset" and i % FAILED_EVERY == FAILED_EVERY - 1 else "success")
        if layout == "parquet":
            path = out / f"{shard:05d}.parquet"
            pq.write_table(pa.table({"key": keys, "caption": captions, "url": urls}), path)
        else:
            path = out / f"{shard:05d}.tar"
            with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
                for i, (key, caption, url, status) in enumerate(zip(keys, captions, urls, statuses)):
                    if status != "success":
                        continue
                    if jpegs:
                        _add(tar, f"{key}.jpg", jpegs[i % len(jpegs)])
                    _add(tar, f"{key}.txt", caption.encode())
                    _add(tar, f"{key}.json", json.dumps({"key": key, "caption": caption, "url": url, "status": status}).encode())
            if layout == "img2dataset":
                pq.write_table(pa.table({"url": urls, "caption": captions, "key": keys, "status": statuses}), out / f"{shard:05d}.parquet")
        paths.append(str(path))
    return paths


def main(argv: list[str]) -> int:
    directory = Path(argv[0])
    shards = int(argv[1]) if len(argv) > 1 else 10
    samples = int(argv[2]) if len(argv) > 2 else 10_000
    for layout in LAYOUTS:
        paths = write_layout(layout, directory, shards, samples)
        print(f"{layout}: {len(paths)} shards under {directory / layout}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
