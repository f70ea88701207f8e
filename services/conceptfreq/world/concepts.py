"""Which concepts a world has: names from a real vocabulary (by default a sample of the packaged
downstream-class vocabulary), chosen so that the ground truth of text matching stays exact.

A concept nested in another (`cat` and `tabby cat`), or sharing a surface form with it, would make
the matcher rightly credit both from one mention; the world's ground truth would then disagree
with a correct matcher. Such pairs are never chosen together, and the project's own matcher checks it.
"""

from __future__ import annotations

import re

import numpy as np

from conceptfreq.core.inflection import plural_forms, surface_forms
from conceptfreq.core.matching import PhraseMatcher
from conceptfreq.core.vocabulary import Concept, Vocabulary, default

# Object-like classes; scene, texture, action, country and car-model lists read oddly as "two {}s".
OBJECT_SOURCES = {"imagenet", "cifar10", "cifar100", "caltech101", "food101", "flowers102", "oxfordpets", "voc2007", "stl10"}
_PLAIN = re.compile(r"^[A-Za-z][A-Za-z' -]*$")
SOURCE = "world"


def _spellings(name: str) -> list[str]:
    """A class name's own alternatives: `ram (adult male sheep)` gives `ram` and `adult male sheep`,
    `red wolf or maned wolf` gives both wolves (only where both sides are alike, so `vaulted or
    arched ceiling` does not give `vaulted`)."""
    inner = re.fullmatch(r"(.+?)\s*\((.+)\)", name)
    if inner:
        return [inner.group(1), inner.group(2)]
    sides = name.split(" or ")
    if len(sides) == 2 and len(sides[0].split()) == len(sides[1].split()):
        return sides
    return [name]


def _plain_names(concept: Concept) -> list[str]:
    """The names a caption can say: plain words, at most three of them; the shortest first."""
    names = [s.strip() for n in concept.names for s in _spellings(n)]
    plain = [n for n in dict.fromkeys(names) if _PLAIN.match(n) and len(n.split()) <= 3]
    return sorted(plain, key=lambda n: (len(n.split()), len(n)))


def candidates(vocabulary: Vocabulary) -> list[Concept]:
    return [c for c in vocabulary if set(c.sources) & OBJECT_SOURCES and _plain_names(c)]


def _clashes(forms_a: set[str], forms_b: set[str]) -> bool:
    """True when the two share a word. Nested names (`cat`, `tabby cat`) would make one mention count
    for both; names that merely share a word (`Irish Terrier`, `Border Terrier`) get similar text
    embeddings, so a rare one borrows from a frequent one and accuracy stops depending on its own
    frequency, which is the thing the world is built to measure."""
    words_a = {w for form in forms_a for w in form.split()}
    return any(w in words_a for form in forms_b for w in form.split())


def choose(n: int, seed: int, vocabulary: Vocabulary | None = None) -> Vocabulary:
    """n concepts sampled from `vocabulary` (default: the packaged one), renumbered 0..n-1, with the
    plain names (and aliases) only; none nested in another."""
    pool = candidates(vocabulary or default())
    rng = np.random.default_rng([seed, 17])
    # Concepts with aliases are few in class lists; up to a quarter of the world is drawn from them
    # first, so that aliases are exercised, and the final order (which sets the Zipf rank) is shuffled.
    aliased = [c for c in pool if len(_plain_names(c)) > 1]
    order = [aliased[int(i)] for i in rng.permutation(len(aliased))][: n // 4]
    order += [pool[int(i)] for i in rng.permutation(len(pool))]
    chosen: list[tuple[list[str], set[str]]] = []
    for concept in order:
        names = _plain_names(concept)
        forms = set().union(*(surface_forms(name) for name in names))
        if any(_clashes(forms, other) for _, other in chosen):
            continue
        chosen.append((names, forms))
        if len(chosen) == n:
            break
    if len(chosen) < n:
        raise ValueError(f"the vocabulary has only {len(chosen)} usable, non-overlapping object concepts; ask for fewer")
    ranked = [chosen[int(i)][0] for i in rng.permutation(n)]
    world = Vocabulary(tuple(Concept(i, names[0], tuple(names[1:]), (SOURCE,)) for i, names in enumerate(ranked)), name="world")
    _check_exact(world)
    return world


def _check_exact(vocabulary: Vocabulary) -> None:
    """Every name and plural of each concept matches that concept alone, by the project's matcher."""
    matcher = PhraseMatcher(vocabulary)
    texts, owners = [], []
    for concept in vocabulary:
        for name in concept.names:
            texts += [f"a photo of {name}", f"two {plural(name)}"]
            owners += [concept.id, concept.id]
    for text, owner, hits in zip(texts, owners, matcher.match(texts).per_caption()):
        if sorted(hits) != [owner]:
            raise ValueError(f"world vocabulary is not exact: {text!r} matches concepts {hits}, not only {owner}")


def plural(name: str) -> str:
    """The name with its head noun pluralized (inflect's modern plural), as a caption would say it."""
    words = name.split()
    forms = sorted(plural_forms(words[-1].lower()), key=len) if words[-1].isalpha() else []
    if not forms:
        return name
    head = forms[0]
    if words[-1][:1].isupper():
        head = head[:1].upper() + head[1:]
    return " ".join([*words[:-1], head])


def write_vocabulary(vocabulary: Vocabulary, path) -> None:
    """`name|alias|alias` lines, the format `--vocab` reads; ids follow the line order."""
    with open(path, "w", encoding="utf-8") as out:
        out.write(f"# a conceptfreq world: {len(vocabulary)} concepts\n")
        for concept in vocabulary:
            out.write("|".join(concept.names) + "\n")
