"""Image and matched counts through the whole pipeline: ingest -> Kafka (tansu) -> parser and tagger
(Triton serving the tiny model) -> ClickHouse -> counter; then `retag` without the model.

The reference is a brute force computed here, independently of the services: each sample's
caption hits (the local matcher) intersected with its image hits (the tagger's stage in process,
torch://), counted per concept."""

from __future__ import annotations

import io
import json
from collections import Counter
from contextlib import redirect_stdout

import pytest

from conceptfreq.adapters.inference import open_inference
from conceptfreq.adapters.store import open_store
from conceptfreq.cli import main as cli
from conceptfreq.core.tagging import parse_rule
from conceptfreq.parser.stage import ParseShard
from conceptfreq.synthetic import brace_pattern, write_shards
from tests import tagger_support
from tests.e2e.test_pipeline import kafka_run  # noqa: F401 - the fixture
from tests.integration.conftest import tiny_checkpoint_path, tiny_model, triton, triton_repository  # noqa: F401 - fixtures

RULE, RETAGGED = "softmax:p=0.3", "softmax:p=0.12"


def brute_force(shards, tiny_model, tmp_path, rules):
    """{rule: (image counts, matched counts, pairs, misaligned)} over all shards."""
    vocabulary = tagger_support.vocabulary()
    parse = ParseShard(vocabulary)
    backend = open_inference("torch://cpu", *tiny_model)
    store = open_store(f"chdb://{tmp_path / 'brute'}")
    tagger = tagger_support.make_tagger(backend, store, vocabulary, rules[0], cache_dir=tmp_path)
    index = tagger.indexes.get(vocabulary)
    out = {rule: (Counter(), Counter(), 0, 0) for rule in rules}
    try:
        for shard in shards:
            text = dict(parse.run("x", shard).hits)
            tagged = tagger.stage().run("x", shard, index, [parse_rule(r) for r in rules])
            for rule in rules:
                image, matched, pairs, misaligned = out[rule]
                hits = dict(tagged.rules[rule].hits)
                for key in tagged.keys:
                    both = set(text.get(key, ())) & set(hits.get(key, ()))
                    matched.update(both)
                    image.update(hits.get(key, ()))
                    pairs += 1
                    misaligned += not both
                out[rule] = (image, matched, pairs, misaligned)
    finally:
        tagger.close()
        store.close()
        backend.close()
    return out


def store_cli(*argv: str) -> tuple[int, str]:
    """The CLI for commands that take no bus flags."""
    out = io.StringIO()
    with redirect_stdout(out):
        code = cli(list(argv))
    return code, out.getvalue()


def counts(store_url, dataset, rule):
    store = open_store(store_url)
    try:
        version = tagger_support.vocabulary().version
        found = store.frequencies(dataset, version, rules={"image": rule, "matched": rule})
        return ({c: k["image"] for c, k in found.items() if k["image"]}, {c: k["matched"] for c, k in found.items() if k["matched"]},
                store.active_rule(dataset, version))
    finally:
        store.close()


@pytest.mark.slow
def test_matched_counts_equal_a_brute_force_intersection_and_retag_recounts_them(kafka_run, triton, tiny_model, tmp_path):  # noqa: F811
    run = kafka_run
    run.groups["tagger"] = run.groups["parser"].replace("parser", "tagger")
    shards = write_shards(tmp_path / "shards", n_shards=3, samples_per_shard=60, concept_names=tagger_support.NAMES,
                          with_images=True, seed=11)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(tagger_support.NAMES) + "\n")
    expected = brute_force(shards, tiny_model, tmp_path, [RULE, RETAGGED])

    run.service("parser", "--vocab", str(vocab))
    run.service("tagger", "--vocab", str(vocab), "--inference", triton.url, "--model", tiny_model[0], "--pretrained", tiny_model[1],
                "--rule", RULE, "--prompts", "simple", "--top-k", "8", "--decode-workers", "1", "--cache-dir", str(tmp_path / "cache"))
    run.service("counter", "--batch-seconds", "0.2")
    code, out = run.cli("ingest", "--dataset", "piped", "--shards", brace_pattern(shards), "--vocab", str(vocab),
                        "--stages", "text,image", "--wait", "--timeout", "150")
    assert code == 0, out + run.logs()
    assert "done 3/3" in out and "0 failed" in out, out + run.logs()

    image, matched, active = counts(run.store_url, "piped", RULE)
    assert active == RULE
    assert image == dict(expected[RULE][0]) and sum(image.values()) > 0
    assert matched == dict(expected[RULE][1]) and sum(matched.values()) > 0

    code, out = run.cli("status", "--dataset", "piped", "--json")
    [entry] = json.loads(out)["vocabularies"]
    [row] = [m for m in entry["misalignment"] if m["rule"] == RULE]
    assert (row["pairs"], row["misaligned"]) == (180, expected[RULE][3])

    # Re-threshold without the model (the tagger and Triton could be gone): image and matched counts
    # equal the brute force at the new threshold; the old rule stays queryable.
    assert run.stop_all() == [0, 0, 0], run.logs()
    code, out = store_cli("retag", "--dataset", "piped", "--threshold", "0.12", "--store", run.store_url)
    assert code == 0 and f"rule {RETAGGED} is now active" in out, out
    image, matched, active = counts(run.store_url, "piped", RETAGGED)
    assert active == RETAGGED
    assert image == dict(expected[RETAGGED][0]) and matched == dict(expected[RETAGGED][1])
    assert sum(matched.values()) > sum(expected[RULE][1].values())
    assert counts(run.store_url, "piped", RULE)[:2] == (dict(expected[RULE][0]), dict(expected[RULE][1]))
    code, out = store_cli("query", "--dataset", "piped", tagger_support.NAMES[0], tagger_support.NAMES[1], "--store", run.store_url)
    assert code == 0 and f"image and matched under {RETAGGED}" in out
