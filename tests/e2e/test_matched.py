"""Image and matched counts through the whole pipeline: ingest -> Kafka (tansu) -> parser and tagger
(Triton serving the tiny model) -> ClickHouse -> counter; then `retag` without the model.

The reference is tagger_support.brute_force, computed independently of the services: each sample's
caption hits (the local matcher) intersected with its image hits (the tagger's stage in process,
torch://), counted per concept."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import pytest

from conceptfreq.cli import main as cli
from conceptfreq.synthetic import brace_pattern, write_shards
from tests import tagger_support

RULE, RETAGGED = "softmax:p=0.3", "softmax:p=0.12"


def store_cli(*argv: str) -> tuple[int, str]:
    """The CLI for commands that take no bus flags."""
    out = io.StringIO()
    with redirect_stdout(out):
        code = cli(list(argv))
    return code, out.getvalue()


@pytest.mark.slow
def test_matched_counts_equal_a_brute_force_intersection_and_retag_recounts_them(kafka_run, triton, tiny_model, tmp_path):
    run = kafka_run
    run.groups["tagger"] = run.groups["parser"].replace("parser", "tagger")
    shards = write_shards(tmp_path / "shards", n_shards=3, samples_per_shard=60, concept_names=tagger_support.NAMES,
                          with_images=True, seed=11)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(tagger_support.NAMES) + "\n")
    expected = tagger_support.brute_force(shards, tiny_model, tmp_path, [RULE, RETAGGED])

    run.service("parser", "--vocab", str(vocab))
    run.service("tagger", "--vocab", str(vocab), "--inference", triton.url, "--model", tiny_model[0], "--pretrained", tiny_model[1],
                "--rule", RULE, "--prompts", "simple", "--top-k", "8", "--decode-workers", "1", "--cache-dir", str(tmp_path / "cache"))
    run.service("counter", "--batch-seconds", "0.2")
    code, out = run.cli("ingest", "--dataset", "piped", "--shards", brace_pattern(shards), "--vocab", str(vocab),
                        "--stages", "text,image", "--wait", "--timeout", "150")
    assert code == 0, out + run.logs()
    assert "done 3/3" in out and "0 failed" in out, out + run.logs()

    image, matched, active = tagger_support.counts(run.store_url, "piped", RULE)
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
    image, matched, active = tagger_support.counts(run.store_url, "piped", RETAGGED)
    assert active == RETAGGED
    assert image == dict(expected[RETAGGED][0]) and matched == dict(expected[RETAGGED][1])
    assert sum(matched.values()) > sum(expected[RULE][1].values())
    assert tagger_support.counts(run.store_url, "piped", RULE)[:2] == (dict(expected[RULE][0]), dict(expected[RULE][1]))
    code, out = store_cli("query", "--dataset", "piped", tagger_support.NAMES[0], tagger_support.NAMES[1], "--store", run.store_url)
    assert code == 0 and f"image and matched under {RETAGGED}" in out
