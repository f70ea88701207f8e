"""Shared by the tagging tests: a small vocabulary, the tiny open_clip model with fixed weights, and
a Tagger wired to them. Prompts are `simple` (one template) so concept embeddings take a second,
not the minutes of the 80-template ensemble on this CPU."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Names without shared words, so caption matching is exact and easy to brute-force.
NAMES = ["dog", "cat", "tiger", "airplane", "bicycle", "guitar", "pizza", "volcano", "lighthouse", "umbrella",
         "penguin", "castle", "tractor", "violin", "cactus", "anchor", "kite", "lobster", "tent", "windmill"]


def vocabulary():
    from conceptfreq.core.vocabulary import from_names

    return from_names([[n] for n in NAMES], name="tagging-tests")


def checkpoint(directory: Path) -> Path:
    from conceptfreq.adapters.inference.models import tiny_checkpoint

    return tiny_checkpoint(directory)


def torch_backend(directory: Path):
    from conceptfreq.adapters.inference import open_inference

    return open_inference("torch://cpu", "conceptfreq-tiny", str(checkpoint(directory)), threads=1)


def make_tagger(backend, store, vocab, rule: str = "softmax:p=0.5", *, cache_dir: Path, top_k: int = 8, workers: int = 2):
    from conceptfreq.core.prompts import make_prompts
    from conceptfreq.core.tagging import parse_rule
    from conceptfreq.parser.service import Vocabularies
    from conceptfreq.tagger.service import Tagger
    from conceptfreq.tagger.stage import ConceptIndexes, DecodeOptions, TagImages

    images = TagImages(backend, top_k=top_k, batch_size=32, decode=DecodeOptions(workers=workers))
    return Tagger(images, ConceptIndexes(backend, make_prompts("simple"), str(cache_dir)), Vocabularies(store, vocab), parse_rule(rule))


def brute_force(shards, tiny_model, tmp_path: Path, rules):
    """The reference for matched counts, independent of the services: each sample's caption hits (the
    local matcher) intersected with its image hits (the tagger's stage in process, torch://), counted
    per concept. {rule: (image counts, matched counts, pairs, misaligned)} over all shards."""
    from collections import Counter

    from conceptfreq.adapters.inference import open_inference
    from conceptfreq.core.tagging import parse_rule
    from conceptfreq.parser.stage import ParseShard

    vocab = vocabulary()
    parse = ParseShard(vocab)
    backend = open_inference("torch://cpu", *tiny_model)
    # No store: the vocabulary is given, and opening a second chDB directory would collide with the
    # one a test's pipeline opens in this process.
    tagger = make_tagger(backend, None, vocab, rules[0], cache_dir=tmp_path)
    index = tagger.indexes.get(vocab)
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
        backend.close()
    return out


def counts(store_url: str, dataset: str, rule: str):
    """(image counts, matched counts, active rule) of a dataset under `rule`, as the store answers."""
    from conceptfreq.adapters.store import open_store

    store = open_store(store_url)
    try:
        version = vocabulary().version
        found = store.frequencies(dataset, version, rules={"image": rule, "matched": rule})
        return ({c: k["image"] for c, k in found.items() if k["image"]}, {c: k["matched"] for c, k in found.items() if k["matched"]},
                store.active_rule(dataset, version))
    finally:
        store.close()
