"""The text stage's readers: each shard layout straight into CaptionBatches (columns of keys and
captions), with no Python object per sample, and reading only what captions need: a tar's images
are skipped (seeked over where that pays), a parquet file's other columns are never decoded.

They give exactly what `batches_of(read_shard(url))` gives: the same keys, captions, problems and
invalid-UTF-8 flags in the same order (tests/unit/test_caption_batches.py compares them).

img2dataset parquet sidecars: img2dataset writes `NNNNN.parquet` beside `NNNNN.tar`, one row per
URL it tried (`key`, `caption`, `status`, `url`, ...); only `status == "success"` rows have
members in the tar, so reading those rows gives the tar's samples without opening the tar. The
sidecar reflects what img2dataset wrote: a tar edited afterwards (samples removed, re-captioned,
re-sharded) no longer matches its sidecar, and counts taken from the sidecar are then wrong.
"""

from __future__ import annotations

import posixpath
from typing import Iterator

import fsspec
import fsspec.core
import numpy as np

from conceptfreq.adapters.shards import tar as tar_format
from conceptfreq.adapters.shards.training import ShardError, _json_caption, parquet_columns, seek_threshold
from conceptfreq.core.counting import CaptionBatch

_KEY_WIDTH = 9
_TSV_CHUNK = 8 << 20
SIDECAR_SUCCESS = "success"
_CAPTION_EXTENSIONS = frozenset(("txt", "json"))


def _index_keys(start: int, stop: int) -> list[str]:
    return [f"{index:0{_KEY_WIDTH}d}" for index in range(start, stop)]


# --- webdataset tar -------------------------------------------------------------------------------


def tar_caption_batches(url: str, batch_rows: int) -> Iterator[CaptionBatch]:
    with fsspec.open(url, "rb") as stream:
        batch = CaptionBatch()
        keys, captions, problems, invalid = batch.keys, batch.captions, batch.problems, batch.invalid_utf8
        current = None
        seen: set[str] = set()
        txt = document = None

        def add(key: str, txt: bytes | None, document: bytes | None) -> None:
            # The caption rule of read_shard (training._tar_sample): KEY.txt wins, then KEY.json.
            index = len(keys)
            keys.append(key)
            if txt is not None:
                try:
                    caption = txt.decode("utf-8")
                except UnicodeDecodeError:
                    caption = txt.decode("utf-8", "replace")
                    invalid.append(index)
                caption = caption.strip()
            elif document is not None:
                caption, bad_utf8, problem = _json_caption(document)
                if bad_utf8:
                    invalid.append(index)
                if problem:
                    captions.append(None)
                    problems[index] = problem
                    return
                caption = caption.strip()
            else:
                captions.append(None)
                problems[index] = "no_caption"
                return
            if caption:
                captions.append(caption)
            else:
                captions.append(None)
                problems[index] = "empty_caption"

        try:
            # tar.members directly, not training.tar_members: one generator fewer per member; its
            # errors are turned into ShardErrors below.
            for name, key, extension, data in tar_format.members(stream, _CAPTION_EXTENSIONS, seek_min=seek_threshold(url, stream)):
                if key != current:
                    if current is not None:
                        add(current, txt, document)
                        if len(keys) >= batch_rows:
                            yield batch
                            batch = CaptionBatch()
                            keys, captions, problems, invalid = batch.keys, batch.captions, batch.problems, batch.invalid_utf8
                    current, txt, document = key, None, None
                    seen = {"__key__", "__url__"}  # group_by_keys keeps these in the same dict
                if extension in seen:
                    raise ShardError(url, f"corrupt webdataset tar: {name}: duplicate file name in tar file {extension}")
                seen.add(extension)
                if extension == "txt":
                    txt = data
                elif extension == "json":
                    document = data
        except tar_format.TarFormatError as exc:
            raise ShardError(url, str(exc)) from exc
        if current is not None:
            add(current, txt, document)
        if keys:
            yield batch


# --- parquet --------------------------------------------------------------------------------------


def _string_buffers(column):
    """(offsets, data) of a string column: the numpy offsets of its rows into `data`, its bytes."""
    import pyarrow as pa

    _, offsets_buffer, data_buffer = column.buffers()
    kind = np.int64 if pa.types.is_large_string(column.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, kind)[column.offset:column.offset + len(column) + 1]
    if data_buffer is None or not len(offsets):
        return np.zeros(len(offsets), kind), b""
    # A record batch of a parquet file is a slice of its row group: only the slice's bytes.
    start, end = int(offsets[0]), int(offsets[-1])
    return offsets - offsets[0], data_buffer.slice(start, end - start).to_pybytes()


def _python_values(column) -> list:
    """A column's values as Python objects (None where null). Not pyarrow's to_pylist, which builds
    one scalar per value first (0.87M strings/s measured here); strings are cut out of the column's
    buffers (to_numpy would do it as fast, but imports pandas: a quarter of a second of start-up)."""
    import pyarrow as pa

    if not (pa.types.is_large_string(column.type) or pa.types.is_string(column.type)):
        return column.to_numpy(zero_copy_only=False).tolist()
    return _cut_strings(*_string_buffers(column), _null_mask(column))


def _cut_strings(offsets, data: bytes, nulls) -> list:
    """The values of a string column's buffers, None where `nulls` says so."""
    bounds = offsets.tolist()
    text = data.decode("utf-8")  # a string column is valid UTF-8
    if len(text) == len(data):  # all ASCII: character offsets are byte offsets
        values = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    else:  # a decode per value: slices of a wide str cost more than decoding their bytes again
        values = [data[a:b].decode("utf-8") for a, b in zip(bounds, bounds[1:])]
    for index in np.flatnonzero(nulls).tolist():
        values[index] = None
    return values


def _null_mask(column):
    if not column.null_count:
        return np.zeros(len(column), bool)
    valid = np.unpackbits(np.frombuffer(column.buffers()[0], np.uint8), bitorder="little")
    return valid[column.offset:column.offset + len(column)] == 0


# Per byte value: ASCII whitespace, or a byte of a multi-byte character (which may be Unicode whitespace).
_MAYBE_SPACE = np.array([chr(b).isspace() if b < 128 else True for b in range(256)])


def _rows_to_look_at(offsets, data: bytes, nulls):
    """The rows str.strip may change or that have no caption: null, empty, or with a first or last
    byte that is whitespace or not ASCII. Found on the column's buffers, with no Python step per row."""
    data = np.frombuffer(data, np.uint8)
    look = (offsets[1:] == offsets[:-1]) | nulls
    full = np.flatnonzero(~look)
    look[full] = _MAYBE_SPACE[data[offsets[full]]] | _MAYBE_SPACE[data[offsets[full + 1] - 1]]
    return look


def _text_column(column):
    """A caption column as an Arrow string array, or None when its bytes are not all UTF-8."""
    import pyarrow as pa

    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column
    try:
        # One C-level UTF-8 check for the whole column; only a column with bad bytes goes row by row.
        return column.cast(pa.large_string())
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None


def _decoded_rows(column) -> tuple[list, list[int]]:
    """Each binary value decoded, with replacement; the rows whose bytes were not UTF-8."""
    values, invalid = [], []
    for index, raw in enumerate(_python_values(column)):
        if raw is None:
            values.append(None)
            continue
        try:
            values.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            values.append(raw.decode("utf-8", "replace"))
            invalid.append(index)
    return values, invalid


def _arrow_caption_batch(keys: list[str], column, rows: list[int] | None = None) -> CaptionBatch:
    """A CaptionBatch from an Arrow caption column (of `rows` only, if given): stripped captions,
    no_caption for nulls, empty_caption for blank ones. Only null, empty or space-edged captions
    take a second look."""
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    text = _text_column(column)
    if text is None:
        return _caption_batch(keys, *_decoded_rows(column))
    offsets, data = _string_buffers(text)  # once, for the values and for the rows to look at
    nulls = _null_mask(text)
    captions = _cut_strings(offsets, data, nulls)
    look = _rows_to_look_at(offsets, data, nulls)
    if rows is not None:
        captions = [captions[i] for i in rows]
        look = look[rows]
    batch = CaptionBatch(keys=keys, captions=captions)
    problems = batch.problems
    for index in np.flatnonzero(look).tolist():
        caption = captions[index]
        if caption is None:
            problems[index] = "no_caption"
            continue
        caption = caption.strip()
        if caption:
            captions[index] = caption
        else:
            captions[index] = None
            problems[index] = "empty_caption"
    return batch


def _key_values(column, start: int) -> list[str]:
    """str() of each key, the row index where a key is null (as read_shard does)."""
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    kind = column.type
    if pa.types.is_integer(kind):
        # Arrow prints integers as str() does; one cast instead of a Python int per row.
        import pyarrow.compute as pc  # only here: its import costs 60 ms

        column = pc.cast(column, pa.string())
    elif not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return [str(key) if key is not None else f"{start + i:0{_KEY_WIDTH}d}" for i, key in enumerate(column.to_pylist())]
    keys = _python_values(column)
    if column.null_count:
        keys = [key if key is not None else f"{start + i:0{_KEY_WIDTH}d}" for i, key in enumerate(keys)]
    return keys


def _caption_batch(keys: list[str], values: list, invalid: list[int]) -> CaptionBatch:
    batch = CaptionBatch(keys=keys, invalid_utf8=invalid)
    problems = batch.problems
    captions = [value.strip() if value is not None else None for value in values]
    for index, caption in enumerate(captions):
        if not caption:
            problems[index] = "no_caption" if caption is None else "empty_caption"
            captions[index] = None
    batch.captions = captions
    return batch


def _open_parquet(url: str):
    import pyarrow.parquet as pq

    protocol, path = fsspec.core.split_protocol(url)
    local = protocol in (None, "file", "local")
    if local and fsspec.filesystem("file").isdir(path):
        raise IsADirectoryError(path)
    try:
        if local:
            # pyarrow's own file reader: no Python file object between it and the disk.
            return pq.ParquetFile(path), None
        stream = fsspec.open(url, "rb").open()
        try:
            return pq.ParquetFile(stream), stream
        except BaseException:
            stream.close()
            raise
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (ValueError, OSError) as exc:
        if local and not fsspec.filesystem("file").exists(path):
            raise FileNotFoundError(path) from exc
        raise ShardError(url, f"not a parquet file, or truncated ({exc})") from exc


def parquet_caption_batches(url: str, caption_column: str | None, key_column: str | None, batch_rows: int) -> Iterator[CaptionBatch]:
    parquet, stream = _open_parquet(url)
    try:
        caption_column, key_column = parquet_columns(url, parquet.schema_arrow, caption_column, key_column)
        columns = list(dict.fromkeys(c for c in (caption_column, key_column) if c))
        row = 0
        for record_batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
            n = record_batch.num_rows
            if not n:
                continue
            keys = _key_values(record_batch.column(key_column), row) if key_column else _index_keys(row, row + n)
            yield _arrow_caption_batch(keys, record_batch.column(caption_column))
            row += n
    finally:
        parquet.close()
        if stream is not None:
            stream.close()


# --- img2dataset parquet sidecar ------------------------------------------------------------------

_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def sidecar_url(url: str) -> str:
    """`.../NNNNN.parquet` beside `.../NNNNN.tar` (img2dataset's layout)."""
    protocol, path = fsspec.core.split_protocol(url)
    lowered = path.lower()
    suffix = next((s for s in _TAR_SUFFIXES if lowered.endswith(s)), None)
    if suffix is None:
        raise ShardError(url, "captions from a sidecar need an img2dataset tar shard (NNNNN.tar beside NNNNN.parquet)")
    sidecar = path[: len(path) - len(suffix)] + ".parquet"
    return f"{protocol}://{sidecar}" if protocol else sidecar


def sidecar_caption_batches(url: str, caption_column: str | None, batch_rows: int) -> Iterator[CaptionBatch]:
    sidecar = sidecar_url(url)
    caption_column = caption_column or "caption"
    try:
        parquet, stream = _open_parquet(sidecar)
    except FileNotFoundError:
        raise ShardError(url, f"no img2dataset parquet sidecar {posixpath.basename(sidecar)} beside the tar") from None
    except ShardError as exc:
        raise ShardError(url, f"img2dataset parquet sidecar {posixpath.basename(sidecar)} is unreadable: {exc.reason}") from None
    try:
        names = parquet.schema_arrow.names
        missing = [c for c in ("key", caption_column, "status") if c not in names]
        if missing:
            raise ShardError(url, f"img2dataset parquet sidecar {posixpath.basename(sidecar)} has no column "
                                  f"{', '.join(map(repr, missing))}; its columns are: {', '.join(names)}")
        parquet_columns(url, parquet.schema_arrow, caption_column, "key")  # the caption must be text
        row = 0
        for record_batch in parquet.iter_batches(batch_size=batch_rows, columns=list(dict.fromkeys(("key", caption_column, "status")))):
            # Failed downloads are rows without a member in the tar: keep the rows the tar has.
            statuses = _python_values(record_batch.column("status"))
            kept = [i for i, status in enumerate(statuses) if status == SIDECAR_SUCCESS]
            if kept:
                keys = _python_values(record_batch.column("key"))
                keys = [keys[i] for i in kept]
                if None in keys:
                    raise ShardError(url, f"img2dataset parquet sidecar {posixpath.basename(sidecar)} has a "
                                          f"successful row without a key")
                yield _arrow_caption_batch([str(key) for key in keys], record_batch.column(caption_column), kept)
            row += record_batch.num_rows
    finally:
        parquet.close()
        if stream is not None:
            stream.close()


# --- TSV (CC-3M layout: caption<TAB>url, no header) -----------------------------------------------


def _tsv_batch(lines: list[bytes], start: int) -> CaptionBatch:
    # Lines split on b"\n" only, as iterating a binary file does; the caption is the first field.
    raws = [line.rstrip(b"\r").split(b"\t", 1)[0] for line in lines]
    joined = b"\n".join(raws)
    invalid: list[int] = []
    try:
        values = joined.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        values = []
        for index, raw in enumerate(raws):
            try:
                values.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                values.append(raw.decode("utf-8", "replace"))
                invalid.append(index)
    return _caption_batch(_index_keys(start, start + len(lines)), values, invalid)


def tsv_caption_batches(url: str, batch_rows: int) -> Iterator[CaptionBatch]:
    with fsspec.open(url, "rb") as stream:
        row = 0
        rest = b""
        pending: list[bytes] = []
        while True:
            chunk = stream.read(_TSV_CHUNK)
            if not chunk:
                break
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            pending.extend(lines)
            while len(pending) >= batch_rows:
                yield _tsv_batch(pending[:batch_rows], row)
                row += batch_rows
                del pending[:batch_rows]
        if rest:
            pending.append(rest)
        if pending:
            yield _tsv_batch(pending, row)
            row += len(pending)
        if row == 0:
            # A zero-byte shard is almost always a failed download, not an empty dataset part.
            raise ShardError(url, "empty file")
