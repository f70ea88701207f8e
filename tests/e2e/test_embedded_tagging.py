"""Embedded ingest (inproc:// + chdb://) with the image stage: the tagger runs inside the ingest process
beside the parser and the counter (the services' own loops and handlers), and the run ends with the
text counts of the local `count`, and the image and matched counts of the brute force that also
checks the Kafka + Triton path (test_matched.py)."""

from __future__ import annotations

import json
import uuid

from conceptfreq.adapters.store import open_store
from conceptfreq.synthetic import brace_pattern, write_shards
from tests import tagger_support
from tests.e2e.test_matched import store_cli
from tests.e2e.test_pipeline import Run, reference

RULE = "softmax:p=0.3"


def test_embedded_ingest_tags_images_in_process_and_counts_text_image_and_matched(chdb_url, tiny_model, tmp_path):
    shards = write_shards(tmp_path / "shards", n_shards=3, samples_per_shard=60, concept_names=tagger_support.NAMES,
                          with_images=True, seed=11)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(tagger_support.NAMES) + "\n")
    image_expected, matched_expected, pairs, misaligned = tagger_support.brute_force(shards, tiny_model, tmp_path, [RULE])[RULE]
    text_expected = {c: k["text"] for c, k in reference(chdb_url, shards, str(vocab))["frequencies"].items()}

    run = Run(f"inproc://tagging-{uuid.uuid4().hex}", chdb_url, tmp_path)
    code, out = run.cli("ingest", "--dataset", "piped", "--shards", brace_pattern(shards), "--vocab", str(vocab), "--stages", "text,image",
                        "--inference", "torch://cpu", "--model", tiny_model[0], "--pretrained", tiny_model[1], "--rule", RULE,
                        "--prompts", "simple", "--top-k", "8", "--decode-workers", "1", "--cache-dir", str(tmp_path / "cache"),
                        "--timeout", "60")
    assert code == 0 and "done 3/3, 180 samples, 0 failed" in out, out

    image, matched, active = tagger_support.counts(chdb_url, "piped", RULE)
    assert active == RULE
    assert image == dict(image_expected) and sum(image.values()) > 0
    assert matched == dict(matched_expected) and sum(matched.values()) > 0
    store = open_store(chdb_url)
    try:
        version = tagger_support.vocabulary().version
        found = store.frequencies("piped", version)
        assert {c: k["text"] for c, k in found.items() if k.get("text")} == text_expected
        assert store.concept_totals("piped", version) == found  # the counter folded every kind into the totals
    finally:
        store.close()

    code, out = run.cli("status", "--dataset", "piped", "--json")
    [entry] = json.loads(out)["vocabularies"]
    [row] = [m for m in entry["misalignment"] if m["rule"] == RULE]
    assert pairs == 180 and (row["pairs"], row["misaligned"]) == (pairs, misaligned)

    code, out = store_cli("query", "--dataset", "piped", *tagger_support.NAMES[:3], "--store", chdb_url)
    assert code == 0 and f"image and matched under {RULE}" in out, out
    assert out.splitlines()[1].split()[:4] == ["concept", "text", "image", "matched"], out
