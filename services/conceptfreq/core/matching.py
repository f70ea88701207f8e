"""Finding concepts in captions.

Three methods, selected by name (see MATCHERS):
- `phrase` (default, fast): a concept is found when one of its surface forms (name or alias,
  singular or plural) occurs in the caption as a contiguous run of whole words.
- `phrase+pos`: `phrase`, and for the surface forms that are also common verbs, adjectives,
  modals or names of other things (`watch`, `orange`, `can`, `kite`), a decision from the
  caption's context whether the hit means the concept (core.pos_matching, core.senses).
- `bag` (the paper's text search, kept for comparison): every word of the concept, lemmatized,
  occurs anywhere in the lemmatized caption.

Both count a concept at most once per caption, count nested concepts separately (`sports car`
also counts `car`), and credit aliases to their concept.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from itertools import chain
from typing import Sequence

import numpy as np
from ahocorasick_rs import BytesAhoCorasick, MatchKind

from conceptfreq.core.inflection import surface_forms
from conceptfreq.core.text import SEPARATOR, line_blocks, normalize_captions, normalize_lines, words
from conceptfreq.core.vocabulary import Vocabulary

# Captions per normalized block: large enough to amortize the per-call cost of the C/Rust passes,
# small enough that a block's normalized copies stay in cache-friendly megabytes.
BLOCK = 8192
# The same for captions given as bytes (match_lines): about BLOCK CC-3M captions.
BLOCK_BYTES = 512 << 10

# The version of what compile_matcher produces: bump it whenever the same vocabulary would compile
# to different arrays (surface forms, key layout, sense rules), so that cached matchers are rebuilt.
MATCHER_VERSION = 1


@dataclass(frozen=True)
class Hits:
    """Which concepts each caption of a batch contains: parallel arrays, sorted and unique per
    (caption, concept)."""

    caption: np.ndarray  # int64 index into the batch
    concept: np.ndarray  # int64 concept id
    n_captions: int
    # concept id -> captions where a hit could not be told apart from another sense (phrase+pos);
    # such hits are not in the arrays above.
    ambiguous: dict[int, int] = field(default_factory=dict, compare=False)

    @classmethod
    def from_pairs(cls, caption: np.ndarray, concept: np.ndarray, n_captions: int, n_ids: int) -> "Hits":
        if caption.size == 0:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), n_captions)
        pair = np.unique(caption.astype(np.int64) * n_ids + concept.astype(np.int64))
        return cls(pair // n_ids, pair % n_ids, n_captions)

    def per_caption(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in range(self.n_captions)]
        for caption, concept in zip(self.caption.tolist(), self.concept.tolist()):
            out[caption].append(concept)
        return out

    def grouped(self) -> list[tuple[int, list[int]]]:
        """(caption index, concept ids) for the captions that have hits, in caption order."""
        # One tolist() per array and a plain loop: np.split would make a small array per caption.
        groups: list[tuple[int, list[int]]] = []
        last = -1
        for caption, concept in zip(self.caption.tolist(), self.concept.tolist()):
            if caption != last:
                current: list[int] = []
                groups.append((caption, current))
                last = caption
            current.append(concept)
        return groups

    def counts(self) -> dict[int, int]:
        ids, counts = np.unique(self.concept, return_counts=True)
        return dict(zip(ids.tolist(), counts.tolist()))


class PhraseMatcher:
    """Whole-word phrase search over precomputed surface forms, with one Aho-Corasick automaton.

    Captions are normalized in blocks in which every word has one space on each side;
    the automaton's keys are ` form ` with the same padding, so a substring hit is a whole-word
    hit. Overlapping search reports nested concepts (`sports car`, `car`) together.
    """

    name = "phrase"

    def __init__(self, vocabulary: Vocabulary):
        self._load(compile_phrase(vocabulary))

    @classmethod
    def from_compiled(cls, compiled: dict[str, np.ndarray]) -> "PhraseMatcher":
        """The matcher compile_phrase's arrays describe, without computing a surface form."""
        matcher = cls.__new__(cls)
        matcher._load(compiled)
        return matcher

    def _load(self, compiled: dict[str, np.ndarray]) -> None:
        ends = compiled["key_ends"].astype(np.int64)
        blob = compiled["keys"].tobytes()
        keys = [blob[a:b] for a, b in zip([0, *ends[:-1].tolist()], ends.tolist())]
        self._key_count = compiled["key_count"].astype(np.int64)
        self._key_concepts = compiled["key_concepts"].astype(np.int64)
        if not keys or self._key_count.size != len(keys) or self._key_concepts.size != int(self._key_count.sum()):
            raise ValueError("compiled matcher arrays are inconsistent")
        self._keys = keys
        # The library's own choice of automaton: a forced DFA searched CC-3M captions 35-50% slower here.
        self._automaton = BytesAhoCorasick(keys, matchkind=MatchKind.Standard)
        self._key_start = np.concatenate([[0], np.cumsum(self._key_count)[:-1]]).astype(np.int64)
        self._single = bool((self._key_count == 1).all())
        self._n_ids = int(compiled["n_ids"][0])
        self.n_keys = len(keys)

    def match(self, captions: Sequence[str]) -> Hits:
        return self._match_blocks((normalize_captions(captions[i : i + BLOCK]), min(BLOCK, len(captions) - i))
                                  for i in range(0, len(captions), BLOCK))

    def match_lines(self, data: bytes) -> Hits:
        """match() over the lines of a UTF-8 block (`\\n` between captions, undecodable bytes read as
        U+FFFD), without making a str per caption: what `conceptfreq match` reads."""
        return self._match_blocks((normalize_lines(block), block.count(b"\n") + 1) for block in line_blocks(data, BLOCK_BYTES))

    def _match_blocks(self, blocks) -> Hits:
        """Hits of consecutive normalized blocks ((padded, captions) pairs), as one Hits."""
        parts: list[Hits] = []
        for padded, n in blocks:
            parts.append(self._match_padded(padded, n))
        if not parts:
            return Hits(np.zeros(0, np.int64), np.zeros(0, np.int64), 0)
        if len(parts) == 1:
            return parts[0]
        offsets = np.cumsum([0] + [p.n_captions for p in parts])
        caption = np.concatenate([p.caption + offsets[i] for i, p in enumerate(parts)])
        concept = np.concatenate([p.concept for p in parts])
        ambiguous: dict[int, int] = {}
        for part in parts:
            for c, n in part.ambiguous.items():
                ambiguous[c] = ambiguous.get(c, 0) + n
        return Hits(caption, concept, int(offsets[-1]), ambiguous)

    def _found(self, padded: bytes) -> np.ndarray | None:
        """(key, start, end) rows of every overlapping hit in a normalized block, or None."""
        found = self._automaton.find_matches_as_indexes(padded, overlapping=True)
        if not found:
            return None
        # fromiter over the flattened tuples: half the time of np.array(list of tuples) here.
        return np.fromiter(chain.from_iterable(found), np.int64, 3 * len(found)).reshape(-1, 3)

    def _match_padded(self, padded: bytes, n: int) -> Hits:
        matches = self._found(padded)
        if matches is None:
            return Hits(np.zeros(0, np.int64), np.zeros(0, np.int64), n)
        key, start = matches[:, 0], matches[:, 1]
        line_breaks = np.flatnonzero(np.frombuffer(padded, dtype=np.uint8) == SEPARATOR[0])
        caption = np.searchsorted(line_breaks, start)
        if self._single:
            concept = self._key_concepts[key]
        else:
            counts = self._key_count[key]
            caption = np.repeat(caption, counts)
            first = np.repeat(self._key_start[key] - np.cumsum(counts) + counts, counts)
            concept = self._key_concepts[first + np.arange(counts.sum())]
        return Hits.from_pairs(caption, concept, n, self._n_ids)


def compile_phrase(vocabulary: Vocabulary) -> dict[str, np.ndarray]:
    """What the phrase automaton is built from, as plain arrays (the costly part: every concept's
    surface forms): the keys ` form ` end to end in `keys` (ending at `key_ends`), and for each key
    its concepts, `key_count` of them, in `key_concepts`."""
    key_concepts: dict[bytes, set[int]] = {}
    for concept in vocabulary:
        for name in concept.names:
            for form in surface_forms(name):
                key_concepts.setdefault(f" {form} ".encode(), set()).add(concept.id)
    if not key_concepts:
        raise ValueError("no concept of the vocabulary has a searchable name")
    keys = sorted(key_concepts)  # the same arrays in every process (sets iterate in hash order)
    # Compressed rows: a key shared by several concepts (a common alias) credits each of them.
    concept_lists = [sorted(key_concepts[k]) for k in keys]
    return {
        "keys": np.frombuffer(b"".join(keys), np.uint8),
        "key_ends": np.cumsum([len(k) for k in keys]).astype(np.int64),
        "key_count": np.array([len(c) for c in concept_lists], np.int64),
        "key_concepts": np.array([c for cs in concept_lists for c in cs], np.int64),
        "n_ids": np.array([max(c.id for c in vocabulary) + 1], np.int64),
    }


@lru_cache(maxsize=1)
def lemma_table() -> dict[str, str]:
    """spaCy's English lookup lemmatizer table (spacy-lookups-data), read without loading spaCy."""
    path = resources.files("spacy_lookups_data").joinpath("data/en_lemma_lookup.json.gz")
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as f:
        return json.load(f)


class BagMatcher:
    """The paper's text search: all lemmas of the concept present anywhere in the caption."""

    name = "bag"

    def __init__(self, vocabulary: Vocabulary):
        self._lemmas = lemma_table()
        self._requirements: list[tuple[int, frozenset[str]]] = []
        self._by_lemma: dict[str, list[int]] = {}
        for concept in vocabulary:
            for name in concept.names:
                needed = frozenset(self._lemma(w) for w in words(name))
                if needed:
                    index = len(self._requirements)
                    self._requirements.append((concept.id, needed))
                    for lemma in needed:
                        self._by_lemma.setdefault(lemma, []).append(index)
        self._n_ids = max(c.id for c in vocabulary) + 1

    def _lemma(self, word: str) -> str:
        return self._lemmas.get(word, word)

    def match_lines(self, data: bytes) -> Hits:
        return self.match(data.decode("utf-8", "replace").split("\n"))

    def match(self, captions: Sequence[str]) -> Hits:
        caption_ids, concept_ids = [], []
        block = normalize_captions(captions).decode()
        for index, line in enumerate(block.split(SEPARATOR.decode())):
            lemmas = {self._lemma(w) for w in line.split()}
            candidates = {r for lemma in lemmas for r in self._by_lemma.get(lemma, ())}
            for r in candidates:
                concept, needed = self._requirements[r]
                if needed <= lemmas:
                    caption_ids.append(index)
                    concept_ids.append(concept)
        return Hits.from_pairs(np.array(caption_ids, np.int64), np.array(concept_ids, np.int64), len(captions), self._n_ids)


def _phrase_pos(vocabulary: Vocabulary):
    # Imported on use: the lexicon behind it is only loaded by runs that choose this method.
    from conceptfreq.core.pos_matching import PosPhraseMatcher

    return PosPhraseMatcher(vocabulary)


MATCHERS = {"phrase": PhraseMatcher, "phrase+pos": _phrase_pos, "bag": BagMatcher}
# phrase+pos becomes the default only when it meets its precision/recall target on the labelled
# captions (tests/labelled); tests/unit/test_senses.py holds this line to that rule.
DEFAULT_METHOD = "phrase"


def make_matcher(vocabulary: Vocabulary, method: str = DEFAULT_METHOD):
    if method not in MATCHERS:
        raise ValueError(f"unknown matching method {method!r}: choose one of {', '.join(MATCHERS)}")
    return MATCHERS[method](vocabulary)


# Methods whose build is worth keeping: `bag` builds in milliseconds from the lemma table.
COMPILED_METHODS = ("phrase", "phrase+pos")


def compile_matcher(vocabulary: Vocabulary, method: str = DEFAULT_METHOD) -> dict[str, np.ndarray]:
    """Everything costly that make_matcher(vocabulary, method) computes, as plain numpy arrays
    (numbers and UTF-8 bytes, no objects), labelled with what it was compiled from."""
    if method not in COMPILED_METHODS:
        raise ValueError(f"method {method!r} has nothing to compile: choose one of {', '.join(COMPILED_METHODS)}")
    compiled = compile_phrase(vocabulary)
    if method == "phrase+pos":
        from conceptfreq.core.pos_matching import compile_rules

        compiled["rules"] = compile_rules(vocabulary)
    compiled["label"] = _text_array(_label(vocabulary.version, method))
    return compiled


def matcher_from_compiled(compiled: dict[str, np.ndarray], vocabulary: Vocabulary, method: str = DEFAULT_METHOD):
    """The matcher of compile_matcher(vocabulary, method), from its arrays; ValueError when they were
    compiled from another vocabulary, method or MATCHER_VERSION, or do not hold together."""
    label = compiled.get("label")
    if label is None or label.dtype != np.uint8 or label.tobytes().decode("utf-8", "replace") != _label(vocabulary.version, method):
        raise ValueError("compiled for another vocabulary, method or matcher version")
    if method == "phrase+pos":
        from conceptfreq.core.pos_matching import PosPhraseMatcher

        return PosPhraseMatcher.from_compiled(compiled)
    return PhraseMatcher.from_compiled(compiled)


def _label(version: str, method: str) -> str:
    return f"conceptfreq matcher {MATCHER_VERSION} {method} {version}"


def _text_array(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), np.uint8)
