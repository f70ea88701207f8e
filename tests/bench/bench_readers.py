"""Reader-only speed of the text stage's shard readers (`read_caption_batches`), per layout of the
ingest benchmark (tests/bench/ingest_data.py: CC-3M captions, 10 shards x 10,000 samples), beside
the reader it replaced: Python's tarfile + webdataset's group_by_keys for tars, one Sample object
per row for parquet, regrouped with `batches_of`. The old tar reader is kept here (and used by
tests/unit/test_caption_batches.py as the reference the new one must agree with).

`python -m tests.bench readers`; CONCEPTFREQ_BENCH_READERS_DIR reuses shards already written
(e.g. by `python -m tests.bench.ingest_data DIR`) instead of writing them to a temp folder."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Iterator

import fsspec

from conceptfreq.adapters.shards import read_caption_batches
from conceptfreq.adapters.shards.formats import IMAGE_EXTENSIONS, JSON_CAPTION_FIELDS
from conceptfreq.core.counting import CaptionBatch, batches_of

SHARDS = 10
SAMPLES_PER_SHARD = 10_000


# --- the old tar reader (tarfile + webdataset), as it was before tar.py --------------------------


class _OldTarTruncated(tarfile.ReadError):
    pass


class _OldStrictTarInfo(tarfile.TarInfo):
    @classmethod
    def fromtarfile(cls, tar):
        try:
            return super().fromtarfile(tar)
        except tarfile.EOFHeaderError:
            raise
        except (tarfile.EmptyHeaderError, tarfile.TruncatedHeaderError, tarfile.InvalidHeaderError) as exc:
            if tar.offset == 0:
                raise
            if isinstance(exc, tarfile.EmptyHeaderError):
                raise _OldTarTruncated("truncated: the archive ends without its end-of-archive block") from None
            if isinstance(exc, tarfile.TruncatedHeaderError):
                raise _OldTarTruncated("truncated inside a member header") from None
            raise _OldTarTruncated(f"corrupt member header at byte {tar.offset} ({exc})") from None


class OldReaderError(Exception):
    pass


def _old_members(stream, wanted: frozenset[str], url: str) -> Iterator[dict]:
    from webdataset import tariterators

    try:
        tar = tarfile.open(fileobj=stream, mode="r|*", tarinfo=_OldStrictTarInfo)
    except tarfile.ReadError as exc:
        raise OldReaderError(f"not a tar ({exc})") from exc
    with tar:
        for info in tar:
            name = info.name
            if not info.isreg() or ("/" not in name and name.startswith("__") and name.endswith("__")):
                continue
            key, extension = tariterators.base_plus_ext(name)
            if key is None:
                continue
            data = tar.extractfile(info).read() if extension.lower() in wanted else None
            tar.members = []
            yield {"fname": name, "data": data, "__url__": url}


def old_tar_groups(url: str, wanted) -> Iterator[dict]:
    """The old tar_groups: raises OldReaderError (or the underlying error) where it raised ShardError."""
    from webdataset import tariterators

    with fsspec.open(url, "rb") as stream:
        try:
            yield from tariterators.group_by_keys(_old_members(stream, frozenset(wanted), url))
        except (tarfile.ReadError, ValueError, EOFError, OSError) as exc:
            raise OldReaderError(str(exc)) from exc


def _decode(raw: bytes) -> tuple[str, bool]:
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


def old_tar_samples(url: str, with_images: bool = False) -> Iterator[tuple]:
    """(key, caption, image, invalid_utf8, problem) per sample, as the old read_shard made them."""
    wanted = ("txt", "json") + (IMAGE_EXTENSIONS if with_images else ())
    for group in old_tar_groups(url, wanted):
        key = group["__key__"]
        image = next((group[e] for e in IMAGE_EXTENSIONS if group.get(e) is not None), None) if with_images else None
        if group.get("txt") is not None:
            caption, bad = _decode(group["txt"])
            caption = caption.strip()
            yield key, caption, image, bad, None if caption else "empty_caption"
        elif group.get("json") is not None:
            text, bad = _decode(group["json"])
            try:
                document = json.loads(text)
            except ValueError:
                document = None
            if not isinstance(document, dict):
                yield key, None, image, bad, "bad_json"
                continue
            value = next((document[f] for f in JSON_CAPTION_FIELDS if f in document), None)
            if value is None:
                yield key, None, image, bad, "no_caption"
            elif not isinstance(value, str):
                yield key, None, image, bad, "bad_json"
            else:
                value = value.strip()
                yield key, value, image, bad, None if value else "empty_caption"
        else:
            yield key, None, image, False, "no_caption"


def old_tar_batches(url: str, size: int = 8192) -> Iterator[CaptionBatch]:
    batch = CaptionBatch()
    for key, caption, _, bad, problem in old_tar_samples(url):
        batch.add(key, caption, problem, bad)
        if len(batch) >= size:
            yield batch
            batch = CaptionBatch()
    if len(batch):
        yield batch


def old_caption_batches(url: str, **options) -> Iterator[CaptionBatch]:
    """The text stage's input as the old readers made it: tarfile/webdataset for tars, one Sample
    per row (training.read_shard) for parquet and TSV."""
    from conceptfreq.adapters.shards import read_shard

    if url.endswith((".tar", ".tar.gz", ".tgz")):
        return old_tar_batches(url)
    return batches_of(read_shard(url, **options))


# --- the benchmark --------------------------------------------------------------------------------


def _samples(batches) -> int:
    return sum(len(batch) for batch in batches)


def _timed(read, paths: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    samples = sum(_samples(read(path)) for path in paths)
    return time.perf_counter() - started, samples


CASES = [
    # (figure, layout, new reader, old reader)
    ("parquet", "parquet", lambda p: read_caption_batches(p), old_caption_batches),
    ("wds-text tar", "wds-text", lambda p: read_caption_batches(p), old_tar_batches),
    ("img2dataset tar (12 KB JPEGs)", "img2dataset", lambda p: read_caption_batches(p), old_tar_batches),
    ("img2dataset sidecar parquet", "img2dataset", lambda p: read_caption_batches(p, captions_from="sidecar"), old_tar_batches),
]


def run() -> list[dict]:
    from tests.bench.ingest_data import write_layout

    reuse = os.environ.get("CONCEPTFREQ_BENCH_READERS_DIR")
    directory = Path(reuse) if reuse else Path(tempfile.mkdtemp(prefix="bench-readers-"))
    try:
        paths = {}
        for layout in ("parquet", "wds-text", "img2dataset"):
            found = sorted(str(p) for p in (directory / layout).glob("*.parquet" if layout == "parquet" else "*.tar"))
            paths[layout] = found or write_layout(layout, directory, SHARDS, SAMPLES_PER_SHARD)
        rows = []
        for figure, layout, new, old in CASES:
            shards = paths[layout]
            _timed(new, shards[:1]), _timed(old, shards[:1])  # warm the page cache and the imports
            # Alternate new and old shard by shard, so both see the same load on a shared machine.
            new_seconds = old_seconds = 0.0
            new_samples = old_samples = 0
            for shard in shards:
                seconds, samples = _timed(new, [shard])
                new_seconds, new_samples = new_seconds + seconds, new_samples + samples
                seconds, samples = _timed(old, [shard])
                old_seconds, old_samples = old_seconds + seconds, old_samples + samples
            assert new_samples == old_samples, (figure, new_samples, old_samples)
            value, baseline = new_samples / new_seconds, old_samples / old_seconds
            rows.append({"benchmark": "readers", "figure": f"{figure}: reader-only samples/s ({len(shards)} x {new_samples // len(shards):,})",
                         "value": value, "unit": "samples/s", "baseline": "tarfile+webdataset / Sample per row",
                         "baseline_value": baseline, "ratio": value / baseline})
        return rows
    finally:
        if not reuse:
            shutil.rmtree(directory, ignore_errors=True)
