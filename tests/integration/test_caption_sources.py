"""Every shard layout and caption source gives the counts the matcher gives on the captions
themselves: parquet, webdataset tar with text members, img2dataset tar (JPEG members skipped) and
that tar's parquet sidecar, through `count` and through the pipeline, on both stores; the ledger
records which source a count read."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from conceptfreq.adapters.store import open_store
from conceptfreq.cli import main
from conceptfreq.core.matching import PhraseMatcher
from conceptfreq.core.vocabulary import parse_text
from conceptfreq.synthetic import brace_pattern
from tests.bench.ingest_data import FAILED_EVERY, write_layout

VOCAB = "dog|puppy\ncat\ngreat white shark\nbeach\ncar\nsports car\nt-shirt\norange\n"
CAPTIONS = [
    ("a dog and two cats on the beach", "http://a/1.jpg"),
    ("great white sharks near the shore", "http://a/2.jpg"),
    ("sports car, red", "http://a/3.jpg"),
    ("   ", "http://a/4.jpg"),  # empty once stripped: skipped
    ("puppy in a t-shirt — «quoted» \\ back\\slash", "http://a/5.jpg"),
    ("an orange car", "http://a/6.jpg"),
    ("nothing to see here", "http://a/7.jpg"),
]
SHARDS, SAMPLES = 2, 150


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    directory = tmp_path_factory.mktemp("layouts")
    return {layout: write_layout(layout, directory, SHARDS, SAMPLES, rows=CAPTIONS) for layout in ("parquet", "wds-text", "img2dataset")}


@pytest.fixture
def vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text(VOCAB)
    return path


def expected(downloaded_only: bool) -> Counter:
    """The matcher on the captions the layouts were written from (img2dataset's failed downloads have no sample)."""
    vocabulary = parse_text(VOCAB)
    captions = [CAPTIONS[(shard * SAMPLES + i) % len(CAPTIONS)][0].strip() for shard in range(SHARDS) for i in range(SAMPLES)
                if not (downloaded_only and i % FAILED_EVERY == FAILED_EVERY - 1)]
    hits = PhraseMatcher(vocabulary).match([c for c in captions if c])
    return Counter({vocabulary.concepts[c].name: n for c, n in hits.counts().items()})


def run(capsys, *args) -> dict:
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert status == 0, err
    return json.loads(out)


def frequencies(store_url: str, dataset: str) -> Counter:
    store = open_store(store_url, read_only=True)
    try:
        version = store.vocabulary_versions(dataset)[0]
        vocabulary = store.load_vocabulary(version)
        return Counter({vocabulary.concepts[c].name: kinds["text"] for c, kinds in store.frequencies(dataset, version).items()
                        if kinds["text"]})
    finally:
        store.close()


@pytest.mark.parametrize("layout, source, dataset", [
    ("parquet", "shard", "pq"), ("wds-text", "shard", "wds"), ("img2dataset", "shard", "i2d"), ("img2dataset", "sidecar", "i2d-sidecar"),
])
def test_count_gives_the_matchers_counts_for_every_layout_and_source(capsys, store_url, vocab_file, layouts, layout, source, dataset):
    summary = run(capsys, "count", "--dataset", dataset, "--shards", brace_pattern(layouts[layout]), "--vocab", vocab_file,
                  "--store", store_url, "--captions-from", source, "--json", "--no-progress")
    downloaded_only = layout == "img2dataset"
    samples = SHARDS * SAMPLES - (SHARDS * (SAMPLES // FAILED_EVERY) if downloaded_only else 0)
    assert (summary["done"], summary["samples"], summary["failed"]) == (SHARDS, samples, [])
    assert summary["skipped"] == {"empty_caption": sum(1 for s in range(SHARDS) for i in range(SAMPLES)
                                                       if (s * SAMPLES + i) % len(CAPTIONS) == 3
                                                       and not (downloaded_only and i % FAILED_EVERY == FAILED_EVERY - 1))}
    assert frequencies(store_url, dataset) == expected(downloaded_only)
    status = run(capsys, "status", "--dataset", dataset, "--store", store_url, "--json")
    assert status["vocabularies"][0]["captions_from"] == {source: SHARDS}


def test_a_sidecar_gives_each_sample_the_hits_its_tar_gives(capsys, chdb_url, vocab_file, layouts):
    tars = layouts["img2dataset"]
    for dataset, source in (("tar", "shard"), ("sidecar", "sidecar")):
        run(capsys, "count", "--dataset", dataset, "--shards", brace_pattern(tars), "--vocab", vocab_file, "--store", chdb_url,
            "--captions-from", source, "--json", "--no-progress")
    store = open_store(chdb_url, read_only=True)
    try:
        version = store.vocabulary_versions("tar")[0]
        for shard in tars:
            from_tar = store.text_hits("tar", version, shard)
            assert from_tar and store.text_hits("sidecar", version, shard) == from_tar
    finally:
        store.close()


def test_a_missing_sidecar_fails_that_shard_with_its_reason(capsys, chdb_url, vocab_file, layouts):
    status = main(["count", "--dataset", "x", "--shards", brace_pattern(layouts["wds-text"]), "--vocab", str(vocab_file),
                   "--store", chdb_url, "--captions-from", "sidecar", "--json", "--no-progress"])
    out, _ = capsys.readouterr()
    summary = json.loads(out)
    assert status == 1 and summary["done"] == 0 and len(summary["failed"]) == SHARDS
    assert all("parquet" in failure["reason"] for failure in summary["failed"])


def test_the_pipeline_reads_the_sidecar_the_event_names(capsys, chdb_url, vocab_file, layouts):
    """ingest on the in-process bus: the ShardEvent carries the caption source to the parser."""
    report = run(capsys, "ingest", "--dataset", "i2d", "--shards", brace_pattern(layouts["img2dataset"]), "--vocab", vocab_file,
                 "--store", chdb_url, "--captions-from", "sidecar", "--json")
    assert report["done"] == SHARDS and report["failed"] == []
    assert frequencies(chdb_url, "i2d") == expected(downloaded_only=True)
    status = run(capsys, "status", "--dataset", "i2d", "--store", chdb_url, "--json")
    assert status["vocabularies"][0]["captions_from"] == {"sidecar": SHARDS}
