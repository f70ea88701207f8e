"""Surface forms of a concept: the word sequences a caption may use for it.

The fast matcher never lemmatizes captions. It expands each concept into its inflected noun forms
once, up front, and searches captions for those forms verbatim. Only noun inflections are
generated, so verb and gerund forms never match: "a man fishing" is not `fish`, "a boxing match"
is not `box`. Possessives need no forms of their own: normalization turns "dog's" into "dog s"
and "dogs'" into "dogs", which contain the word forms already.
"""

from __future__ import annotations

from functools import lru_cache

from conceptfreq.core.text import phrase_key


@lru_cache(maxsize=1)
def _engines():
    # inflect takes over a second to import; commands that never build a matcher should not pay it.
    import inflect

    modern = inflect.engine()
    classical = inflect.engine()
    classical.classical(all=True)  # adds cacti, hippopotami, ... beside cactuses, hippopotamuses
    return modern, classical


def plural_forms(word: str) -> set[str]:
    """Plurals of the head noun, regular and irregular (geese, mice, children, oxen, knives, leaves)."""
    forms = set()
    for engine in _engines():
        plural = engine.plural_noun(word)
        if not plural or plural == word:
            continue
        # inflect appends "s" to words that already end in s ("bells" -> "bellss"); that is no English word.
        if word.endswith("s") and plural == word + "s":
            continue
        forms.add(plural)
    return forms


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
