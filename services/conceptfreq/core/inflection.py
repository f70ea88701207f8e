"""Surface forms of a concept: the word sequences a caption may use for it.

The fast matcher never lemmatizes captions. It expands each concept into its inflected noun forms
once, up front, and searches captions for those forms verbatim. Only noun inflections are
generated, so verb and gerund forms never match: "a man fishing" is not `fish`, "a boxing match"
is not `box`. Possessives need no forms of their own: normalization turns "dog's" into "dog s"
and "dogs'" into "dogs", which contain the word forms already.
"""

from __future__ import annotations

import sys
from functools import lru_cache

from conceptfreq.core.text import phrase_key


@lru_cache(maxsize=1)
def _engines():
    # inflect takes seconds to import; commands that never build a matcher should not pay it.
    inflect = _import_inflect()
    modern = inflect.engine()
    classical = inflect.engine()
    classical.classical(all=True)  # adds cacti, hippopotami, ... beside cactuses, hippopotamuses
    return modern, classical


def _import_inflect():
    """inflect, imported without typeguard's instrumentation of its engine.

    inflect decorates about sixty engine methods with typeguard's `@typechecked`, which parses
    inflect's whole source again for each of them: measured here, 5.5 s of the 5.8 s it takes
    `conceptfreq match` to start, against 0.2 s without it. The checks only guard inflect's own
    argument types; we pass it words (str). The decorator is swapped for the identity only while
    inflect's module body runs, and only when inflect has not been imported already.
    """
    if "inflect" in sys.modules:
        return sys.modules["inflect"]
    import typeguard

    typechecked = typeguard.typechecked
    typeguard.typechecked = _unchecked
    try:
        import inflect
    finally:
        typeguard.typechecked = typechecked
    return inflect


def _unchecked(target=None, **_options):
    return target if target is not None else _unchecked


@lru_cache(maxsize=None)
def plural_forms(word: str) -> frozenset[str]:
    """Plurals of the head noun, regular and irregular (geese, mice, children, oxen, knives, leaves).
    Once per word: many concepts share a head noun (`dog`, `car`, `tree`)."""
    forms = set()
    for engine in _engines():
        plural = engine.plural_noun(word)
        if not plural or plural == word:
            continue
        # inflect appends "s" to words that already end in s ("bells" -> "bellss"); that is no English word.
        if word.endswith("s") and plural == word + "s":
            continue
        forms.add(plural)
    return frozenset(forms)


def surface_forms(phrase: str) -> set[str]:
    """Normalized word sequences that count as `phrase`: itself, its head noun pluralized, and,
    for hyphenated compounds, the closed spelling (`t-shirt` -> `tshirt`)."""
    key = phrase_key(phrase)
    if not key:
        return set()
    words = key.split()
    forms = {key}
    head = words[-1]
    if head.isalpha():  # "speed limit 30" has no plural head
        forms |= {" ".join([*words[:-1], plural]) for plural in plural_forms(head)}
    if "-" in phrase and len(words) > 1:
        closed = "".join(words)
        forms |= {closed, *plural_forms(closed)}
    return forms


def singular_keys(phrase: str) -> set[str]:
    """Keys a plural phrase may be the plural of: `Great White Sharks` -> {`great white shark`}."""
    words = phrase_key(phrase).split()
    if not words:
        return set()
    singulars = {engine.singular_noun(words[-1]) for engine in _engines()}
    return {" ".join([*words[:-1], s]) for s in singulars if s}
