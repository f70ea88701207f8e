"""Captions of a world's images: varied templates, articles, plurals ("two goldfish", "three
pelicans") and aliases, so the matcher is exercised for real, not on verbatim names.

A template is used only if its filler words spell no concept of the world (checked with the
project's matcher), so the concepts a caption names are exactly the ones it was built from.
"""

from __future__ import annotations

import numpy as np

from conceptfreq.core.matching import PhraseMatcher
from conceptfreq.core.vocabulary import Vocabulary
from conceptfreq.world.concepts import plural

# {} is one concept phrase ("a kite", "two kites"); the arity is the number of {}.
TEMPLATES: dict[int, tuple[str, ...]] = {
    0: ("IMG_{n}", "untitled", "view from the window this morning", "stock photo in high resolution",
        "abstract background with soft light", "click to enlarge", "DSC{n}.JPG"),
    1: ("a photo of {}", "a photo of {} on a plain background", "close-up of {}", "{} in the wild",
        "a drawing of {}", "my {} yesterday afternoon", "a blurry photo of {}", "an illustration of {} for kids",
        "look at {}!", "{} -- stock image", "there is {} in this picture", "{}, seen from above"),
    2: ("{} and {}", "{} next to {}", "a photo of {} with {}", "vintage poster showing {} and {}",
        "{} beside {} on the grass"),
    3: ("{}, {} and {}", "{}, {} and {} together", "collage: {} / {} / {}", "a photo of {}, {} and {}"),
}
TEMPLATE_WORDS = {2: "two", 3: "three", 4: "four"}
ALIAS_RATE = 0.4        # how often a concept with aliases is called by one of them
# Zero-shot prompts of the held-out set, written beside it (the evaluator's ensemble reads them).
EVAL_TEMPLATES = ("a photo of a {}.", "a drawing of a {}.", "close-up of a {}.", "a blurry photo of a {}.", "there is a {} in this picture.")


def _article(phrase: str) -> str:
    return "an" if phrase[:1].lower() in "aeiou" else "a"


class CaptionWriter:
    def __init__(self, vocabulary: Vocabulary):
        self.vocabulary = vocabulary
        self.concepts = {c.id: c for c in vocabulary}
        matcher = PhraseMatcher(vocabulary)
        self.templates = {}
        for arity, templates in TEMPLATES.items():
            fillers = [t.replace("{}", " ").replace("{n}", " ") for t in templates]
            clean = [t for t, hits in zip(templates, matcher.match(fillers).per_caption()) if not hits]
            self.templates[arity] = tuple(clean) or ("; ".join(["{}"] * arity) if arity else "untitled",)
        self.eval_templates = tuple(t for t, hits in zip(EVAL_TEMPLATES, matcher.match(
            [t.replace("{}", " ") for t in EVAL_TEMPLATES]).per_caption()) if not hits) or ("a photo of a {}.",)

    def phrase(self, concept_id: int, copies: int, rng: np.random.Generator) -> str:
        concept = self.concepts[concept_id]
        name = concept.name
        if concept.aliases and rng.random() < ALIAS_RATE:
            name = concept.aliases[int(rng.integers(len(concept.aliases)))]
        if copies == 1:
            return f"{_article(name)} {name}"
        return f"{TEMPLATE_WORDS.get(copies, 'some')} {plural(name)}"

    def caption(self, named: list[tuple[int, int]], rng: np.random.Generator) -> str:
        """A caption naming each (concept id, copies) of `named`, in order (0 to 3 of them)."""
        templates = self.templates[len(named)]
        template = templates[int(rng.integers(len(templates)))]
        if "{n}" in template:
            return template.replace("{n}", f"{int(rng.integers(10000)):04d}")
        phrases = [self.phrase(concept, copies, rng) for concept, copies in named]
        text = template.format(*phrases)
        return text[:1].upper() + text[1:] if rng.random() < 0.5 else text
