"""Shard readers (adapters/shards.py) and the synthetic shard generator (synthetic.py)."""

from __future__ import annotations

import io
import json
import pickle
import random
import tarfile
import uuid
from pathlib import Path

import fsspec
import pytest

from conceptfreq import synthetic
from conceptfreq.adapters.shards import (
    Sample,
    ShardError,
    UnsupportedShardURL,
    shard_format,
    expand_shards,
    read_shard,
    shard_size,
)
from conceptfreq.errors import UserError
from tests.paths import SHARED_DATA
from conceptfreq.synthetic import tar_bytes as raw_tar

NAMES = ["dog", "cat", "great white shark", "beach", "airplane", "tabby cat", "red fox", "park"]
SHARED_CC3M = SHARED_DATA / "cc3m_val_captions.tsv"


def read_all(url: str, **options) -> list[Sample]:
    return list(read_shard(url, **options))


@pytest.fixture
def memory_dir():
    """A private folder of fsspec's process-wide memory filesystem, removed afterwards."""
    fs = fsspec.filesystem("memory")
    folder = f"/test-{uuid.uuid4().hex[:8]}"
    yield fs, folder
    if fs.exists(folder):
        fs.rm(folder, recursive=True)


def write_parquet(path: Path, columns: dict, **kwargs) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path, **kwargs)
    return str(path)


# --- round trips with the generator ---------------------------------------------------------------

EXPECTED_KEYS = {
    "tar": lambda sample, index: sample.key,
    "parquet": lambda sample, index: sample.key,  # read with key_column="key"
    "tsv": lambda sample, index: f"{index:09d}",
}


@pytest.mark.parametrize("shard_format", ["tar", "parquet", "tsv"])
def test_each_format_round_trips_captions_and_stable_keys(tmp_path, shard_format):
    paths = synthetic.write_shards(tmp_path, n_shards=2, samples_per_shard=30, concept_names=NAMES, seed=3, format=shard_format)
    assert [Path(p).name for p in paths] == [f"synthetic-0000{i}.{shard_format}" for i in range(2)]
    options = {"key_column": "key"} if shard_format == "parquet" else {}
    expected = list(synthetic.iter_samples(n_shards=2, samples_per_shard=30, concept_names=NAMES, seed=3))
    for shard, path in enumerate(paths):
        wanted = [s for s in expected if s.shard == shard]
        samples = read_all(path, **options)
        assert [s.caption for s in samples] == [w.caption for w in wanted]
        assert [s.key for s in samples] == [EXPECTED_KEYS[shard_format](w, i) for i, w in enumerate(wanted)]
        assert all(s.problem is None and not s.invalid_utf8 and s.image is None for s in samples)
        assert read_all(path, **options) == samples


def test_parquet_keys_default_to_zero_padded_row_index(tmp_path):
    paths = synthetic.write_shards(tmp_path, n_shards=1, samples_per_shard=2500, concept_names=NAMES, format="parquet")
    keys = [s.key for s in read_shard(paths[0])]
    assert keys == [f"{i:09d}" for i in range(2500)]  # across several row groups


def test_tar_samples_alternate_txt_and_json_captions(tmp_path):
    path = synthetic.write_shards(tmp_path, n_shards=1, samples_per_shard=4, concept_names=NAMES)[0]
    with tarfile.open(path) as tar:
        extensions = [name.split(".", 1)[1] for name in tar.getnames()]
    assert extensions == ["txt", "json", "txt", "json"]
    assert all(s.caption for s in read_shard(path))


@pytest.mark.parametrize("shard_format", ["tar", "parquet"])
def test_images_are_returned_only_with_images(tmp_path, shard_format):
    from PIL import Image

    path = synthetic.write_shards(tmp_path, n_shards=1, samples_per_shard=4, concept_names=NAMES, format=shard_format, with_images=True, image_size=16)[0]
    with_images = read_all(path, with_images=True)
    assert all(Image.open(io.BytesIO(s.image)).size == (16, 16) for s in with_images)
    without = read_all(path)
    assert all(s.image is None for s in without)
    assert [s.caption for s in without] == [s.caption for s in with_images]


# --- webdataset tar members -----------------------------------------------------------------------

CAPTION_MEMBERS = [
    # (id, members of one sample, expected caption, invalid_utf8, problem)
    ("txt", [("k.txt", b"a dog\n")], "a dog", False, None),
    ("json caption", [("k.json", b'{"caption": "a dog", "url": "u"}')], "a dog", False, None),
    ("json text", [("k.json", b'{"text": "a dog"}')], "a dog", False, None),
    ("json txt", [("k.json", b'{"txt": "a dog"}')], "a dog", False, None),
    ("txt wins over json", [("k.json", b'{"caption": "json"}'), ("k.txt", b"txt")], "txt", False, None),
    ("txt wins over bad json", [("k.json", b"{oops"), ("k.txt", b"txt")], "txt", False, None),
    ("uppercase extension", [("k.TXT", b"a dog")], "a dog", False, None),
    ("json null caption", [("k.json", b'{"caption": null}')], None, False, "no_caption"),
    ("json without caption", [("k.json", b'{"url": "u"}')], None, False, "no_caption"),
    ("json not an object", [("k.json", b'["a dog"]')], None, False, "bad_json"),
    ("json caption not text", [("k.json", b'{"caption": 5}')], None, False, "bad_json"),
    ("invalid json", [("k.json", b'{"caption": "a d')], None, False, "bad_json"),
    ("image only", [("k.jpg", b"\xff\xd8jpeg")], None, False, "no_caption"),
    ("empty txt", [("k.txt", b" \n")], "", False, "empty_caption"),
    ("invalid utf-8 txt", [("k.txt", b"caf\xe9")], "caf\ufffd", True, None),
    ("invalid utf-8 json", [("k.json", b'{"caption": "caf\xe9"}')], "caf\ufffd", True, None),
]


@pytest.mark.parametrize("members, caption, invalid_utf8, problem", [c[1:] for c in CAPTION_MEMBERS], ids=[c[0] for c in CAPTION_MEMBERS])
def test_tar_caption_members(tmp_path, members, caption, invalid_utf8, problem):
    path = tmp_path / "one.tar"
    path.write_bytes(raw_tar(members))
    [sample] = read_all(str(path))
    assert (sample.key, sample.caption, sample.invalid_utf8, sample.problem) == ("k", caption, invalid_utf8, problem)


@pytest.mark.parametrize(
    "member, key",
    [("a.b.txt", "a"), ("dir/0001.txt", "dir/0001"), ("0001.seg.txt", "0001")],
    ids=["dotted key", "folder", "double extension"],
)
def test_tar_keys_follow_webdataset_first_dot_rule(tmp_path, member, key):
    path = tmp_path / "keys.tar"
    path.write_bytes(raw_tar([(member, b"x"), ("zzz.txt", b"y")]))
    assert [s.key for s in read_shard(str(path))][0] == key


def test_tar_skips_webdataset_meta_members(tmp_path):
    path = tmp_path / "meta.tar"
    path.write_bytes(raw_tar([("__index__", b"meta"), ("k.txt", b"a dog")]))
    assert [(s.key, s.caption) for s in read_shard(str(path))] == [("k", "a dog")]


def test_tar_picks_the_first_image_extension(tmp_path):
    path = tmp_path / "img.tar"
    path.write_bytes(raw_tar([("k.png", b"png"), ("k.txt", b"a dog"), ("k.webp", b"webp")]))
    [sample] = read_all(str(path), with_images=True)
    assert sample.image == b"png"


# --- shards that cannot be read -------------------------------------------------------------------


def _member_layout(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


GOOD_TAR = raw_tar([(f"{i:04d}.txt", b"x" * 600) for i in range(3)] + [("0003.jpg", b"j" * 600), ("0003.txt", b"y")])
LAYOUT = _member_layout(GOOD_TAR)
END_OF_MEMBERS = LAYOUT[-1].offset_data + 512

TRUNCATIONS = {
    "at a member boundary": LAYOUT[2].offset,
    "inside a member header": LAYOUT[2].offset + 100,
    "inside member data": LAYOUT[2].offset_data + 300,
    "inside member padding": LAYOUT[2].offset_data + 700,
    "inside a skipped image": LAYOUT[3].offset_data + 100,
    "before the end-of-archive block": END_OF_MEMBERS,
}


@pytest.mark.parametrize("cut", TRUNCATIONS.values(), ids=TRUNCATIONS.keys())
def test_truncated_tar_raises_after_yielding_some_samples(tmp_path, cut):
    path = tmp_path / "cut.tar"
    path.write_bytes(GOOD_TAR[:cut])
    samples = read_shard(str(path))
    assert next(samples).key == "0000"
    with pytest.raises(ShardError, match="truncated|unexpected end"):
        list(samples)


def test_tar_with_one_end_block_is_complete(tmp_path):
    path = tmp_path / "end.tar"
    path.write_bytes(GOOD_TAR[: END_OF_MEMBERS + 512])
    assert [s.key for s in read_shard(str(path))] == ["0000", "0001", "0002", "0003"]


def test_garbage_member_header_is_corruption(tmp_path):
    data = bytearray(GOOD_TAR)
    data[LAYOUT[2].offset : LAYOUT[2].offset + 512] = b"Z" * 512
    path = tmp_path / "garbage.tar"
    path.write_bytes(bytes(data))
    with pytest.raises(ShardError, match="corrupt member header"):
        read_all(str(path))


def test_duplicate_member_is_corruption(tmp_path):
    path = tmp_path / "dup.tar"
    path.write_bytes(raw_tar([("k.txt", b"a"), ("k.txt", b"b")]))
    with pytest.raises(ShardError, match="duplicate"):
        read_all(str(path))


UNREADABLE = {
    # kind of write_bad_shards: a phrase of the reason
    "truncated_tar": "unexpected end of data",
    "not_tar": "not a tar archive",
    "empty": "empty file",
    "missing": "missing",
}
BAD_SAMPLES = {
    # kind: (caption of key 0001, invalid_utf8, problem)
    "invalid_utf8": ("caf\ufffd by the sea \ufffd\ufffd", True, None),
    "empty_caption": ("", False, "empty_caption"),
    "huge_caption": (("a very long caption " * (70 * 1024 // 20)).strip(), False, None),
    "bad_json": (None, False, "bad_json"),
}


def test_write_bad_shards_covers_every_kind(tmp_path):
    assert set(synthetic.write_bad_shards(tmp_path)) == set(UNREADABLE) | set(BAD_SAMPLES)


@pytest.mark.parametrize("kind, reason", UNREADABLE.items(), ids=UNREADABLE.keys())
def test_unreadable_bad_shards_raise_shard_error(tmp_path, kind, reason):
    url = synthetic.write_bad_shards(tmp_path)[kind]
    with pytest.raises(ShardError, match=reason) as raised:
        read_all(url)
    assert raised.value.url == url and url in str(raised.value) and "\n" not in str(raised.value)


def test_truncated_bad_shard_yields_samples_first(tmp_path):
    samples = read_shard(synthetic.write_bad_shards(tmp_path)["truncated_tar"])
    got = []
    with pytest.raises(ShardError):
        for sample in samples:
            got.append(sample.key)
    assert got == ["0000", "0001"]


@pytest.mark.parametrize("kind", BAD_SAMPLES, ids=BAD_SAMPLES.keys())
def test_bad_samples_are_flagged_in_readable_shards(tmp_path, kind):
    good, bad = read_all(synthetic.write_bad_shards(tmp_path)[kind])
    assert (good.key, good.caption, good.problem) == ("0000", "a photo of a dog", None)
    assert (bad.key, bad.caption, bad.invalid_utf8, bad.problem) == ("0001", *BAD_SAMPLES[kind])


@pytest.mark.parametrize("suffix, content, reason", [
    (".parquet", b"", "not a parquet file"),
    (".parquet", b"PAR1 definitely not parquet", "not a parquet file"),
    (".tsv", b"", "empty file"),
    (".tar", b"\x00" * 100, "empty file|not a tar|truncated"),
])
def test_unreadable_files_of_each_format(tmp_path, suffix, content, reason):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(ShardError, match=reason):
        read_all(str(path))


def test_truncated_parquet_raises(tmp_path):
    path = synthetic.write_shards(tmp_path, n_shards=1, samples_per_shard=50, concept_names=NAMES, format="parquet")[0]
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ShardError, match="not a parquet file, or truncated"):
        read_all(path)


def test_shard_error_survives_pickling():
    error = pickle.loads(pickle.dumps(ShardError("s.tar", "truncated\nbadly")))
    assert (error.url, error.reason, str(error)) == ("s.tar", "truncated badly", "s.tar: truncated badly")
    assert str(pickle.loads(pickle.dumps(ShardError("whole message")))) == "whole message"


# --- parquet options ------------------------------------------------------------------------------


def test_parquet_custom_caption_and_key_columns(tmp_path):
    url = write_parquet(tmp_path / "c.parquet", {"id": ["a", None, "c"], "text": ["a dog", None, b"caf\xe9"]})
    samples = read_all(url, caption_column="text", key_column="id")
    assert [(s.key, s.caption, s.invalid_utf8, s.problem) for s in samples] == [
        ("a", "a dog", False, None),
        ("000000001", None, False, "no_caption"),  # null key: the row index stands in
        ("c", "caf\ufffd", True, None),
    ]


@pytest.mark.parametrize("options, message", [
    ({"caption_column": "caption"}, r"no caption column 'caption'; the shard's columns are: TEXT, url"),
    ({"caption_column": "TEXT", "key_column": "id"}, r"no key column 'id'; the shard's columns are: TEXT, url"),
    ({"caption_column": "url"}, r"caption column 'url' holds int64, not text"),
])
def test_parquet_column_errors_name_the_columns(tmp_path, options, message):
    url = write_parquet(tmp_path / "c.parquet", {"TEXT": ["a dog"], "url": [1]})
    with pytest.raises(ShardError, match=message):
        read_all(url, **options)


def test_parquet_hugging_face_image_struct(tmp_path):
    import pyarrow as pa

    images = pa.array([{"bytes": b"img0", "path": "0.jpg"}, {"bytes": None, "path": "1.jpg"}])
    url = write_parquet(tmp_path / "hf.parquet", {"caption": ["a", "b"], "image": images})
    assert [s.image for s in read_shard(url, with_images=True)] == [b"img0", None]


# --- TSV ------------------------------------------------------------------------------------------


def test_tsv_takes_the_first_column_only(tmp_path):
    path = tmp_path / "cc.tsv"
    path.write_bytes(b"a dog\thttp://x/1.jpg\r\nno tab at all\n\tonly a url\ncaf\xe9\thttp://x/3.jpg\tmore\n")
    samples = read_all(str(path))
    assert [(s.key, s.caption, s.invalid_utf8, s.problem) for s in samples] == [
        ("000000000", "a dog", False, None),
        ("000000001", "no tab at all", False, None),
        ("000000002", "", False, "empty_caption"),
        ("000000003", "caf\ufffd", True, None),
    ]


@pytest.mark.skipif(not SHARED_CC3M.is_file(), reason="../shared/data/cc3m_val_captions.tsv is not beside this checkout")
def test_real_cc3m_validation_tsv():
    samples = read_all(str(SHARED_CC3M))
    assert len(samples) == 15833
    assert samples[1].caption == "an angler fishes river on a snowy day ."
    assert not any(s.problem or s.invalid_utf8 for s in samples)


# --- URLs, patterns and formats -------------------------------------------------------------------


def test_brace_patterns_keep_missing_shards(tmp_path):
    paths = synthetic.write_shards(tmp_path, n_shards=2, samples_per_shard=1, concept_names=NAMES)
    expanded = expand_shards(str(tmp_path / "synthetic-{00000..00002}.tar"))
    assert expanded == paths + [str(tmp_path / "synthetic-00002.tar")]
    with pytest.raises(ShardError, match="missing"):
        read_all(expanded[-1])


def test_globs_are_sorted_files_and_keep_relative_paths(tmp_path, monkeypatch):
    synthetic.write_shards(tmp_path / "d", n_shards=3, samples_per_shard=1, concept_names=NAMES)
    (tmp_path / "d" / "folder.tar").mkdir()
    monkeypatch.chdir(tmp_path)
    assert expand_shards("d/*.tar") == [f"d/synthetic-0000{i}.tar" for i in range(3)]
    assert expand_shards(str(tmp_path / "d" / "synthetic-0000[02].tar")) == [
        str(tmp_path / "d" / f"synthetic-0000{i}.tar") for i in (0, 2)
    ]
    assert expand_shards("d/synthetic-{00001,00001}.tar") == ["d/synthetic-00001.tar"]


@pytest.mark.parametrize("pattern, message", [
    ("nothing-here/*.tar", "no shards match"),
    ("a-{0..3.tar", "unbalanced braces"),
    ("  ", "empty"),
])
def test_bad_patterns_are_user_errors(tmp_path, monkeypatch, pattern, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=message):
        expand_shards(pattern)


def test_memory_fsspec_urls(memory_dir):
    fs, folder = memory_dir
    for index in range(2):
        fs.pipe(f"{folder}/s-{index}.tar", raw_tar([(f"{index}.txt", f"caption {index}".encode())]))
    urls = expand_shards(f"memory://{folder}/*.tar")
    assert urls == [f"memory://{folder}/s-0.tar", f"memory://{folder}/s-1.tar"]
    assert [s.caption for url in urls for s in read_shard(url)] == ["caption 0", "caption 1"]
    assert expand_shards(f"memory://{folder}/s-{{0..1}}.tar") == [f"memory://{folder}/s-0.tar", f"memory://{folder}/s-1.tar"]
    assert shard_size(urls[0]) == len(fs.cat(f"{folder}/s-0.tar"))


def test_shard_size(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_bytes(b"a\tb\n")
    assert shard_size(str(path)) == 4
    assert shard_size(str(tmp_path / "absent.tar")) is None


def test_unknown_scheme_is_reported_before_reading():
    with pytest.raises(UnsupportedShardURL, match=r"unknown URL scheme 'nosuch'.*s3://") as raised:
        read_shard("nosuch://bucket/a.tar")
    assert isinstance(raised.value, UserError)
    with pytest.raises(UnsupportedShardURL, match="unknown URL scheme"):
        expand_shards("nosuch://bucket/a-{0..1}.tar")


def test_known_scheme_without_its_package_says_what_to_install():
    pytest.importorskip("fsspec")
    try:
        import s3fs  # noqa: F401

        pytest.skip("s3fs is installed here")
    except ImportError:
        pass
    with pytest.raises(UnsupportedShardURL, match=r"s3://.*needs a package.*s3fs"):
        expand_shards("s3://bucket/cc3m-{00000..00001}.tar")


@pytest.mark.parametrize("url, declared, expected", [
    ("data/a.tar", None, "tar"),
    ("data/A.TAR", None, "tar"),
    ("data/a.tar.gz", None, "tar"),
    ("data/a.tgz", None, "tar"),
    ("s3://b/a.parquet", None, "parquet"),
    ("a.pq", None, "parquet"),
    ("a.tsv", None, "tsv"),
    ("Train_GCC-training.txt", None, "tsv"),
    ("https://host/a.tar?download=1", None, "tar"),
    ("a.tar", "TSV", "tsv"),
    ("noextension", "parquet", "parquet"),
])
def test_detect_format(url, declared, expected):
    assert shard_format(url, declared) == expected


@pytest.mark.parametrize("url, declared, message", [
    ("a.zip", None, r"cannot tell the shard format.*\.parquet"),
    ("a.tar", "zip", "unknown shard format 'zip'"),
])
def test_detect_format_errors(url, declared, message):
    with pytest.raises(UnsupportedShardURL, match=message):
        shard_format(url, declared)


def test_declared_format_overrides_the_extension(tmp_path):
    path = tmp_path / "captions.dat"
    path.write_bytes(b"a dog\tu\n")
    assert [s.caption for s in read_shard(str(path), format="tsv")] == ["a dog"]


def test_gzipped_tar_reads(tmp_path):
    path = tmp_path / "a.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("k.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"a dog"))
    assert [s.caption for s in read_shard(str(path))] == ["a dog"]


# --- the generator --------------------------------------------------------------------------------


def test_generated_shards_are_byte_for_byte_deterministic(tmp_path):
    first = synthetic.write_shards(tmp_path / "a", n_shards=2, samples_per_shard=20, concept_names=NAMES, seed=5, with_images=True, image_size=8)
    second = synthetic.write_shards(tmp_path / "b", n_shards=2, samples_per_shard=20, concept_names=NAMES, seed=5, with_images=True, image_size=8)
    assert [Path(p).read_bytes() for p in first] == [Path(p).read_bytes() for p in second]
    other = synthetic.write_shards(tmp_path / "c", n_shards=2, samples_per_shard=20, concept_names=NAMES, seed=6)
    assert [s.caption for s in read_shard(other[0])] != [s.caption for s in read_shard(first[0])]


def test_a_shard_does_not_depend_on_how_many_are_written(tmp_path):
    one = synthetic.iter_samples(n_shards=1, samples_per_shard=50, concept_names=NAMES, seed=1)
    three = synthetic.iter_samples(n_shards=3, samples_per_shard=50, concept_names=NAMES, seed=1)
    assert list(one) == [s for s in three if s.shard == 0]


def test_mentions_follow_a_long_tail():
    samples = list(synthetic.iter_samples(n_shards=4, samples_per_shard=500, concept_names=NAMES, seed=0))
    counts = synthetic.mention_counts(n_shards=4, samples_per_shard=500, concept_names=NAMES, seed=0)
    ranked = counts.most_common()
    assert ranked[0][1] > 4 * ranked[-1][1]
    assert 0.15 < sum(not s.names for s in samples) / len(samples) < 0.35
    assert max(len(s.names) for s in samples) == 3
    for sample in samples:
        for name in sample.names:
            assert name in sample.caption
        # Filler words never spell a vocabulary name on their own ("beach", "park" are in NAMES).
        filler = sample.caption
        for name in sorted(sample.names, key=len, reverse=True):
            filler = filler.replace(name, " ")
        assert not any(f" {name} " in f" {filler} " for name in ("beach", "park"))


@pytest.mark.parametrize("count", [0, 1, 2, 3])
def test_caption_for_mentions_every_name(count):
    rng = random.Random(count)
    names = NAMES[:count]
    for _ in range(20):
        caption = synthetic.caption_for(rng, names)
        assert caption and all(name in caption for name in names)


def test_caption_for_refuses_too_many_names():
    with pytest.raises(ValueError):
        synthetic.caption_for(random.Random(0), NAMES[:4])


def test_write_shards_refuses_images_in_tsv(tmp_path):
    with pytest.raises(UserError, match="captions only"):
        synthetic.write_shards(tmp_path, n_shards=1, samples_per_shard=1, concept_names=NAMES, format="tsv", with_images=True)


@pytest.mark.parametrize("names, pattern", [
    (["d/s-00000.tar", "d/s-00001.tar", "d/s-00002.tar"], "d/s-{00000..00002}.tar"),
    ([f"d/s-{i:05d}.tar" for i in range(12)], "d/s-{00000..00011}.tar"),
    (["d/s-00000.tar", "d/s-00002.tar"], "d/s-{00000,00002}.tar"),
    (["d/s-00007.tar"], "d/s-00007.tar"),
])
def test_brace_pattern(names, pattern):
    assert synthetic.brace_pattern(names) == pattern
    assert expand_shards(pattern) == names


def test_brace_pattern_of_written_shards_expands_back(tmp_path):
    paths = synthetic.write_shards(tmp_path, n_shards=11, samples_per_shard=1, concept_names=NAMES, format="tsv", name="sample")
    assert expand_shards(synthetic.brace_pattern(paths)) == paths


def test_json_members_written_by_the_generator_carry_caption_and_url(tmp_path):
    path = synthetic.write_shards(tmp_path, n_shards=1, samples_per_shard=2, concept_names=NAMES)[0]
    with tarfile.open(path) as tar:
        document = json.loads(tar.extractfile(tar.getmember("000000001.json")).read())
    assert set(document) == {"caption", "key", "url"}


def _with_junk_after_name(data: bytes, member_index: int) -> bytes:
    """The tar with bytes after the NUL that ends one member's name (tarfile ignores them), its
    checksum fixed."""
    start = _member_layout(data)[member_index].offset
    header = bytearray(data[start:start + 512])
    end = header.index(0, 0, 100)
    header[end + 1:end + 4] = b"JNK"
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return data[:start] + bytes(header) + data[start + 512:]


def test_tar_runs_of_members_read_as_one_header_at_a_time(tmp_path, monkeypatch):
    """The run-at-a-time path (names and keys of many plain headers at once) against the exact
    one-header-at-a-time path, on names of every kind: dots, folders, meta names, upper case,
    UTF-8, bytes that are not UTF-8, and a name field with bytes after its NUL."""
    from conceptfreq.adapters.shards import tar as tar_format

    names = ["0001.txt", "0001.JSON", "a.b.c.txt", ".hidden", "noext", "__index__", "__meta__.json", "x__y.txt",
             "dir/0002.txt", "dir/0002.jpg", "\u00fcn\u00ef.txt", "trailing.", "Upper.TXT", "s p a c e.txt", "bad\udcff.txt"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="surrogateescape") as tar:
        for i in range(60):  # enough plain headers for the run path
            name = names[i % len(names)]
            name = name if name.startswith("__") else f"{i:03d}-{name}"
            info = tarfile.TarInfo(name)
            info.size = len(payload := f"data {i}".encode())
            tar.addfile(info, io.BytesIO(payload))
    path = tmp_path / "names.tar"
    path.write_bytes(_with_junk_after_name(buffer.getvalue(), 16))

    def scan() -> list:
        with open(path, "rb") as f:
            return list(tar_format.members(f, frozenset({"txt", "json"})))

    calls = []
    names_and_keys = tar_format._Plain.names_and_keys
    monkeypatch.setattr(tar_format._Plain, "names_and_keys", lambda self, chain: calls.append(chain) or names_and_keys(self, chain))
    runs = scan()
    assert sum(map(len, calls)) > 40, "the run path must read most of the headers"
    monkeypatch.setattr(tar_format, "_FAST_MIN", 1 << 40)  # every header parsed on its own
    exact = scan()
    assert runs == exact
    assert len(exact) == 60 - 4 - 4  # `NNN-noext` and `__index__` have no key
    assert ("016-0001.JSON", "016-0001", "json", b"data 16") in exact  # the name is cut at its NUL
    assert any(name.startswith("014-bad\udcff") for name, *_ in exact)
