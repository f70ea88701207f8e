"""Training-shard readers: turn one shard of a pretraining dataset into a stream of caption samples.

A shard is a webdataset `.tar`, a parquet file or a CC-3M style TSV, anywhere fsspec can open it
(local paths, file://, memory://, s3://, gs://, https:// ... when the protocol's package is installed).

Decisions other modules rely on:
- **Keys** are stable inside a shard: the webdataset `__key__` (webdataset's rule: the key is the
  member name up to the first dot of its basename, so `a.b.txt` is key `a`, extension `b.txt`),
  a parquet key column, else the zero-based row / line index padded to 9 digits so that keys sort
  in shard order.
- **Captions** are decoded as UTF-8; undecodable bytes are replaced and the sample is flagged
  `invalid_utf8` rather than dropped, because the rest of the caption is usually fine. Surrounding
  whitespace is stripped (captions written with `echo` end in a newline).
- **webdataset captions**: `KEY.txt` wins; otherwise `KEY.json` with the first of the fields
  `caption`, `text`, `txt` (img2dataset writes `caption`; several hub datasets use `text`/`txt`).
- **`problem`** describes the caption only: `no_caption`, `empty_caption` or `bad_json`. Such a
  sample still carries its image, so an image-only consumer (the tagger) may use it.
- Caption length is not judged here: a 64 KiB caption is read as is; limits are the matcher's policy.
- **A missing parquet caption/key column is a ShardError**, not a UserError: one shard with an odd
  schema must not stop a whole ingest; the message lists the shard's columns, so a mistyped column
  name is obvious from the first failed shard.
- **Errors**: anything that makes a shard unreadable (missing, empty, not a tar, truncated, corrupt
  parquet) raises ShardError, possibly after some samples were yielded; callers must then discard
  what they got. A dropped connection raises conceptfreq.errors.UnavailableError instead, since a
  retry may succeed.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Callable, Iterable, Iterator

import fsspec
import fsspec.core

from conceptfreq.adapters.shards import tar as tar_format
from conceptfreq.adapters.shards.formats import (IMAGE_EXTENSIONS, JSON_CAPTION_FIELDS, PARQUET_CAPTION_COLUMNS, PARQUET_IMAGE_COLUMNS,
                                                 PARQUET_KEY_COLUMNS)
from conceptfreq.adapters.shards.tar import LOCAL_SEEK_MIN
from conceptfreq.adapters.shards.urls import UnsupportedShardURL, filesystem
from conceptfreq.core.counting import CaptionBatch
from conceptfreq.errors import UnavailableError


@dataclass(frozen=True, slots=True)
class Sample:
    key: str
    caption: str | None
    image: bytes | None = None
    invalid_utf8: bool = False
    problem: str | None = None


class ShardError(Exception):
    """The shard cannot be read; the message names the shard and the reason, in one line.

    `ShardError(url, reason)` keeps both parts (the status table stores the reason); a single
    argument is taken as the whole message.
    """

    def __init__(self, url: str, reason: str | None = None):
        self.url = url if reason is not None else None
        self.reason = " ".join(str(url if reason is None else reason).split())
        super().__init__(self.reason if reason is None else f"{url}: {self.reason}")

    def __reduce__(self):
        # Rebuild from both parts, so the error survives pickling between worker processes.
        return type(self), ((self.url, self.reason) if self.url is not None else (self.reason,))


SHARD_FORMATS = ("tar", "parquet", "tsv")

# Longest first, so `.tar.gz` is not mistaken for something ending in `.gz`.
_EXTENSION_FORMATS = {
    ".tar.gz": "tar", ".tgz": "tar", ".tar": "tar",
    ".parquet": "parquet", ".pq": "parquet",
    ".tsv": "tsv", ".txt": "tsv",
}
_SUPPORTED_EXTENSIONS = ".tar (webdataset), .parquet/.pq, .tsv/.txt"

_KEY_WIDTH = 9
_PARQUET_BATCH_ROWS = 8192


def shard_format(url: str, declared: str | None = None) -> str:
    """"tar", "parquet" or "tsv": the declared format if given, else from the URL's extension."""
    if declared:
        if declared.lower() not in SHARD_FORMATS:
            raise UnsupportedShardURL(f"unknown shard format {declared!r}; supported: {', '.join(SHARD_FORMATS)}")
        return declared.lower()
    protocol, path = fsspec.core.split_protocol(url)
    if protocol in ("http", "https"):
        path = path.split("?", 1)[0].split("#", 1)[0]
    name = PurePosixPath(path).name.lower()
    for extension, kind in _EXTENSION_FORMATS.items():
        if name.endswith(extension):
            return kind
    raise UnsupportedShardURL(
        f"{url}: cannot tell the shard format from its name; supported: {_SUPPORTED_EXTENSIONS}, "
        f"or declare the format ({' | '.join(SHARD_FORMATS)})"
    )


@dataclass(frozen=True)
class _ReadOptions:
    caption_column: str | None
    key_column: str | None
    with_images: bool


def read_shard(
    url: str,
    *,
    format: str | None = None,
    caption_column: str | None = None,
    key_column: str | None = None,
    with_images: bool = False,
) -> Iterator[Sample]:
    """Samples of one shard, in shard order. Raises ShardError, possibly after yielding samples.

    The format and URL scheme are checked now, before iteration, so configuration mistakes surface
    at the call site; the file itself is opened lazily on the first `next()`.
    """
    kind = shard_format(url, format)
    filesystem(url)
    options = _ReadOptions(caption_column, key_column, with_images)
    return _as_shard_errors(url, _READERS[kind](url, options))


CAPTIONS_FROM = ("shard", "sidecar")


def preload_readers(kinds: Iterable[str], captions_from: str = "shard") -> None:
    """Import what the readers of these shard formats need, now: a process about to fork workers
    pays pyarrow's import (about a second) once, instead of every worker on its first parquet."""
    if "parquet" in kinds or captions_from == "sidecar":
        import pyarrow.parquet  # noqa: F401


def read_caption_batches(
    url: str,
    *,
    format: str | None = None,
    caption_column: str | None = None,
    key_column: str | None = None,
    captions_from: str = "shard",
    batch_rows: int = _PARQUET_BATCH_ROWS,
) -> Iterator[CaptionBatch]:
    """The text stage's view of a shard: keys and captions in CaptionBatches of up to `batch_rows`,
    the same samples, in the same order and with the same problems, as `read_shard` yields.
    `captions_from="sidecar"` reads an img2dataset tar's captions from the parquet beside it
    (`NNNNN.parquet` beside `NNNNN.tar`, its `status == "success"` rows; see batches.py).
    Checked now, like read_shard: the format, the URL scheme and the caption source."""
    from conceptfreq.adapters.shards import batches

    if captions_from not in CAPTIONS_FROM:
        raise UnsupportedShardURL(f"unknown caption source {captions_from!r}; choose one of {', '.join(CAPTIONS_FROM)}")
    kind = shard_format(url, format)
    filesystem(url)
    if captions_from == "sidecar":
        if kind != "tar":
            raise UnsupportedShardURL(f"{url}: captions from a sidecar need an img2dataset tar shard, not {kind}")
        reader = batches.sidecar_caption_batches(url, caption_column, batch_rows)
    elif kind == "tar":
        reader = batches.tar_caption_batches(url, batch_rows)
    elif kind == "parquet":
        reader = batches.parquet_caption_batches(url, caption_column, key_column, batch_rows)
    else:
        reader = batches.tsv_caption_batches(url, batch_rows)
    return _as_shard_errors(url, reader)


def _as_shard_errors(url: str, samples: Iterator) -> Iterator:
    try:
        yield from samples
    except ShardError:
        raise
    except FileNotFoundError as exc:
        if connection_failure(exc):
            raise UnavailableError(f"{url}: connection failed ({connection_failure(exc)})") from exc
        raise ShardError(url, "missing: no such file") from exc
    except IsADirectoryError as exc:
        raise ShardError(url, "is a directory, not a shard") from exc
    except PermissionError as exc:
        raise ShardError(url, f"unreadable: permission denied ({exc})") from exc
    except (ConnectionError, TimeoutError) as exc:
        raise UnavailableError(f"{url}: connection failed while reading ({exc})") from exc
    except (EOFError, zlib.error, OSError, ValueError) as exc:
        # pyarrow's ArrowInvalid/ArrowIOError subclass ValueError/OSError, so corrupt parquet lands here.
        raise ShardError(url, f"unreadable: {type(exc).__name__}: {exc}") from exc


def connection_failure(error: BaseException) -> str:
    """The connection error behind `error`, if any, as one line; "" if there is none. fsspec's HTTP
    filesystem reports a server that refuses the connection as FileNotFoundError; that is transient
    (the server may be restarting), not a missing shard."""
    seen: BaseException | None = error
    while seen is not None:
        names = {c.__name__ for c in type(seen).__mro__}
        if isinstance(seen, (ConnectionError, TimeoutError)) or "ClientConnectionError" in names:
            return f"{type(seen).__name__}: {seen}"
        seen = seen.__cause__ or seen.__context__
    return ""


def _decode(raw: bytes) -> tuple[str, bool]:
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


def _caption_sample(key: str, caption: str, invalid_utf8: bool = False, image: bytes | None = None) -> Sample:
    caption = caption.strip()
    problem = None if caption else "empty_caption"
    return Sample(key, caption, image, invalid_utf8, problem)


def _index_key(index: int) -> str:
    return f"{index:0{_KEY_WIDTH}d}"


# --- webdataset tar -------------------------------------------------------------------------------


def seek_threshold(url: str, stream) -> int | None:
    """The `seek_min` for tar.members on this stream: when a skipped payload is seeked over rather
    than read and dropped. Local and in-memory files seek cheaply, so only reads of LOCAL_SEEK_MIN
    or more are worth replacing. Remote fsspec files fetch whole blocks (`blocksize`, 5 MiB on s3)
    and serve reads inside a fetched block from memory, so a seek only saves a request when it
    jumps past a block; shorter skips stream. A stream that cannot seek always streams."""
    try:
        if not stream.seekable():
            return None
    except (AttributeError, OSError, ValueError):
        return None
    protocol = fsspec.core.split_protocol(url)[0]
    if protocol in (None, "file", "local", "memory"):
        return LOCAL_SEEK_MIN
    return max(int(getattr(stream, "blocksize", 0) or 0), LOCAL_SEEK_MIN)


def tar_members(url: str, stream, wanted: frozenset[str] | None) -> Iterator[tuple[str, str, str, bytes | None]]:
    """tar.members over an open shard, its format errors as ShardErrors naming the shard."""
    try:
        yield from tar_format.members(stream, wanted, seek_min=seek_threshold(url, stream))
    except tar_format.TarFormatError as exc:
        raise ShardError(url, str(exc)) from exc


def _json_caption(raw: bytes) -> tuple[str | None, bool, str | None]:
    """(caption, invalid_utf8, problem) from a webdataset KEY.json member."""
    text, invalid_utf8 = _decode(raw)
    try:
        document = json.loads(text)
    except ValueError:
        return None, invalid_utf8, "bad_json"
    if not isinstance(document, dict):
        return None, invalid_utf8, "bad_json"
    value = next((document[field] for field in JSON_CAPTION_FIELDS if field in document), None)
    if value is None:
        return None, invalid_utf8, "no_caption"
    if not isinstance(value, str):
        return None, invalid_utf8, "bad_json"
    return value, invalid_utf8, None


def _tar_sample(group: dict, with_images: bool) -> Sample:
    key = group["__key__"]
    image = None
    if with_images:
        image = next((group[ext] for ext in IMAGE_EXTENSIONS if group.get(ext) is not None), None)
    if group.get("txt") is not None:
        caption, invalid_utf8 = _decode(group["txt"])
        return _caption_sample(key, caption, invalid_utf8, image)
    if group.get("json") is not None:
        caption, invalid_utf8, problem = _json_caption(group["json"])
        if problem is None:
            return _caption_sample(key, caption, invalid_utf8, image)
        return Sample(key, None, image, invalid_utf8, problem)
    return Sample(key, None, image, problem="no_caption")


def tar_groups(url: str, extensions: Iterable[str]) -> Iterator[dict]:
    """webdataset sample dicts (`__key__`, `__url__`, one entry per extension) of a tar shard,
    keeping the data of the wanted extensions only; with the strict truncation checks, and every
    read failure as a ShardError. Shared by read_shard and the evaluator's clip_benchmark reader."""
    return _as_shard_errors(url, _tar_groups(url, frozenset(extensions)))


def _tar_groups(url: str, wanted: frozenset[str]) -> Iterator[dict]:
    with fsspec.open(url, "rb") as stream:
        try:
            yield from tar_format.group(tar_members(url, stream, wanted), url)
        except tar_format.TarFormatError as exc:
            raise ShardError(url, str(exc)) from exc


def _read_tar(url: str, options: _ReadOptions) -> Iterator[Sample]:
    wanted = ("txt", "json") + (IMAGE_EXTENSIONS if options.with_images else ())
    for group in tar_groups(url, wanted):
        yield _tar_sample(group, options.with_images)


# --- parquet --------------------------------------------------------------------------------------


def _is_text_type(arrow_type) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    checks = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)
    return any(check(arrow_type) for check in checks)


def _parquet_value_caption(key: str, value, image: bytes | None) -> Sample:
    if value is None:
        return Sample(key, None, image, problem="no_caption")
    if isinstance(value, bytes):
        return _caption_sample(key, *_decode(value), image=image)
    return _caption_sample(key, value, image=image)


def _parquet_image(value) -> bytes | None:
    # Hugging Face datasets store images as struct<bytes: binary, path: string>.
    if isinstance(value, dict):
        value = value.get("bytes")
    return value if isinstance(value, bytes) else None


def parquet_columns(url: str, schema, caption_column: str | None, key_column: str | None) -> tuple[str, str | None]:
    """(caption column, key column or None for row-index keys) of a parquet shard: the named ones,
    which must exist, else the first of PARQUET_CAPTION_COLUMNS / PARQUET_KEY_COLUMNS present."""
    names = schema.names
    available = ", ".join(names)
    for role, column in (("caption", caption_column), ("key", key_column)):
        if column and column not in names:
            raise ShardError(url, f"no {role} column {column!r}; the shard's columns are: {available}")
    if not caption_column:
        caption_column = next((name for name in PARQUET_CAPTION_COLUMNS if name in names), None)
        if caption_column is None:
            raise ShardError(url, f"no caption column (looked for {', '.join(PARQUET_CAPTION_COLUMNS)}); "
                                  f"the shard's columns are: {available}")
    if not key_column:
        key_column = next((name for name in PARQUET_KEY_COLUMNS if name in names), None)
    caption_type = schema.field(caption_column).type
    if not _is_text_type(caption_type):
        raise ShardError(url, f"caption column {caption_column!r} holds {caption_type}, not text")
    return caption_column, key_column


def _read_parquet(url: str, options: _ReadOptions) -> Iterator[Sample]:
    # Imported here: pyarrow is heavy, and tar/TSV-only workers never need it.
    import pyarrow.parquet as pq

    with fsspec.open(url, "rb") as stream:
        try:
            parquet = pq.ParquetFile(stream)
        except (ValueError, OSError) as exc:
            raise ShardError(url, f"not a parquet file, or truncated ({exc})") from exc
        schema = parquet.schema_arrow
        caption_column, key_column = parquet_columns(url, schema, options.caption_column, options.key_column)
        image_column = None
        if options.with_images:
            image_column = next((name for name in PARQUET_IMAGE_COLUMNS if name in schema.names), None)
        columns = list(dict.fromkeys(c for c in (caption_column, key_column, image_column) if c))

        row = 0
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=columns):
            values = batch.to_pydict()
            captions = values[caption_column]
            keys = values[key_column] if key_column else [None] * len(captions)
            images = values[image_column] if image_column else [None] * len(captions)
            for caption, key, image in zip(captions, keys, images):
                # A null key falls back to the row index so that every sample still has a key.
                sample_key = str(key) if key is not None else _index_key(row)
                yield _parquet_value_caption(sample_key, caption, _parquet_image(image))
                row += 1


# --- TSV (CC-3M layout: caption<TAB>url, no header) -----------------------------------------------


def _read_tsv(url: str, options: _ReadOptions) -> Iterator[Sample]:
    with fsspec.open(url, "rb") as stream:
        line_number = -1
        for line_number, line in enumerate(stream):
            caption = line.rstrip(b"\r\n").split(b"\t", 1)[0]
            yield _caption_sample(_index_key(line_number), *_decode(caption))
        if line_number < 0:
            # A zero-byte shard is almost always a failed download, not an empty dataset part.
            raise ShardError(url, "empty file")


_READERS: dict[str, Callable[[str, _ReadOptions], Iterator[Sample]]] = {
    "tar": _read_tar,
    "parquet": _read_parquet,
    "tsv": _read_tsv,
}
