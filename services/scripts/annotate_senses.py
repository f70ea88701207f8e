"""Write each concept's WordNet 3.0 sense into a packaged vocabulary (the `senses` field).

Usage, from the repository root (needs Debian's wordnet-base, and timm and open_clip installed):

    .venv/bin/python services/scripts/annotate_senses.py [--vocab default|paper] [--check]

The phrase+pos matcher tells a concept's sense from the word's other senses (core.senses), so the
vocabulary has to say which sense each concept means. Nothing is typed per concept:
- ImageNet classes are WordNet synsets: timm ships the 1,000 synset ids (`n01608432`, WordNet 3.0
  noun offsets) in class order, and open_clip the curated names in the same order;
- a class of another dataset means the first noun sense of its name (WordNet's frequency order)
  that falls under the dataset's domain (DOMAINS: a country list means places, a pet list
  animals); a dataset without one domain (CIFAR, Caltech), or a name with no sense under it, gets no sense. Such a
  guess is made only for single-word names with more than one noun sense (the others cannot be
  confused), and not for a concept that ImageNet already names exactly (UCF101's `swing` is
  children on ImageNet's playground swing, not the first `act` sense, a blow).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import replace
from importlib import metadata, resources
from pathlib import Path

from conceptfreq.core import vocabulary as vocabularies
from conceptfreq.core import senses as sense_rules
from conceptfreq.core.lexicon import WordNet
from conceptfreq.core.text import phrase_key
from conceptfreq.core.vocabulary import dumps

DATA = Path(__file__).resolve().parents[1] / "conceptfreq" / "data"

# Each dataset's domain as WordNet (lemma, sense number) roots, in order of preference: a class
# means its first sense under the first root that has one.
DOMAINS = {
    # Tried group by group; inside a group the name's earliest sense under any of its roots wins.
    # A country list means countries first: Jersey the island, not New Jersey, a US state.
    "country211": [[("country", 2)], [("island", 1)], [("location", 1)]],
    "eurosat": [[("geographical_area", 1), ("location", 1)]],
    # Scenes are built or natural places. Not `location` as a whole: a `mansion` there is an astrological house.
    "sun397": [[("structure", 1), ("geological_formation", 1), ("geographical_area", 1), ("geographic_point", 1),
                ("artifact", 1)]],
    "oxfordpets": [[("domestic_animal", 1), ("animal", 1)]],
    "cub": [[("bird", 1)]], "birdsnap": [[("bird", 1)]],
    "flowers102": [[("flower", 1), ("plant", 2)]],
    "food101": [[("food", 1), ("food", 2)]],
    "stanfordcars": [[("car", 1)]], "fgvcaircraft": [[("aircraft", 1)]],
    "ucf101": [[("act", 2)]],
    # Mixed object lists (CIFAR, Caltech, COCO) have no single domain: `seal` there could be the animal
    # or a sealing device, `man` a person or the genus. Their names get no guessed sense.
}


def imagenet_senses() -> tuple[dict[str, str], dict]:
    """{phrase key of CLIP's ImageNet name: `wn30:n...`} and where the synset ids came from."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    path = resources.files("timm").joinpath("data/_info/imagenet_synsets.txt")
    text = path.read_text(encoding="utf-8")
    synsets = text.split()
    if len(synsets) != len(IMAGENET_CLASSNAMES):
        raise SystemExit(f"timm lists {len(synsets)} ImageNet synsets, open_clip {len(IMAGENET_CLASSNAMES)} names")
    mapping = {phrase_key(name): f"wn30:n{int(wnid[1:]):08d}" for name, wnid in zip(IMAGENET_CLASSNAMES, synsets)}
    return mapping, {"package": "timm", "version": metadata.version("timm"), "path": "timm/data/_info/imagenet_synsets.txt",
                     "sha256": hashlib.sha256(text.encode()).hexdigest()}


def domain_sense(wordnet: WordNet, word: str, sources: tuple[str, ...]) -> str | None:
    offsets = wordnet.noun_offsets(word)
    # WordNet's first sense, when the domain has it: a later one under a broad root is more often a
    # stretch (a park as a ballpark, a harbor as a refuge) than what the dataset means.
    first = offsets[:1]
    for source in sources:
        for group in DOMAINS.get(source, ()):
            roots = {wordnet.noun_offsets(lemma)[number - 1] for lemma, number in group}
            if first and (first[0] in roots or roots & wordnet.hypernym_closure(first[0])):
                return f"wn30:n{first[0]:08d}"
    for source in sources:
        for group in DOMAINS.get(source, ()):
            roots = {wordnet.noun_offsets(lemma)[number - 1] for lemma, number in group}
            for offset in offsets:
                if offset in roots or roots & wordnet.hypernym_closure(offset):
                    return f"wn30:n{offset:08d}"
    return None


def annotate(vocabulary, wordnet: WordNet):
    imagenet, imagenet_source = imagenet_senses()
    concepts = []
    for concept in vocabulary:
        senses: list[str] = []
        key = phrase_key(concept.name)
        if key in imagenet and "imagenet" in concept.sources:
            senses.append(imagenet[key])
        words = [phrase_key(n) for n in concept.names if phrase_key(n).isalpha()]
        for word in words if not senses else ():
            if len(wordnet.noun_offsets(word)) < 2:
                continue
            other = domain_sense(wordnet, word, tuple(s for s in concept.sources if s != "imagenet"))
            if other and other not in senses:
                senses.append(other)
        concepts.append(replace(concept, senses=tuple(senses)))
    provenance = dict(vocabulary.provenance)
    provenance["senses"] = {
        "built_by": "services/scripts/annotate_senses.py",
        "imagenet_synsets": imagenet_source,
        "lexicon": sense_rules.resources(wordnet),
        "domains": {k: [[f"{lemma}.n.{n:02d}" for lemma, n in group] for group in v] for k, v in DOMAINS.items()},
    }
    return vocabularies.Vocabulary(tuple(concepts), name=vocabulary.name, provenance=provenance)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", choices=("default", "paper"), default="default")
    parser.add_argument("--check", action="store_true", help="exit 1 if the packaged file is not what this script writes")
    args = parser.parse_args(argv)
    path = DATA / f"{args.vocab}_vocabulary.json"
    vocabulary = vocabularies.parse_json(path.read_text(encoding="utf-8"), name=args.vocab)
    annotated = annotate(vocabulary, WordNet())
    text = dumps(annotated)
    if args.check:
        same = text == path.read_text(encoding="utf-8")
        print(f"{path.name}: {'up to date' if same else 'differs from what annotate_senses.py writes'}")
        return 0 if same else 1
    path.write_text(text, encoding="utf-8")
    n = sum(bool(c.senses) for c in annotated)
    print(f"{path.name}: {n} of {len(annotated)} concepts have a sense; version {annotated.version}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
