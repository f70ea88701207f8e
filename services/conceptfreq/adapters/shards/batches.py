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
from typing import Iterable, Iterator

import fsspec
import fsspec.core
import numpy as np

from conceptfreq.adapters.shards import tar as tar_format
from conceptfreq.adapters.shards.training import ShardError, _decode, _json_caption, parquet_columns, seek_threshold
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
        samples = _TarSamples(url, batch_rows)
        try:
            # tar.scan directly, not training.tar_members: runs of members come whole, and its errors
            # are turned into ShardErrors below.
            for item in tar_format.scan(stream, _CAPTION_EXTENSIONS, seek_min=seek_threshold(url, stream)):
                yield from samples.take_run(item) if type(item) is tar_format.PlainRun else samples.take_members((item,))
        except tar_format.TarFormatError as exc:
            raise ShardError(url, str(exc)) from exc
        yield from samples.finish()


def _first_difference(a: list, b: list) -> int:
    """The first index at which two lists of one length differ; their length if they are equal."""
    if a == b:
        return len(a)
    return next(index for index, (x, y) in enumerate(zip(a, b)) if x != y)


class _TarSamples:
    """A tar's members grouped into samples as webdataset's group_by_keys groups them (consecutive
    members with one key; a repeated extension is corruption), each sample's caption chosen as
    read_shard chooses it (KEY.txt, else KEY.json), into CaptionBatches of `batch_rows` samples.

    Member by member (`take_members`), or a PlainRun at a time (`take_run`), where the run's
    middle repeats one pattern of extensions (`KEY.txt KEY.json`, `KEY.jpg KEY.txt KEY.json`, ...),
    as webdataset writers lay samples out: its captions are then cut from the run's buffer with
    numpy and decoded at once, with no Python step per member (one per sample makes its str). A
    batch is handed out when a later member has been read, as the member-by-member path does, so
    both give the same batches before a corrupt member; `finish` hands out the rest."""

    _META = frozenset(("__key__", "__url__"))  # group_by_keys keeps these in the sample's dict too

    def __init__(self, url: str, batch_rows: int):
        self.url, self.batch_rows = url, batch_rows
        self.batch = CaptionBatch()
        self.key: str | None = None  # the open sample's
        self.txt = self.document = None
        self.seen: set[str] = set()

    def _open(self, key: str | None) -> CaptionBatch | None:
        """Close the open sample (if any) and open `key`'s (None: none); the batch it filled, if it did."""
        full = None
        if self.key is not None:
            self._add(self.key, self.txt, self.document)
            full = self._full()
        self.key, self.txt, self.document = key, None, None
        self.seen = set(self._META)
        return full

    def _take(self, name: str, extension: str, data: bytes | None) -> None:
        """A member of the open sample."""
        if extension in self.seen:
            raise ShardError(self.url, f"corrupt webdataset tar: {name}: duplicate file name in tar file {extension}")
        self.seen.add(extension)
        if extension == "txt":
            self.txt = data
        elif extension == "json":
            self.document = data

    def take_run(self, run: tar_format.PlainRun) -> Iterator[CaptionBatch]:
        """The members of a run; the batches they fill."""
        block = self._pattern_block(run)
        if block is None:
            yield from self.take_members(run.members(_CAPTION_EXTENSIONS))
            return
        lo, hi = block[:2]
        yield from self.take_members(run.members(_CAPTION_EXTENSIONS, 0, lo))
        if (full := self._open(None)) is not None:
            yield full
        yield from self._take_block(run, *block)
        yield from self.take_members(run.members(_CAPTION_EXTENSIONS, hi))

    def take_members(self, members: Iterable[tuple[str, str, str, bytes | None]]) -> Iterator[CaptionBatch]:
        """Members as tar.members gives them, one by one; the batches they fill."""
        for name, key, extension, data in members:
            if key != self.key and (full := self._open(key)) is not None:
                yield full
            self._take(name, extension, data)

    def _pattern_block(self, run: tar_format.PlainRun) -> tuple[int, int, int, int] | None:
        """(lo, hi, period, txt position) of the members [lo, hi) of `run` that form whole samples
        of `period` members each, every sample with the same distinct extensions in the same order,
        one of them `txt`, each sample's key different from the others' and from the next member's;
        None when there is no such stretch worth taking at once. Members before lo continue the
        open sample; from hi on, the member-by-member path goes on (a run may end mid-sample)."""
        keys, extensions = run.keys, run.extensions
        # Up to the first member that is no sample's (`__index__`, a name without an extension).
        n = keys.index(None) if None in keys else len(keys)
        lo = 0
        while lo < n and keys[lo] == self.key:
            lo += 1
        period = 1
        while lo + period < n and keys[lo + period] == keys[lo]:
            period += 1
        pattern = extensions[lo:lo + period]
        if "txt" not in pattern or len(set(pattern)) < period or self._META & set(pattern):
            return None
        # The samples that follow the pattern, up to the first that does not (or the run's end).
        whole = (n - lo) // period
        end = lo + whole * period
        firsts = keys[lo:end:period]
        following = min([_first_difference(keys[lo + j:end:period], firsts) for j in range(1, period)] +
                        [_first_difference(extensions[lo + j:end:period], [pattern[j]] * whole) for j in range(period)])
        samples = following - 1  # the last of them is left out: its key shows the one before it is whole
        if samples < 8:
            return None
        hi = lo + samples * period
        if len(set(firsts[:samples + 1])) != samples + 1:  # a key seen twice: leave it to the exact path
            return None
        return lo, hi, period, pattern.index("txt")

    def _take_block(self, run: tar_format.PlainRun, lo: int, hi: int, period: int, txt: int) -> Iterator[CaptionBatch]:
        """The samples of a _pattern_block, their captions from their `txt` members."""
        keys = run.keys[lo:hi:period]
        starts = np.array(run.starts[lo + txt:hi:period], np.int64)
        sizes = np.array(run.sizes[lo + txt:hi:period], np.int64)
        offsets = np.zeros(len(sizes) + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        gather = np.repeat(starts - offsets[:-1], sizes) + np.arange(offsets[-1])
        data = np.frombuffer(run.buf, np.uint8)[gather].tobytes()
        captions, invalid = _cut_captions(offsets, data)
        problems = _strip_edges(captions, _rows_to_look_at(offsets, data, np.zeros(len(keys), bool)))
        done = 0
        while done < len(keys):
            batch = self.batch
            base = len(batch.keys)
            take = min(self.batch_rows - base, len(keys) - done)
            end = done + take
            batch.keys += keys[done:end]
            batch.captions += captions[done:end]
            batch.problems.update({base + i - done: problem for i, problem in problems.items() if done <= i < end})
            batch.invalid_utf8 += [base + i - done for i in invalid if done <= i < end]
            done = end
            if (full := self._full()) is not None:
                yield full  # a later sample's member has been read: the block is followed by one

    def finish(self) -> Iterator[CaptionBatch]:
        """The batches left once the last member is read."""
        if (full := self._open(None)) is not None:
            yield full
        if self.batch.keys:
            yield self.batch

    def _full(self) -> CaptionBatch | None:
        if len(self.batch.keys) < self.batch_rows:
            return None
        full, self.batch = self.batch, CaptionBatch()
        return full

    def _add(self, key: str, txt: bytes | None, document: bytes | None) -> None:
        batch = self.batch
        index = len(batch.keys)
        batch.keys.append(key)
        if txt is not None:
            caption, bad_utf8 = _decode(txt)
            if bad_utf8:
                batch.invalid_utf8.append(index)
            caption = caption.strip()
        elif document is not None:
            caption, bad_utf8, problem = _json_caption(document)
            if bad_utf8:
                batch.invalid_utf8.append(index)
            if problem:
                batch.captions.append(None)
                batch.problems[index] = problem
                return
            caption = caption.strip()
        else:
            batch.captions.append(None)
            batch.problems[index] = "no_caption"
            return
        if caption:
            batch.captions.append(caption)
        else:
            batch.captions.append(None)
            batch.problems[index] = "empty_caption"


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
    values, _ = _cut_captions(offsets, data)
    for index in np.flatnonzero(nulls).tolist():
        values[index] = None
    return values


def _cut_captions(offsets, data: bytes) -> tuple[list[str], list[int]]:
    """The strings data[offsets[i]:offsets[i + 1]], each decoded from UTF-8, with replacement where
    its bytes are not UTF-8 (their indices are the second list)."""
    bounds = offsets.tolist()
    try:
        text = data.decode("utf-8")
        if len(text) == len(data):  # all ASCII: character offsets are byte offsets
            return [text[a:b] for a, b in zip(bounds, bounds[1:])], []
        # A decode per value: slices of a wide str cost more than decoding their bytes again.
        return [data[a:b].decode("utf-8") for a, b in zip(bounds, bounds[1:])], []
    except UnicodeDecodeError:  # some value is not UTF-8 (the whole may be, cut mid-character)
        return _decoded_each(data[a:b] for a, b in zip(bounds, bounds[1:]))


def _decoded_each(raws: Iterable[bytes | None]) -> tuple[list[str | None], list[int]]:
    """Each value decoded from UTF-8 (None stays None), with replacement where its bytes are not
    UTF-8; the indices of those."""
    values, invalid = [], []
    for index, raw in enumerate(raws):
        if raw is None:
            values.append(None)
            continue
        value, bad_utf8 = _decode(raw)
        values.append(value)
        if bad_utf8:
            invalid.append(index)
    return values, invalid


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
    return _decoded_each(_python_values(column))


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
    return CaptionBatch(keys=keys, captions=captions, problems=_strip_edges(captions, look))


def _strip_edges(captions: list[str | None], look) -> dict[int, str]:
    """Strip the captions at the rows `look` marks (see _rows_to_look_at), in place; the problems
    of those rows: no_caption where the caption is None, empty_caption where only space is left."""
    problems = {}
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
    return problems


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
        values, invalid = _decoded_each(raws)
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
