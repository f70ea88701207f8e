"""Matching captions given as bytes (`match_lines`, what `conceptfreq match` uses) finds what
matching the same captions as str finds, and `conceptfreq match` prints what it always printed:
one JSON array of names per input line, Python's text-file rules for lines and bad bytes."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from conceptfreq.commands.match import OutputTable, read_lines
from conceptfreq.core.lexicon import WordNet
from conceptfreq.core import matching
from conceptfreq.core.matching import BLOCK, BLOCK_BYTES, make_matcher
from conceptfreq.core.text import line_blocks, normalize_captions, normalize_lines
from conceptfreq.core.vocabulary import default, from_names
from tests.labelled.senses import rows as labelled_rows

VOCABULARY = from_names([["dog"], ["cat"], ["goose"], ["t-shirt"], ["café"], ["sports car"], ["car"], ["orange"],
                         ["watch"], ["can"], ["Zoë's \"quoted\" name"]])
ODD = ["a dog", "", "  ", "DOGS, cats & geese", "café CAFÉ cafe\u0301", "tab\tseparated dog", "sep\x01arated cat",
       "ＦＵＬＬＷＩＤＴＨ ＤＯＧ", "t-shirts, tshirt", "a sports car", "orange watch", "you can watch", "zoë s quoted name",
       "\ufeffbom dog", "emoji 🐕 dog", "trailing space dog "]


def as_bytes(captions: list[str]) -> bytes:
    return "\n".join(captions).encode()


def test_normalize_lines_is_normalize_captions_on_bytes():
    captions = ODD + [row.caption for row in labelled_rows()]
    assert normalize_lines(as_bytes(captions)) == normalize_captions(captions)
    assert normalize_lines(b"") == normalize_captions([""])
    assert normalize_lines(b"caf\xc3 \xff dog") == normalize_captions([b"caf\xc3 \xff dog".decode("utf-8", "replace")])


def test_line_blocks_cut_between_lines():
    data = as_bytes([f"caption {i}" * (i % 4) for i in range(25)])
    for size in (1, 2, 7, 30, len(data) - 1, len(data), 10 * len(data)):
        blocks = list(line_blocks(data, size))
        assert b"\n".join(blocks) == data
        assert all(len(block) <= size + 40 for block in blocks)  # a block ends at the first line end after `size` bytes
    assert list(line_blocks(b"", 4)) == [b""] and list(line_blocks(b"no line end at all", 4)) == [b"no line end at all"]


@pytest.mark.parametrize("method", ["phrase", "phrase+pos", "bag"])
@pytest.mark.parametrize("block_bytes", [100, 4096, BLOCK_BYTES])
def test_match_lines_finds_what_match_finds(method, block_bytes, monkeypatch):
    monkeypatch.setattr(matching, "BLOCK_BYTES", block_bytes)
    if method == "phrase+pos" and not WordNet.available():
        pytest.skip("WordNet 3.0 (Debian wordnet-base) is not installed")
    matcher = make_matcher(VOCABULARY, method)
    captions = (ODD * (2 * BLOCK // len(ODD) + 3))[: 2 * BLOCK + 5]  # more than one block of str, a ragged last one
    expected, got = matcher.match(captions), matcher.match_lines(as_bytes(captions))
    assert expected.concept.size > 0
    assert got.n_captions == expected.n_captions == len(captions)
    assert np.array_equal(got.caption, expected.caption) and np.array_equal(got.concept, expected.concept)
    assert got.ambiguous == expected.ambiguous


def text_lines(data: bytes) -> list[str]:
    """How `conceptfreq match` always read its input: a text file with universal newlines."""
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace", newline="")
    return [line.rstrip("\r\n") for line in stream]


@pytest.mark.parametrize("seed", range(30))
def test_read_lines_splits_lines_as_a_text_file_does(seed):
    rng = random.Random(seed)
    alphabet = [b"a", b"b", b" ", b"\n", b"\r", b"\r\n", b"\t", b"\xc3\xa9", b"\xff", b"\xe2\x82"]
    data = b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 200)))
    for block in (1, 2, 3, 16, 1 << 20):
        lines = [line for chunk in read_lines(io.BytesIO(data), block) for line in chunk.decode("utf-8", "replace").split("\n")]
        assert lines == text_lines(data), (data, block)


def test_output_table_renders_json_arrays_of_names():
    matcher = make_matcher(VOCABULARY, "phrase")
    names = {c.id: c.name for c in VOCABULARY}
    hits = matcher.match(ODD)
    expected = "".join(json.dumps([names[c] for c in cs], ensure_ascii=False) + "\n" for cs in hits.per_caption())
    assert OutputTable(VOCABULARY, "utf-8", "strict").render(hits) == expected.encode()
    ascii_only = "".join(json.dumps([names[c] for c in cs]) + "\n" for cs in hits.per_caption())
    assert OutputTable(VOCABULARY, "ascii", "strict").render(hits) == ascii_only.encode()


def reference_output(data: bytes, tsv: bool, vocabulary) -> bytes:
    """What `conceptfreq match` printed before it read bytes: per line, json.dumps of the names."""
    captions = [line.split("\t", 1)[0] if tsv else line for line in text_lines(data)]
    names = {c.id: c.name for c in vocabulary}
    hits = make_matcher(vocabulary, "phrase").match(captions).per_caption()
    return "".join(json.dumps([names[c] for c in cs], ensure_ascii=False) + "\n" for cs in hits).encode()


@pytest.mark.parametrize("suffix", [".txt", ".tsv"])
def test_the_match_command_prints_what_it_always_printed(suffix, tmp_path):
    captions = [row.caption for row in labelled_rows()]
    data = ("\n".join(captions[:200]) + "\r\n" + "\r\n".join(ODD) + "\rlone cr dog\n\n"
            + "\t".join(captions[200:210]) + "\n").encode() + b"bad \xff utf-8 dog\tsecond column cat\n\xe2\x82 no newline dog"
    path = tmp_path / f"captions{suffix}"
    path.write_bytes(data)
    env = {**os.environ, "CONCEPTFREQ_CACHE_DIR": str(tmp_path / "cache"), "PYTHONIOENCODING": "utf-8"}
    run = subprocess.run([sys.executable, "-m", "conceptfreq.cli", "match", "--input", str(path)],
                         capture_output=True, env=env, check=True)
    assert run.stdout == reference_output(data, suffix == ".tsv", default())
    assert run.stdout.count(b"\n") == len(text_lines(data))
    stdin = subprocess.run([sys.executable, "-m", "conceptfreq.cli", "match"], input=data, capture_output=True, env=env, check=True)
    assert stdin.stdout == reference_output(data, False, default())


def test_the_match_command_on_empty_input_prints_nothing(tmp_path):
    env = {**os.environ, "CONCEPTFREQ_CACHE_DIR": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-m", "conceptfreq.cli", "match", "--no-cache"], input=b"", capture_output=True,
                         env=env, check=True)
    assert run.stdout == b"" and run.stderr == b""
    assert not (tmp_path / "cache").exists()
