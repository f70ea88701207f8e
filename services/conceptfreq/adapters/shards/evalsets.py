"""Readers of downstream evaluation sets, split into shards that the evaluator handles one at a time.

Formats (EVAL_FORMATS; detected from the path, or named with --format):
- `imagefolder`: `ROOT/CLASS/*.jpg`. Classes are the sorted folder names (torchvision's rule), named
  with `_` read as a space; shards are runs of `shard_size` images in sorted order (`part-00000`).
- `wds`: webdataset tars in clip_benchmark's layout, `ROOT/[SPLIT/]*.tar` with `KEY.{jpg,png,webp}`
  and `KEY.cls` (class index) or `KEY.txt` (captions, one per line, for retrieval), and beside
  them `classnames.txt` and `zeroshot_classification_templates.txt`. Each tar is a shard.
- `parquet`: image bytes and a label column, as Hugging Face datasets write them (the "Let It Wag!"
  release): `image` is `{bytes, path}` or bytes; class names come from the ClassLabel feature in the
  file's metadata when present. Each file is a shard.
- `csv`: a manifest with an image path column (relative to the manifest) and a label or caption
  column; shards are runs of `shard_size` rows (`rows-000000-000999`).

Paths may be local or any fsspec URL. A label is an int (class index) or a str (class name); the
planner maps both to class indices. Samples without a usable image or label are still yielded,
with `problem` set, so they are counted as skipped rather than silently lost.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from dataclasses import dataclass
from typing import Callable, Iterator

import fsspec
import fsspec.core

from conceptfreq.adapters.shards.formats import IMAGE_EXTENSIONS, PARQUET_IMAGE_COLUMNS
from conceptfreq.adapters.shards.training import ShardError, tar_groups
from conceptfreq.adapters.shards.urls import expand_shards, filesystem
from conceptfreq.errors import UserError
CSV_IMAGE_COLUMNS = ("path", "image", "filepath", "filename", "file", "image_path")
CLASSNAMES_FILE = "classnames.txt"
TEMPLATES_FILE = "zeroshot_classification_templates.txt"


@dataclass(frozen=True)
class EvalSample:
    key: str
    image: bytes | None
    label: int | str | None = None
    captions: tuple[str, ...] = ()
    problem: str | None = None


def _read_lines(fs, path: str) -> list[str] | None:
    if not fs.isfile(path):
        return None
    with fs.open(path, "rb") as stream:
        return [line.strip() for line in stream.read().decode("utf-8-sig").splitlines() if line.strip()]


class EvalSet:
    format = ""

    def __init__(self, url: str, **options):
        self.url = url
        self.options = options
        self.classnames: list[str] | None = None   # as the dataset names them; None: it does not
        self.templates: list[str] = []             # its own ensemble templates, if it ships them

    def shards(self) -> list[str]:
        raise NotImplementedError

    def read(self, shard: str) -> Iterator[EvalSample]:
        raise NotImplementedError

    def class_sizes(self) -> dict[int, int] | None:
        """Samples per class index when known without reading the images (imagefolder)."""
        return None

    def _metadata_beside(self, directories: list[str]) -> None:
        fs, _ = filesystem(self.url)
        for directory in directories:
            names = _read_lines(fs, posixpath.join(directory, CLASSNAMES_FILE))
            if names and self.classnames is None:
                self.classnames = names
            templates = _read_lines(fs, posixpath.join(directory, TEMPLATES_FILE))
            if templates and not self.templates:
                self.templates = templates


class ImageFolderSet(EvalSet):
    format = "imagefolder"

    def __init__(self, url: str, shard_size: int = 1000, **options):
        super().__init__(url, shard_size=shard_size, **options)
        self.fs, self.root = filesystem(url)
        if not self.fs.isdir(self.root):
            raise UserError(f"{url!r} is not a directory of class folders")
        folders = sorted(p for p in self.fs.ls(self.root, detail=False) if self.fs.isdir(p)
                         and not posixpath.basename(p.rstrip("/")).startswith("."))
        if not folders:
            raise UserError(f"{url!r} has no class folders (expected ROOT/CLASS/*.jpg)")
        self.folder_names = [posixpath.basename(f.rstrip("/")) for f in folders]
        self.classnames = [name.replace("_", " ") for name in self.folder_names]
        self.files: list[tuple[str, int]] = []
        for index, folder in enumerate(folders):
            images = sorted(p for p in self.fs.ls(folder, detail=False)
                            if p.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS)
            self.files.extend((path, index) for path in images)
        self.shard_size = max(1, int(shard_size))
        self._metadata_beside([self.root])
        if self.classnames is not None and len(self.classnames) != len(self.folder_names):
            self.classnames = [name.replace("_", " ") for name in self.folder_names]  # a stray file: ignore it

    def class_sizes(self) -> dict[int, int]:
        sizes = dict.fromkeys(range(len(self.folder_names)), 0)
        for _, index in self.files:
            sizes[index] += 1
        return sizes

    def shards(self) -> list[str]:
        return [f"part-{i:05d}" for i in range((len(self.files) + self.shard_size - 1) // self.shard_size)]

    def read(self, shard: str) -> Iterator[EvalSample]:
        try:
            part = int(shard.rsplit("-", 1)[-1])
        except ValueError:
            raise ShardError(shard, "not an imagefolder shard name (part-NNNNN)") from None
        for path, index in self.files[part * self.shard_size:(part + 1) * self.shard_size]:
            key = posixpath.relpath(path, self.root)
            try:
                with self.fs.open(path, "rb") as stream:
                    yield EvalSample(key, stream.read(), index)
            except OSError:
                yield EvalSample(key, None, index, problem="missing_image")


class WebDatasetSet(EvalSet):
    format = "wds"

    def __init__(self, url: str, split: str = "test", **options):
        super().__init__(url, split=split, **options)
        fs, path = filesystem(url)
        if fs.isdir(path):
            found = [d for d in (posixpath.join(path, split), path) if fs.isdir(d) and fs.glob(posixpath.join(d, "*.tar"))]
            if not found:
                raise UserError(f"{url!r} holds no .tar shards (looked in {split}/ and the folder itself)")
            self._shards = sorted(fs.unstrip_protocol(p) if "://" in url else p for p in fs.glob(posixpath.join(found[0], "*.tar")))
            self._shards.sort(key=_natural)
            metadata_dirs = [path, found[0]]
        else:
            self._shards = expand_shards(url)
            first = fsspec.core.split_protocol(self._shards[0])[1]
            metadata_dirs = [posixpath.dirname(first), posixpath.dirname(posixpath.dirname(first))]
        self._metadata_beside(metadata_dirs)

    def shards(self) -> list[str]:
        return list(self._shards)

    def read(self, shard: str) -> Iterator[EvalSample]:
        # The shard reader's strict tar reading: a cut tar is a ShardError, not a short shard.
        for group in tar_groups(shard, IMAGE_EXTENSIONS + ("cls", "txt", "json")):
            yield _wds_sample(group)


def _natural(name: str):
    # 10.tar after 9.tar, as clip_benchmark numbers its shards
    stem = posixpath.basename(name).split(".")[0]
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def _wds_sample(group: dict) -> EvalSample:
    key = group["__key__"]
    image = next((group[ext] for ext in IMAGE_EXTENSIONS if group.get(ext) is not None), None)
    label: int | str | None = None
    problem = None if image is not None else "no_image"
    if group.get("cls") is not None:
        text = group["cls"].decode("utf-8", "replace").strip()
        label = int(text) if text.lstrip("-").isdigit() else text
    captions: tuple[str, ...] = ()
    if group.get("txt") is not None:
        captions = tuple(line.strip() for line in group["txt"].decode("utf-8", "replace").splitlines() if line.strip())
    elif group.get("json") is not None:
        try:
            document = json.loads(group["json"])
            value = next((document[f] for f in ("captions", "sentences", "caption", "text") if f in document), [])
            captions = tuple(value) if isinstance(value, list) else (str(value),)
        except (ValueError, TypeError):
            problem = problem or "bad_json"
    return EvalSample(key, image, label, captions, problem)


class ParquetSet(EvalSet):
    format = "parquet"

    def __init__(self, url: str, split: str = "test", label_column: str = "label", image_column: str | None = None,
                 caption_column: str | None = None, **options):
        super().__init__(url, split=split, label_column=label_column, image_column=image_column,
                         caption_column=caption_column, **options)
        fs, path = filesystem(url)
        if fs.isdir(path):
            files = [p for d in (posixpath.join(path, split), posixpath.join(path, "data"), path) if fs.isdir(d)
                     for p in fs.glob(posixpath.join(d, "**", "*.parquet"))]
            if not files:
                raise UserError(f"{url!r} holds no .parquet files")
            self._shards = sorted({fs.unstrip_protocol(p) if "://" in url else p for p in files})
            self._metadata_beside([path])
        else:
            self._shards = expand_shards(url)
        self.label_column, self.caption_column = label_column, caption_column
        self.image_column = image_column
        self._hf_classnames()

    def _hf_classnames(self) -> None:
        import pyarrow.parquet as pq

        try:
            with fsspec.open(self._shards[0], "rb") as stream:
                schema = pq.read_schema(stream)
        except (OSError, ValueError) as error:
            raise UserError(f"cannot read {self._shards[0]!r} as parquet: {error}") from None
        if self.image_column is None:
            self.image_column = next((c for c in PARQUET_IMAGE_COLUMNS if c in schema.names), None)
            if self.image_column is None:
                raise UserError(f"{self._shards[0]!r} has no image column ({', '.join(PARQUET_IMAGE_COLUMNS)}); its columns: "
                                f"{', '.join(schema.names)}; name it with --image-column")
        try:
            features = json.loads((schema.metadata or {}).get(b"huggingface", b"{}"))["info"]["features"]
            label = features.get(self.label_column, {})
            if label.get("_type") == "ClassLabel" and label.get("names") and self.classnames is None:
                self.classnames = list(label["names"])
        except (KeyError, ValueError, TypeError, AttributeError):
            pass
        if self.classnames is None and self.label_column in schema.names:
            self.classnames = _names_from_labels(self._labels())

    def _labels(self) -> Iterator:
        import pyarrow.parquet as pq

        for shard in self._shards:
            with fsspec.open(shard, "rb") as stream:
                yield from pq.read_table(stream, columns=[self.label_column]).column(0).to_pylist()

    def shards(self) -> list[str]:
        return list(self._shards)

    def read(self, shard: str) -> Iterator[EvalSample]:
        import pyarrow.parquet as pq

        try:
            with fsspec.open(shard, "rb") as stream:
                parquet = pq.ParquetFile(stream)
                names = parquet.schema_arrow.names
                wanted = [c for c in (self.image_column, self.label_column, self.caption_column) if c and c in names]
                if self.image_column not in names:
                    raise ShardError(shard, f"no image column {self.image_column!r}; columns: {', '.join(names)}")
                row = 0
                for batch in parquet.iter_batches(batch_size=1024, columns=wanted):
                    values = batch.to_pydict()
                    for i in range(batch.num_rows):
                        image = values[self.image_column][i]
                        image = image.get("bytes") if isinstance(image, dict) else image
                        label = values[self.label_column][i] if self.label_column in values else None
                        caption = values[self.caption_column][i] if self.caption_column in values else None
                        captions = tuple(caption) if isinstance(caption, list) else tuple(
                            line.strip() for line in (caption or "").splitlines() if line.strip())
                        yield EvalSample(f"{row:09d}", image if isinstance(image, bytes) else None, label, captions,
                                         None if isinstance(image, bytes) else "no_image")
                        row += 1
        except ShardError:
            raise
        except FileNotFoundError:
            raise ShardError(shard, "missing: no such file") from None
        except (OSError, ValueError) as error:
            raise ShardError(shard, f"unreadable parquet: {error}") from None


class CsvSet(EvalSet):
    format = "csv"

    def __init__(self, url: str, label_column: str = "label", image_column: str | None = None,
                 caption_column: str | None = None, shard_size: int = 1000, **options):
        super().__init__(url, label_column=label_column, image_column=image_column, caption_column=caption_column,
                         shard_size=shard_size, **options)
        self.fs, path = filesystem(url)
        try:
            with self.fs.open(path, "rb") as stream:
                text = stream.read().decode("utf-8-sig")
        except FileNotFoundError:
            raise UserError(f"manifest {url!r} not found") from None
        dialect = "excel-tab" if path.endswith(".tsv") else "excel"
        reader = csv.DictReader(io.StringIO(text), dialect=dialect)
        columns = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = columns
        self.image_column = image_column or next((c for c in CSV_IMAGE_COLUMNS if c in columns), None)
        if self.image_column is None or self.image_column not in columns:
            raise UserError(f"manifest {url!r} has no image path column ({', '.join(CSV_IMAGE_COLUMNS)}); "
                            f"its columns: {', '.join(columns)}")
        self.label_column, self.caption_column = label_column, caption_column
        self.rows = list(reader)
        self.base = posixpath.dirname(path)
        self.shard_size = max(1, int(shard_size))
        self._metadata_beside([self.base])
        if self.classnames is None and label_column in columns:
            self.classnames = _names_from_labels(row.get(label_column) for row in self.rows)

    def shards(self) -> list[str]:
        return [f"rows-{s:06d}-{min(s + self.shard_size, len(self.rows)) - 1:06d}" for s in range(0, len(self.rows), self.shard_size)]

    def read(self, shard: str) -> Iterator[EvalSample]:
        try:
            _, first, last = shard.split("-")
            rows = range(int(first), int(last) + 1)
        except ValueError:
            raise ShardError(shard, "not a manifest shard name (rows-FIRST-LAST)") from None
        for index in rows:
            row = self.rows[index]
            relative = (row.get(self.image_column) or "").strip()
            label = (row.get(self.label_column) or "").strip() or None
            caption = (row.get(self.caption_column) or "").strip() if self.caption_column else ""
            path = relative if relative.startswith("/") or "://" in relative else posixpath.join(self.base, relative)
            try:
                with self.fs.open(path, "rb") as stream:
                    image, problem = stream.read(), None
            except (OSError, ValueError):
                image, problem = None, "missing_image"
            yield EvalSample(relative or f"{index:09d}", image, label, tuple(l for l in caption.split("\n") if l.strip()), problem)


def _names_from_labels(labels) -> list[str] | None:
    """Labels that are names (not indices) name the classes themselves: sorted, so that every
    reader of the set agrees on the order."""
    names = {str(label).strip() for label in labels if label is not None and str(label).strip()}
    if not names or any(name.lstrip("-").isdigit() for name in names):
        return None
    return sorted(names)


EVAL_FORMATS: dict[str, Callable[..., EvalSet]] = {"imagefolder": ImageFolderSet, "wds": WebDatasetSet,
                                                   "parquet": ParquetSet, "csv": CsvSet}


def eval_set_format(url: str) -> str:
    lowered = url.lower().split("?", 1)[0]
    for suffix, name in ((".csv", "csv"), (".tsv", "csv"), (".parquet", "parquet"), (".tar", "wds")):
        if lowered.endswith(suffix) or lowered.endswith(suffix + "}"):
            return name
    fs, path = filesystem(url)
    if fs.isdir(path):
        if fs.glob(posixpath.join(path, "*.tar")) or fs.glob(posixpath.join(path, "*", "*.tar")):
            return "wds"
        if fs.glob(posixpath.join(path, "**", "*.parquet")):
            return "parquet"
        return "imagefolder"
    raise UserError(f"cannot tell the format of eval set {url!r}: pass --format ({', '.join(EVAL_FORMATS)})")


def open_eval_set(url: str, format: str | None = None, **options) -> EvalSet:
    """The eval set at `url`. Options: split, label_column, image_column, caption_column, shard_size
    (each format takes the ones it needs and ignores the rest)."""
    url = url.rstrip("/") or url
    name = format or eval_set_format(url)
    if name not in EVAL_FORMATS:
        raise UserError(f"unknown eval set format {name!r}: choose one of {', '.join(EVAL_FORMATS)}")
    options = {k: v for k, v in options.items() if v is not None}
    return EVAL_FORMATS[name](url, **options)
