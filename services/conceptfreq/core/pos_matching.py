"""`phrase+pos`: the phrase matcher, with a decision from context for hits that may not mean the concept.

The automaton pass is the phrase matcher's. Only hits of surface forms that core.senses marks
(`watch`, `can`, `orange`, `kite`, ...) go through `SenseRules.decide`, one Python call per such
hit with the words around it read straight from the normalized block; every other hit costs
what it costs in `phrase`. Decisions that depend only on the neighbouring words are cached.
A hit decided UNSURE is left out of the hits and counted in `Hits.ambiguous` instead.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from conceptfreq.core.lexicon import wordnet
from conceptfreq.core.matching import BLOCK, Hits, PhraseMatcher, lemma_table
from conceptfreq.core.senses import DROP, KEEP, UNSURE, FormRule, SenseRules, derive
from conceptfreq.core.text import SEPARATOR, normalize_captions
from conceptfreq.core.vocabulary import Vocabulary

_SEP = SEPARATOR[0]
# How far to look for the neighbouring word's edges; longer words are not function words anyway.
_REACH = 40


@lru_cache(maxsize=4)
def rules_for(vocabulary: Vocabulary) -> SenseRules:
    return derive(vocabulary, wordnet(), lemma_table())


class PosPhraseMatcher(PhraseMatcher):
    name = "phrase+pos"

    def __init__(self, vocabulary: Vocabulary, rules: SenseRules | None = None):
        super().__init__(vocabulary)
        self.rules = rules if rules is not None else rules_for(vocabulary)
        # One entry per (key, concept) row of the compressed key table: the rule to apply, or -1.
        self._rule_list: list[FormRule] = []
        row_rule = np.full(self._key_concepts.size, -1, np.int64)
        self._key_length = np.array([len(k) for k in self._keys], np.int64)
        for index, key in enumerate(self._keys):
            form = key.decode().strip()
            start = int(self._key_start[index])
            for offset in range(int(self._key_count[index])):
                rule = self.rules.rules.get((form, int(self._key_concepts[start + offset])))
                if rule is not None:
                    row_rule[start + offset] = len(self._rule_list)
                    self._rule_list.append(rule)
        self._row_rule = row_rule
        self.ambiguous_forms = len(self._rule_list)
        self._cache: dict[tuple[int, bytes, bytes, bytes], int] = {}

    def match(self, captions: Sequence[str]) -> Hits:
        blocks = [self._match_block(captions[i : i + BLOCK]) for i in range(0, len(captions), BLOCK)]
        if not blocks:
            return Hits(np.zeros(0, np.int64), np.zeros(0, np.int64), 0)
        caption = np.concatenate([b.caption + i * BLOCK for i, b in enumerate(blocks)])
        concept = np.concatenate([b.concept for b in blocks])
        ambiguous: dict[int, int] = {}
        for block in blocks:
            for c, n in block.ambiguous.items():
                ambiguous[c] = ambiguous.get(c, 0) + n
        return Hits(caption, concept, len(captions), ambiguous)

    def _match_block(self, captions: Sequence[str]) -> Hits:
        padded = normalize_captions(captions)
        found = self._automaton.find_matches_as_indexes(padded, overlapping=True)
        n = len(captions)
        if not found:
            return Hits(np.zeros(0, np.int64), np.zeros(0, np.int64), n)
        matches = np.array(found, dtype=np.int64)
        key, start = matches[:, 0], matches[:, 1]
        line_breaks = np.flatnonzero(np.frombuffer(padded, dtype=np.uint8) == _SEP)
        caption = np.searchsorted(line_breaks, start)
        counts = self._key_count[key]
        if self._single:
            row = self._key_start[key]
        else:
            caption, key, start = np.repeat(caption, counts), np.repeat(key, counts), np.repeat(start, counts)
            first = np.repeat(self._key_start[matches[:, 0]] - np.cumsum(counts) + counts, counts)
            row = first + np.arange(counts.sum())
        concept = self._key_concepts[row]
        rule_index = self._row_rule[row]
        asked = np.flatnonzero(rule_index >= 0)
        if asked.size == 0:
            return Hits.from_pairs(caption, concept, n, self._n_ids)
        keep = np.ones(caption.size, bool)
        unsure_pairs: list[tuple[int, int]] = []
        ends = (start[asked] + self._key_length[key[asked]] - 1).tolist()
        for i, s, e, r, c in zip(asked.tolist(), start[asked].tolist(), ends, rule_index[asked].tolist(), caption[asked].tolist()):
            decision = self._decide(padded, line_breaks, r, s, e, c)
            if decision != KEEP:
                keep[i] = False
                if decision == UNSURE:
                    unsure_pairs.append((c, int(concept[i])))
        hits = Hits.from_pairs(caption[keep], concept[keep], n, self._n_ids)
        if unsure_pairs:
            # A caption that also has a decided hit of the concept counts it; the rest are ambiguous.
            counted = set(zip(hits.caption.tolist(), hits.concept.tolist()))
            for c, concept_id in set(unsure_pairs) - counted:
                hits.ambiguous[concept_id] = hits.ambiguous.get(concept_id, 0) + 1
        return hits

    def _decide(self, padded: bytes, line_breaks: np.ndarray, r: int, s: int, e: int, c: int) -> int:
        """The decision for the hit whose padded key spans [s, e] (its spaces) in caption c."""
        p = padded.rfind(b" ", max(0, s - _REACH), s)
        prev = padded[p + 1 : s] if p >= 0 else b""
        q = padded.find(b" ", e + 1, e + 1 + _REACH)
        nxt = padded[e + 1 : q] if q >= 0 else b""
        q2 = padded.find(b" ", q + 1, q + 1 + _REACH) if q >= 0 else -1
        nxt2 = padded[q + 1 : q2] if q2 >= 0 else b""
        if prev == SEPARATOR:
            prev = b""
        if nxt == SEPARATOR:
            nxt = nxt2 = b""
        if nxt2 == SEPARATOR:
            nxt2 = b""
        rule = self._rule_list[r]
        if not rule.senses:
            context = (r, prev, nxt, nxt2)
            cached = self._cache.get(context)
            if cached is None:
                cached = self.rules.decide(rule, prev.decode("utf-8", "replace"), nxt.decode("utf-8", "replace"), None,
                                           nxt2.decode("utf-8", "replace"))
                if len(self._cache) < 1 << 16:
                    self._cache[context] = cached
            return cached
        lo = int(line_breaks[c - 1]) + 1 if c > 0 else 0
        hi = int(line_breaks[c]) if c < line_breaks.size else len(padded)
        words = padded[lo:hi].decode("utf-8", "replace").split()
        return self.rules.decide(rule, prev.decode("utf-8", "replace"), nxt.decode("utf-8", "replace"), words,
                                 nxt2.decode("utf-8", "replace"))


__all__ = ["PosPhraseMatcher", "rules_for", "DROP", "KEEP", "UNSURE"]
