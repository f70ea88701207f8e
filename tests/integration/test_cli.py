"""The `match`, `count`, `query` and `top` commands, end to end, on both stores."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from conceptfreq.cli import main
from conceptfreq.core.vocabulary import default
from conceptfreq.synthetic import brace_pattern, write_bad_shards, write_shards

NAMES = ["dog", "cat", "great white shark", "tench", "goose", "t-shirt"]


@pytest.fixture
def vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("dog|puppy\ncat\ngreat white shark\ntench\ngoose\nt-shirt\n")
    return path


@pytest.fixture
def shards(tmp_path):
    return write_shards(tmp_path / "shards", n_shards=3, samples_per_shard=400, concept_names=NAMES, seed=3)


def cli(capsys, *args) -> tuple[int, str, str]:
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def expected_counts(shards, names) -> Counter:
    """Brute force: the same matcher, one caption at a time, straight from the shard files."""
    from conceptfreq.adapters.shards import read_shard
    from conceptfreq.core.matching import PhraseMatcher
    from conceptfreq.core.vocabulary import parse_text

    vocabulary = parse_text("dog|puppy\ncat\ngreat white shark\ntench\ngoose\nt-shirt\n")
    matcher = PhraseMatcher(vocabulary)
    counts = Counter()
    for shard in shards:
        for sample in read_shard(shard):
            for concept in matcher.match([sample.caption]).per_caption()[0]:
                counts[vocabulary.concepts[concept].name] += 1
    return counts


def test_count_query_top(capsys, store_url, vocab_file, shards):
    status, out, err = cli(capsys, "count", "--dataset", "syn", "--shards", brace_pattern(shards), "--vocab", vocab_file,
                           "--store", store_url, "--json", "--no-progress")
    assert status == 0, err
    summary = json.loads(out)
    assert (summary["done"], summary["samples"], summary["failed"]) == (3, 1200, [])

    status, out, _ = cli(capsys, "query", "--dataset", "syn", "--store", store_url, "--json", "Great White Sharks", "DOG", "puppy")
    answer = json.loads(out)
    expected = expected_counts(shards, NAMES)
    assert status == 0 and answer["samples"] == 1200
    assert {r["name"]: r["text"] for r in answer["concepts"]} == {"great white shark": expected["great white shark"], "dog": expected["dog"]}

    status, out, _ = cli(capsys, "top", "--dataset", "syn", "--store", store_url, "--k", "3", "--json")
    top = [(r["name"], r["text"]) for r in json.loads(out)["concepts"]]
    assert top == sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[:3]

    status, out, _ = cli(capsys, "top", "--dataset", "syn", "--store", store_url, "--k", "2", "--rarest", "--json")
    rarest = [r["text"] for r in json.loads(out)["concepts"]]
    assert rarest == sorted(expected.get(n, 0) for n in NAMES)[:2]

    # Counting the same shards again replaces, never adds.
    assert cli(capsys, "count", "--dataset", "syn", "--shards", brace_pattern(shards), "--vocab", vocab_file,
               "--store", store_url, "--no-progress")[0] == 0
    _, out, _ = cli(capsys, "query", "--dataset", "syn", "--store", store_url, "--json", "dog")
    assert json.loads(out)["concepts"][0]["text"] == expected["dog"]


def test_status_after_count_shows_every_shard_done_and_totals_equal_the_counts(capsys, store_url, vocab_file, shards):
    """`count` leaves the ledger rows the pipeline leaves: every shard counted, totals refreshed."""
    from conceptfreq.adapters.store import open_store

    assert cli(capsys, "count", "--dataset", "syn", "--shards", brace_pattern(shards), "--vocab", vocab_file,
               "--store", store_url, "--no-progress")[0] == 0
    status, out, _ = cli(capsys, "status", "--dataset", "syn", "--store", store_url, "--json")
    assert status == 0
    (entry,) = json.loads(out)["vocabularies"]
    assert entry["shards"] == len(shards)
    assert entry["states"] == {"pending": 0, "running": 0, "done": len(shards), "failed": 0}
    assert entry["totals"]["shards"] == len(shards) and entry["totals"]["samples"] == entry["samples"] == 3 * 400
    store = open_store(store_url)
    try:
        version = entry["vocabulary_version"]
        assert store.concept_totals("syn", version) == store.frequencies("syn", version) != {}
    finally:
        store.close()


def test_bad_shards_fail_with_reasons_and_the_run_goes_on(capsys, chdb_url, vocab_file, shards, tmp_path):
    bad = write_bad_shards(tmp_path / "bad")
    pattern = "{" + ",".join([shards[0], bad["truncated_tar"], bad["not_tar"], str(tmp_path / "missing.tar")]) + "}"
    status, out, err = cli(capsys, "count", "--dataset", "mixed", "--shards", pattern, "--vocab", vocab_file,
                           "--store", chdb_url, "--json", "--no-progress")
    summary = json.loads(out)
    assert status == 1
    assert summary["done"] == 1 and len(summary["failed"]) == 3
    assert all(f["reason"] for f in summary["failed"])
    # The good shard's counts are there; the truncated shard's partial samples are not.
    _, out, _ = cli(capsys, "query", "--dataset", "mixed", "--store", chdb_url, "--json", "dog")
    assert json.loads(out)["samples"] == 400


def test_skipped_samples_are_counted(capsys, chdb_url, vocab_file, tmp_path):
    bad = write_bad_shards(tmp_path / "bad")
    shards = [bad[k] for k in ("invalid_utf8", "empty_caption", "huge_caption")]
    status, out, err = cli(capsys, "count", "--dataset", "odd", "--shards", "{" + ",".join(map(str, shards)) + "}",
                           "--vocab", vocab_file, "--store", chdb_url, "--json", "--no-progress")
    summary = json.loads(out)
    assert status == 0, err
    assert summary["skipped"].get("empty_caption", 0) >= 1
    assert summary["skipped"].get("caption_too_long", 0) >= 1
    assert summary["notes"].get("invalid_utf8", 0) >= 1


@pytest.mark.parametrize("args, message", [
    (["count", "--dataset", "x", "--shards", "ftpx://host/a.tar"], "ftpx"),
    (["count", "--dataset", "x", "--shards", "a.tar", "--vocab", "/nonexistent/vocab.txt"], "not found"),
    (["count", "--dataset", "x", "--shards", "a.tar", "--store", "mysql://db"], "unknown store URL"),
    (["count", "--dataset", "x", "--shards", "a.tar", "--workers", "0"], "--workers"),
    (["query", "--dataset", "never-counted", "dog"], "no counts for dataset"),
    (["top", "--dataset", "never-counted"], "no counts for dataset"),
])
def test_user_errors_are_one_line(capsys, chdb_url, args, message):
    if "--store" not in args:
        args = [*args, "--store", chdb_url]
    status, out, err = cli(capsys, *args)
    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_empty_vocabulary_is_an_error(capsys, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n\n")
    status, _, err = cli(capsys, "match", "--vocab", empty)
    assert status == 2 and "empty" in err


def test_unknown_concepts_are_reported(capsys, chdb_url, vocab_file, shards):
    cli(capsys, "count", "--dataset", "syn", "--shards", shards[0], "--vocab", vocab_file, "--store", chdb_url, "--no-progress")
    status, out, err = cli(capsys, "query", "--dataset", "syn", "--store", chdb_url, "dgo", "cat")
    assert status == 1 and "'dgo'" in err and "did you mean 'dog'" in err


def test_match_contract(tmp_path, vocab_file):
    """One JSON array of canonical names per input line, in order; TSV: the first column."""
    tsv = tmp_path / "captions.tsv"
    tsv.write_text("Two puppies and a CAT\thttp://x/1.jpg\n\t\nGreat White Sharks\thttp://x/2.jpg\na catalog\n")
    run = subprocess.run([sys.executable, "-m", "conceptfreq.cli", "match", "--vocab", str(vocab_file), "--input", str(tsv)],
                         capture_output=True, text=True, check=True)
    assert [json.loads(line) for line in run.stdout.splitlines()] == [["dog", "cat"], [], ["great white shark"], []]
    run = subprocess.run([sys.executable, "-m", "conceptfreq.cli", "match", "--vocab", str(vocab_file), "--method", "bag"],
                         input="white great shark\ngeese\n", capture_output=True, text=True, check=True)
    assert [json.loads(line) for line in run.stdout.splitlines()] == [["great white shark"], ["goose"]]


def test_default_vocabulary_counts(capsys, chdb_url, tmp_path):
    names = [c.name for c in default()][:50]
    shards = write_shards(tmp_path / "s", n_shards=1, samples_per_shard=200, concept_names=names, seed=1)
    status, out, err = cli(capsys, "count", "--dataset", "d", "--shards", shards[0], "--store", chdb_url, "--json", "--no-progress")
    assert status == 0, err
    assert json.loads(out)["vocabulary_version"] == default().version


def test_reading_needs_no_write_rights(capsys, clickhouse_url, vocab_file, shards):
    """`query`, `top` and `status` under a readonly=1 ClickHouse user: they never run DDL; a store
    nobody migrated yet is one line and exit 3, not a traceback."""
    reader = clickhouse_url.replace("clickhouse://", "clickhouse://reader:reader@")
    status, _, err = cli(capsys, "query", "--dataset", "syn", "--store", reader, "dog")
    assert status == 3 and "run `conceptfreq migrate`" in err and "Traceback" not in err
    assert cli(capsys, "count", "--dataset", "syn", "--shards", brace_pattern(shards), "--vocab", vocab_file,
               "--store", clickhouse_url, "--no-progress")[0] == 0
    status, out, err = cli(capsys, "query", "--dataset", "syn", "--store", reader, "--json", "dog")
    assert status == 0, err
    assert json.loads(out)["concepts"][0]["text"] == expected_counts(shards, NAMES)["dog"]
    for command in (["top", "--dataset", "syn", "--k", "2"], ["status", "--dataset", "syn"]):
        status, _, err = cli(capsys, *command, "--store", reader)
        assert status == 0, err
