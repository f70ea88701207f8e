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
