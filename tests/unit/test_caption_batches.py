"""The text stage's readers (adapters/shards/batches.py, tar.py) agree with the old ones: the same
keys, captions, problems and invalid-UTF-8 flags for every layout, edge case and failure.

The reference for tars is the old tarfile + webdataset reader, kept in tests/bench/bench_readers.py;
for parquet and TSV it is read_shard's one-Sample-per-row path."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path

import fsspec
import pytest

from conceptfreq.adapters.shards import ShardError, UnsupportedShardURL, read_caption_batches, read_shard, tar_groups
from conceptfreq.adapters.shards import batches as batch_readers
from conceptfreq.adapters.shards import tar as tar_format
from conceptfreq.core.counting import CaptionBatch, batches_of, count_caption_batches
from conceptfreq.core.matching import make_matcher
from conceptfreq.core.vocabulary import from_names
from tests.bench import bench_readers
from tests.bench.ingest_data import write_layout

LONG_DIR = "a-folder-name-long-enough-that-ustar-cannot-hold-it/" * 3


def flat(batches) -> tuple[list, list, dict, list]:
    """One shard's batches as (keys, captions, problems, invalid_utf8) over the whole shard."""
    keys, captions, problems, invalid = [], [], {}, []
    for batch in batches:
        offset = len(keys)
        keys += batch.keys
        captions += batch.captions
        problems.update({offset + i: p for i, p in batch.problems.items()})
        invalid += [offset + i for i in batch.invalid_utf8]
    return keys, captions, problems, invalid


def tar_of(members, format=tarfile.GNU_FORMAT, mode="w") -> bytes:
    """A tar of (name, data) pairs; data None makes a directory, a str a symlink to that target."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode, format=format) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


EDGE_MEMBERS = [
    ("000.txt", b"a dog on a beach\n"),
    ("000.jpg", b"\xff\xd8" + b"j" * 3000),
    ("001.json", b'{"caption": "json only caption", "url": "u"}'),
    ("002.json", b'{"text": "  text field  "}'),
    ("003.txt", b"caf\xe9 \xff"),  # invalid UTF-8
    ("004.txt", b" \n"),  # empty caption
    ("005.json", b'{"caption": null}'),
    ("006.json", b"{oops"),
    ("007.json", b'{"caption": "caf\xe9"}'),
    ("008.jpg", b"image only"),
    ("__index__", b"meta member"),
    ("dir", None),
    ("dir/009.txt", b"in a folder"),
    ("link.txt", "000.txt"),
    ("010.seg.TXT", b"double extension, upper case"),
    ("noextension", b"skipped: no key"),
    (LONG_DIR + "011.txt", b"GNU long name or pax path"),
    (LONG_DIR + "011.json", b'{"caption": "the txt wins"}'),
    ("012.json", b'{"caption": "json first"}'),
    ("012.txt", b"then txt, which wins"),
    ("013.txt", "ünïcödé caption".encode()),
    ("ünïcödé-014.txt", b"non-ASCII member name (pax path in PAX_FORMAT)"),
    ("015.txt", b"z" * 70_000),  # several blocks, crosses buffer reads in small-chunk runs
]

FORMATS = {"gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}


@pytest.fixture(params=list(FORMATS), ids=list(FORMATS))
def edge_tar(request, tmp_path) -> str:
    path = tmp_path / f"edge-{request.param}.tar"
    path.write_bytes(tar_of(EDGE_MEMBERS, FORMATS[request.param]))
    return str(path)


def test_edge_case_tar_matches_the_old_reader(edge_tar):
    new = flat(read_caption_batches(edge_tar))
    assert new == flat(bench_readers.old_tar_batches(edge_tar))
    assert new == flat(batches_of(read_shard(edge_tar)))
    keys, captions, problems, invalid = new
    assert "dir/009" in keys and LONG_DIR + "011" in keys and "ünïcödé-014" in keys and "__index__" not in keys
    assert captions[keys.index(LONG_DIR + "011")] == "GNU long name or pax path"
    assert set(problems.values()) == {"empty_caption", "no_caption", "bad_json"} and len(invalid) == 2


def test_edge_case_tar_with_images_and_groups_match_the_old_reader(edge_tar):
    old = list(bench_readers.old_tar_samples(edge_tar, with_images=True))
    new = [(s.key, s.caption, s.image, s.invalid_utf8, s.problem) for s in read_shard(edge_tar, with_images=True)]
    assert new == old and any(image for _, _, image, _, _ in new)
    wanted = ("jpg", "txt", "cls")
    assert list(tar_groups(edge_tar, wanted)) == list(bench_readers.old_tar_groups(edge_tar, wanted))


def test_pax_global_header_and_pax_size_are_applied(tmp_path):
    # A global pax header first, as `git archive` writes one; then a member whose pax header gives
    # its path (overriding the ustar name field) and its size.
    path = tmp_path / "pax.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "global"}) as tar:
        info = tarfile.TarInfo("ignored-name.txt")
        info.pax_headers = {"path": "real/key.txt", "size": "11"}
        info.size = 11
        tar.addfile(info, io.BytesIO(b"a pax story"))
    expected = flat(bench_readers.old_tar_batches(str(path)))
    assert flat(read_caption_batches(str(path))) == expected == (["real/key"], ["a pax story"], {}, [])


@pytest.mark.parametrize("suffix, mode", [(".tar.gz", "w:gz"), (".tgz", "w:gz"), (".tar", "w:bz2"), (".tar", "w:xz")])
def test_compressed_tars_stream(tmp_path, suffix, mode):
    path = tmp_path / f"c{suffix}"
    path.write_bytes(tar_of(EDGE_MEMBERS, mode=mode))
    assert flat(read_caption_batches(str(path))) == flat(bench_readers.old_tar_batches(str(path)))


def test_a_cut_gzipped_tar_is_truncated(tmp_path):
    data = tar_of(EDGE_MEMBERS, mode="w:gz")
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ShardError, match="truncated"):
        flat(read_caption_batches(str(path)))


class _Pipe(io.RawIOBase):
    """A stream that cannot seek and returns at most 700 bytes a read, like a pipe or a socket."""

    def __init__(self, data: bytes):
        self._data, self._pos = data, 0

    def readable(self):
        return True

    def seekable(self):
        return False

    def read(self, size=-1):
        size = 700 if size is None or size < 0 else min(size, 700)
        chunk = self._data[self._pos:self._pos + size]
        self._pos += len(chunk)
        return chunk


def test_non_seekable_short_reading_stream_gives_the_same_members(edge_tar):
    data = Path(edge_tar).read_bytes()
    seekable = list(tar_format.members(io.BytesIO(data), None, seek_min=1))
    piped = list(tar_format.members(_Pipe(data), None, seek_min=None))
    assert piped == seekable and len(piped) > 10


def test_seeking_past_skipped_payloads_gives_the_same_members(edge_tar, monkeypatch):
    data = Path(edge_tar).read_bytes()
    streamed = list(tar_format.members(io.BytesIO(data), frozenset({"txt"}), seek_min=None))
    # Tiny reads force payloads to lie beyond the buffer, so they are really seeked over.
    monkeypatch.setattr(tar_format, "_CHUNK", 512)
    seeked = list(tar_format.members(io.BytesIO(data), frozenset({"txt"}), seek_min=1))
    assert seeked == streamed and any(data is None for *_, data in seeked)


def test_memory_fsspec_tar_and_parquet(tmp_path):
    fs = fsspec.filesystem("memory")
    folder = f"/batches-{uuid.uuid4().hex[:8]}"
    try:
        fs.pipe(f"{folder}/edge.tar", tar_of(EDGE_MEMBERS))
        local = tmp_path / "edge.tar"
        local.write_bytes(tar_of(EDGE_MEMBERS))
        assert flat(read_caption_batches(f"memory://{folder}/edge.tar")) == flat(bench_readers.old_tar_batches(str(local)))
        import pyarrow as pa
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(pa.table({"TEXT": ["a", None, " "], "SAMPLE_ID": [7, 8, 9]}), buffer)
        fs.pipe(f"{folder}/m.parquet", buffer.getvalue())
        assert flat(read_caption_batches(f"memory://{folder}/m.parquet")) == (["7", "8", "9"], ["a", None, None], {1: "no_caption", 2: "empty_caption"}, [])
    finally:
        fs.rm(folder, recursive=True)


# --- runs of members taken a run at a time (batches._TarSamples) ----------------------------------


def _samples(n: int, pattern: tuple[str, ...], caption=lambda i: f"sample {i} of a dog".encode(), image_bytes: int = 700) -> list:
    return [(f"{i:06d}.{extension}", caption(i) if extension == "txt" else b'{"caption": "from json"}' if extension == "json"
             else b"\xff\xd8" + b"j" * (i % image_bytes)) for i in range(n) for extension in pattern]


def _odd_caption(i: int) -> bytes:
    """Captions that exercise every caption rule: non-ASCII, not UTF-8, a character cut across two
    samples, space at an edge, only space, empty."""
    return [b"plain", "caf\u00e9 cr\u00e8me".encode(), b"caf\xe9 \xff", b"cut \xc3", b"\xa9 mid-character", b"  spaced  ",
            b" \n", b"", "\u00a0nbsp\u00a0".encode(), b"tab\t"][i % 10]


RUN_TARS = {
    "txt+json": _samples(400, ("txt", "json")),
    "json+txt": _samples(400, ("json", "txt")),
    "jpg+txt+json": _samples(300, ("jpg", "txt", "json")),
    "txt only": _samples(500, ("txt",)),
    "large images (reads grow)": _samples(200, ("jpg", "txt", "json"), image_bytes=30_000),
    "odd captions": _samples(400, ("txt", "json"), _odd_caption),
    "json only": _samples(300, ("json",)),
    "a meta member mid-run": _samples(100, ("txt", "json")) + [("__index__", b"meta")] + _samples(100, ("txt", "json"))[2:],
    "a key seen twice": _samples(100, ("txt", "json")) + _samples(100, ("txt", "json"))[:40],
    "one sample without json": [m for m in _samples(200, ("txt", "json")) if m[0] != "000150.json"],
    "an upper-case extension": [(m[0].replace("000150.txt", "000150.TXT"), m[1]) for m in _samples(200, ("txt", "json"))],
    "a name with two dots": [(m[0].replace("000150.json", "000150.meta.json"), m[1]) for m in _samples(200, ("txt", "json"))],
    "a sample's members apart": _samples(200, ("txt", "json"))[:101] + [("000050.jpg", b"late")] + _samples(200, ("txt", "json"))[101:],
}


@pytest.fixture(params=[1 << 20, 40 * 1024], ids=["1MiB-reads", "40KiB-reads"])
def chunk(request, monkeypatch):
    """Small reads end runs mid-sample, so a sample is split between the run and the members after it."""
    monkeypatch.setattr(tar_format, "_CHUNK", request.param)
    return request.param


def _member_by_member(path: str, batch_rows: int) -> list:
    """The same reader with every run taken member by member."""
    original = batch_readers._TarSamples._pattern_block
    batch_readers._TarSamples._pattern_block = lambda self, run: None
    try:
        return _batches_or_error(path, batch_rows)
    finally:
        batch_readers._TarSamples._pattern_block = original


def _batches_or_error(path: str, batch_rows: int) -> list:
    out = []
    try:
        for batch in read_caption_batches(path, batch_rows=batch_rows):
            out.append((batch.keys, batch.captions, batch.problems, batch.invalid_utf8))
    except ShardError as error:
        out.append(str(error))
    return out


@pytest.mark.parametrize("layout", list(RUN_TARS))
def test_runs_taken_at_once_give_what_member_by_member_gives(tmp_path, chunk, layout):
    path = tmp_path / "run.tar"
    path.write_bytes(tar_of(RUN_TARS[layout]))
    taken = []
    original = batch_readers._TarSamples._take_block
    batch_readers._TarSamples._take_block = lambda self, run, *block: taken.append(block) or original(self, run, *block)
    try:
        for batch_rows in (7, 64, 10_000):
            assert _batches_or_error(str(path), batch_rows) == _member_by_member(str(path), batch_rows), batch_rows
    finally:
        batch_readers._TarSamples._take_block = original
    # Runs without txt, and a run (all of this tar, in 1 MiB reads) where a key comes back, go member by member.
    if layout != "json only" and not (layout == "a key seen twice" and chunk == 1 << 20):
        assert taken, "no run was taken at once: the test no longer tests that path"
    if "apart" not in layout and "twice" not in layout:
        assert flat(read_caption_batches(str(path))) == flat(bench_readers.old_tar_batches(str(path)))


def test_a_corrupt_header_mid_run_fails_after_the_same_batches(tmp_path, chunk):
    data = bytearray(tar_of(_samples(600, ("txt", "json"))))
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
        offset = tar.getmembers()[700].offset
    data[offset + 10] ^= 0x01
    path = tmp_path / "corrupt.tar"
    path.write_bytes(bytes(data))
    for batch_rows in (7, 100, 10_000):
        outcome = _batches_or_error(str(path), batch_rows)
        assert outcome == _member_by_member(str(path), batch_rows)
        assert "corrupt member header" in outcome[-1]


def test_a_repeated_extension_mid_run_is_corruption(tmp_path, chunk):
    members = _samples(300, ("txt", "json"))
    members[201] = ("000100.txt", b"a second txt for sample 100")
    path = tmp_path / "dup-run.tar"
    path.write_bytes(tar_of(members))
    outcome = _batches_or_error(str(path), 64)
    assert outcome == _member_by_member(str(path), 64) and "duplicate file name" in outcome[-1]


# --- every cut and every corruption of a tar fails as the old reader did ------------------------


def _old_outcome(path: str):
    try:
        return "ok", flat(bench_readers.old_tar_batches(path))
    except Exception:  # the old reader's failures were all ShardErrors in read_shard
        return "error", None


def _new_outcome(path: str):
    try:
        return "ok", flat(read_caption_batches(path))
    except ShardError as exc:
        assert "\n" not in str(exc) and path in str(exc)
        return "error", None


def test_every_cut_of_a_tar_is_detected_as_before(tmp_path):
    data = tar_of(EDGE_MEMBERS[:6] + EDGE_MEMBERS[14:18])
    path = tmp_path / "cut.tar"
    cuts = sorted(set(range(0, len(data), 512)) | set(range(7, len(data), 389)) | {len(data) - 512, len(data) - 1024})
    for cut in cuts:
        path.write_bytes(data[:cut])
        assert _new_outcome(str(path)) == _old_outcome(str(path)), cut


def test_garbage_in_any_header_block_is_detected_as_before(tmp_path):
    data = tar_of(EDGE_MEMBERS[:6])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        headers = [m.offset for m in tar.getmembers()]
    path = tmp_path / "garbage.tar"
    for offset in headers:
        for garbage in (b"Z" * 512, b"7" * 512, bytes(range(256)) * 2):
            corrupt = bytearray(data)
            corrupt[offset:offset + 512] = garbage
            path.write_bytes(bytes(corrupt))
            assert _new_outcome(str(path)) == _old_outcome(str(path)) == ("error", None), (offset, garbage[:4])


def test_a_flipped_checksum_byte_is_corruption(tmp_path):
    data = bytearray(tar_of([("a.txt", b"x"), ("b.txt", b"y")]))
    data[512 + 512 + 10] ^= 0x01  # a byte of the second member's name: the stored checksum no longer matches
    path = tmp_path / "flip.tar"
    path.write_bytes(bytes(data))
    with pytest.raises(ShardError, match="corrupt member header at byte 1024 \\(bad checksum\\)"):
        flat(read_caption_batches(str(path)))


def test_duplicate_extension_is_corruption_on_the_caption_path(tmp_path):
    path = tmp_path / "dup.tar"
    path.write_bytes(tar_of([("k.txt", b"a"), ("k.jpg", b"j"), ("k.TXT", b"b")]))
    with pytest.raises(ShardError, match="corrupt webdataset tar: .*duplicate"):
        flat(read_caption_batches(str(path)))


def test_sparse_members_are_refused(tmp_path):
    data = bytearray(tar_of([("k.txt", b"a dog")], tarfile.USTAR_FORMAT))
    data[156:157] = b"S"
    data[148:156] = b"        "
    data[148:155] = f"{sum(data[:512]):06o}\0".encode()
    path = tmp_path / "sparse.tar"
    path.write_bytes(bytes(data))
    with pytest.raises(ShardError, match="sparse member 'k.txt' is not supported"):
        flat(read_caption_batches(str(path)))


@pytest.mark.parametrize("content, reason", [
    (b"", "empty file"),
    (b"\x00" * 100, "not a tar archive"),
    (b"this is a plain text file, not a tar archive\n" * 40, "not a tar archive"),
])
def test_unreadable_tars(tmp_path, content, reason):
    path = tmp_path / "bad.tar"
    path.write_bytes(content)
    with pytest.raises(ShardError, match=reason):
        flat(read_caption_batches(str(path)))


def test_an_archive_of_one_zero_block_is_an_empty_shard(tmp_path):
    path = tmp_path / "zero.tar"
    path.write_bytes(bytes(1024))
    assert flat(read_caption_batches(str(path))) == flat(bench_readers.old_tar_batches(str(path))) == ([], [], {}, [])


def test_missing_shard(tmp_path):
    with pytest.raises(ShardError, match="missing"):
        flat(read_caption_batches(str(tmp_path / "absent.tar")))
    with pytest.raises(ShardError, match="missing"):
        flat(read_caption_batches(str(tmp_path / "absent.parquet")))
    (tmp_path / "folder.parquet").mkdir()
    with pytest.raises(ShardError, match="is a directory"):
        flat(read_caption_batches(str(tmp_path / "folder.parquet")))


# --- the benchmark layouts, and img2dataset sidecars ----------------------------------------------


@pytest.fixture(scope="module")
def layouts(tmp_path_factory, caption_rows) -> dict[str, list[str]]:
    directory = tmp_path_factory.mktemp("layouts")
    return {layout: write_layout(layout, directory, 2, 300, rows=caption_rows) for layout in ("parquet", "wds-text", "img2dataset")}


@pytest.mark.parametrize("layout", ["parquet", "wds-text", "img2dataset"])
def test_benchmark_layouts_match_the_old_readers_in_small_batches(layouts, layout):
    for path in layouts[layout]:
        new = list(read_caption_batches(path, batch_rows=128))
        assert [len(b) for b in new[:-1]] == [128] * (len(new) - 1)
        assert flat(new) == flat(bench_readers.old_caption_batches(path))
        assert len(flat(new)[0]) == (294 if layout == "img2dataset" else 300)


def _counts(batches, shard: str):
    vocabulary = from_names([["dog"], ["man"], ["woman"], ["tree"], ["car"], ["beach"], ["city"], ["person"]])
    result = count_caption_batches(batches, make_matcher(vocabulary), dataset="d", vocabulary_version=vocabulary.version, shard=shard)
    return result.samples, result.skipped, result.counts, sorted(result.hits)


def test_img2dataset_sidecar_counts_equal_the_tar(layouts):
    for path in layouts["img2dataset"]:
        sidecar = flat(read_caption_batches(path, captions_from="sidecar"))
        assert sidecar == flat(read_caption_batches(path))
        from_tar = _counts(read_caption_batches(path), path)
        from_sidecar = _counts(read_caption_batches(path, captions_from="sidecar", batch_rows=100), path)
        assert from_sidecar == from_tar and from_tar[2] and from_tar[3]


def _write_parquet(path: Path, columns: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)


def test_sidecar_null_caption_is_no_caption_and_failed_rows_are_dropped(tmp_path):
    (tmp_path / "00000.tar").write_bytes(b"")  # never opened: the captions come from beside it
    _write_parquet(tmp_path / "00000.parquet", {"key": ["a", "b", "c", "d"], "caption": ["a dog", None, "x", " "],
                                                "status": ["success", "success", "failed_to_download", "success"]})
    assert flat(read_caption_batches(str(tmp_path / "00000.tar"), captions_from="sidecar")) == (
        ["a", "b", "d"], ["a dog", None, None], {1: "no_caption", 2: "empty_caption"}, [])


@pytest.mark.parametrize("sidecar, reason", [
    (None, r"no img2dataset parquet sidecar 00000\.parquet beside the tar"),
    ({"key": ["a"], "caption": ["x"]}, r"sidecar 00000\.parquet has no column 'status'; its columns are: key, caption"),
    ({"url": ["u"], "status": ["success"]}, r"has no column 'key', 'caption'; its columns are: url, status"),
    (b"PAR1 not parquet", r"sidecar 00000\.parquet is unreadable: not a parquet file"),
    ({"key": [None], "caption": ["x"], "status": ["success"]}, "a successful row without a key"),
])
def test_sidecar_errors_are_one_line_shard_errors(tmp_path, sidecar, reason):
    tar = tmp_path / "00000.tar"
    tar.write_bytes(tar_of([("a.txt", b"x")]))
    if isinstance(sidecar, dict):
        _write_parquet(tmp_path / "00000.parquet", sidecar)
    elif sidecar is not None:
        (tmp_path / "00000.parquet").write_bytes(sidecar)
    with pytest.raises(ShardError, match=reason) as raised:
        flat(read_caption_batches(str(tar), captions_from="sidecar"))
    assert raised.value.url == str(tar) and "\n" not in str(raised.value)


def test_sidecar_needs_a_tar_shard_and_a_known_source(tmp_path):
    with pytest.raises(UnsupportedShardURL, match="need an img2dataset tar"):
        read_caption_batches(str(tmp_path / "a.parquet"), captions_from="sidecar")
    with pytest.raises(UnsupportedShardURL, match="unknown caption source"):
        read_caption_batches(str(tmp_path / "a.tar"), captions_from="elsewhere")
    assert batch_readers.sidecar_url("s3://b/x/00001.tar") == "s3://b/x/00001.parquet"
    assert batch_readers.sidecar_url("/d/00001.TAR.GZ") == "/d/00001.parquet"


# --- parquet columns ------------------------------------------------------------------------------

PARQUET_CASES = {
    # id: (columns, options, expected keys, expected captions)
    "img2dataset caption/key": ({"key": ["k1", "k2"], "caption": ["a", "b"], "url": ["u", "v"]}, {}, ["k1", "k2"], ["a", "b"]),
    "LAION TEXT/SAMPLE_ID": ({"SAMPLE_ID": [10, 11], "URL": ["u", "v"], "TEXT": ["a", "b"]}, {}, ["10", "11"], ["a", "b"]),
    "text without key": ({"text": ["a", "b"]}, {}, ["000000000", "000000001"], ["a", "b"]),
    "caption beats TEXT": ({"TEXT": ["no", "no"], "caption": ["a", "b"]}, {}, ["000000000", "000000001"], ["a", "b"]),
    "explicit columns win": ({"caption": ["no", "no"], "alt": ["a", "b"], "key": ["x", "y"], "id": ["i", "j"]},
                             {"caption_column": "alt", "key_column": "id"}, ["i", "j"], ["a", "b"]),
    "null keys fall back to the row index": ({"key": ["x", None], "caption": ["a", "b"]}, {}, ["x", "000000001"], ["a", "b"]),
    "float keys as str()": ({"key": [1.5, None], "caption": ["a", "b"]}, {}, ["1.5", "000000001"], ["a", "b"]),
}


@pytest.mark.parametrize("columns, options, keys, captions", PARQUET_CASES.values(), ids=PARQUET_CASES.keys())
def test_parquet_columns_are_auto_detected(tmp_path, columns, options, keys, captions):
    path = tmp_path / "p.parquet"
    _write_parquet(path, columns)
    new = flat(read_caption_batches(str(path), **options))
    assert new[:2] == (keys, captions)
    assert new == flat(batches_of(read_shard(str(path), **options)))


def test_parquet_binary_dictionary_and_null_captions_match_read_shard(tmp_path):
    import pyarrow as pa

    path = tmp_path / "p.parquet"
    captions = pa.array([b"a dog", b"caf\xe9", None, b"  ", b" x "], type=pa.binary())
    _write_parquet(path, {"caption": captions, "d": pa.array(["p", "q", "p", None, " "]).dictionary_encode()})
    assert flat(read_caption_batches(str(path))) == flat(batches_of(read_shard(str(path)))) == (
        ["000000000", "000000001", "000000002", "000000003", "000000004"], ["a dog", "caf\ufffd", None, None, "x"],
        {2: "no_caption", 3: "empty_caption"}, [1])
    assert flat(read_caption_batches(str(path), caption_column="d")) == flat(batches_of(read_shard(str(path), caption_column="d")))


def test_parquet_without_any_known_caption_column_lists_the_columns(tmp_path):
    path = tmp_path / "p.parquet"
    _write_parquet(path, {"URL": ["u"], "alt": ["a"]})
    with pytest.raises(ShardError, match=r"no caption column \(looked for caption, TEXT, text\); the shard's columns are: URL, alt"):
        flat(read_caption_batches(str(path)))
    with pytest.raises(ShardError, match=r"no caption column 'nope'; the shard's columns are: URL, alt"):
        flat(read_caption_batches(str(path), caption_column="nope"))


def test_parquet_reads_in_record_batches(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"caption": [f"c {i}" for i in range(2500)]}), path, row_group_size=1000)
    got = list(read_caption_batches(str(path), batch_rows=700))
    assert sum(len(b) for b in got) == 2500 and max(len(b) for b in got) <= 700
    assert flat(got) == flat(batches_of(read_shard(str(path))))


# --- TSV ------------------------------------------------------------------------------------------


def test_tsv_batches_match_line_by_line_reading_across_chunks(tmp_path, monkeypatch):
    path = tmp_path / "cc.tsv"
    lines = [b"a dog\thttp://x/1.jpg\r\n", b"no tab at all\n", b"\tonly a url\n", b"caf\xe9\tu\tmore\n", b"\n", b"  padded  \tu\n"]
    path.write_bytes(b"".join(lines * 40) + b"last line without newline\tu")
    monkeypatch.setattr(batch_readers, "_TSV_CHUNK", 37)  # chunks end mid-line
    new = list(read_caption_batches(str(path), batch_rows=50))
    assert flat(new) == flat(batches_of(read_shard(str(path))))
    assert len(flat(new)[0]) == 241 and len(flat(new)[3]) == 40


def test_empty_tsv_is_a_shard_error(tmp_path):
    path = tmp_path / "e.tsv"
    path.write_bytes(b"")
    with pytest.raises(ShardError, match="empty file"):
        flat(read_caption_batches(str(path)))


def test_caption_batches_are_caption_batches(tmp_path):
    path = tmp_path / "one.tar"
    path.write_bytes(tar_of([("k.json", json.dumps({"caption": "a dog"}).encode())]))
    [batch] = read_caption_batches(str(path))
    assert isinstance(batch, CaptionBatch) and (batch.keys, batch.captions) == (["k"], ["a dog"])


def test_parquet_captions_with_every_kind_of_surrounding_whitespace(tmp_path):
    path = tmp_path / "ws.parquet"
    whitespace = [c for c in map(chr, range(0x110000)) if c.isspace()]  # what str.strip removes
    captions = [f"{c}a dog{c}" for c in whitespace] + [c * 3 for c in whitespace]
    captions += ["mid\u3000dle", "", None, "x\u200b"]  # U+200B is not whitespace to str.strip
    _write_parquet(path, {"caption": captions})
    new = flat(read_caption_batches(str(path)))
    assert new == flat(batches_of(read_shard(str(path))))
    assert new[1][:29] == ["a dog"] * 29 and new[1][-4:] == ["mid\u3000dle", None, None, "x\u200b"]
