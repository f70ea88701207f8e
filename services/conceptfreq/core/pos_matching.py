"""`phrase+pos`: the phrase matcher, with a decision from context for hits that may not mean the concept.

The automaton pass is the phrase matcher's. Only hits of surface forms that core.senses marks
(`watch`, `can`, `orange`, `kite`, ...) go through `SenseRules.decide`, one Python call per such
hit with the words around it read straight from the normalized block; every other hit costs
what it costs in `phrase`. Decisions that depend only on the neighbouring words are cached.
A hit decided UNSURE is left out of the hits and counted in `Hits.ambiguous` instead.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from conceptfreq.core.lexicon import wordnet
from conceptfreq.core.matching import Hits, PhraseMatcher, lemma_table
from conceptfreq.core.senses import DROP, KEEP, UNSURE, FormRule, SenseRules, derive
from conceptfreq.core.text import SEPARATOR
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
        self._load_rules(rules if rules is not None else rules_for(vocabulary))

    @classmethod
    def from_compiled(cls, compiled: dict[str, np.ndarray]) -> "PosPhraseMatcher":
        """compile_matcher's arrays: the phrase keys, and the sense rules as JSON in `rules`."""
        matcher = super().from_compiled(compiled)
        matcher._load_rules(SenseRules.from_plain(json.loads(compiled["rules"].tobytes()), lemma_table()))
        return matcher

    def _load_rules(self, rules: SenseRules) -> None:
        self.rules = rules
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
        # (rule, previous word, next word, the word after): the context's decision, or None when
        # the sense must be read from the whole caption. Contexts repeat across captions.
        self._cache: dict[tuple[int, bytes, bytes, bytes], int | None] = {}
        self._cue_indexes: dict[int, dict[bytes, tuple[bool, str]]] = {}

    def _match_padded(self, padded: bytes, n: int) -> Hits:
        matches = self._found(padded)
        if matches is None:
            return Hits(np.zeros(0, np.int64), np.zeros(0, np.int64), n)
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
        # One pass in Python over the asked hits only; names bound locally because this loop is
        # the whole cost phrase+pos adds to phrase.
        cache, rfind, find, context_decision = self._cache, padded.rfind, padded.find, self.rules.context_decision
        rule_list, sep = self._rule_list, SEPARATOR
        breaks: list[int] | None = None
        asked_start = start[asked]
        ends = (asked_start + self._key_length[key[asked]] - 1).tolist()
        for i, s, e, r, c in zip(asked.tolist(), asked_start.tolist(), ends, rule_index[asked].tolist(), caption[asked].tolist()):
            p = rfind(b" ", s - _REACH if s > _REACH else 0, s)
            q = find(b" ", e + 1, e + 1 + _REACH)
            q2 = find(b" ", q + 1, q + 1 + _REACH) if q >= 0 else -1
            context = (r, padded[p + 1 : s] if p >= 0 else b"", padded[e + 1 : q] if q >= 0 else b"",
                       padded[q + 1 : q2] if q2 >= 0 else b"")
            decision = cache.get(context, _MISSING)
            if decision is _MISSING:
                prev, nxt, nxt2 = (w.decode("utf-8", "replace") if w != sep else "" for w in context[1:])
                decision = context_decision(rule_list[r], prev, nxt, nxt2 if nxt else "")
                if len(cache) < 1 << 16:
                    cache[context] = decision
            if decision is None:
                if breaks is None:
                    breaks = line_breaks.tolist()
                decision = self._sense(padded, breaks, r, c)
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

    def _sense(self, padded: bytes, breaks: list[int], r: int, c: int) -> int:
        """The caption's words against the rule's context words, one dict lookup each."""
        rule = self._rule_list[r]
        index = self._cue_indexes.get(r)
        if index is None:
            index = self._cue_indexes[r] = self.rules.cue_index(rule)
        lo = breaks[c - 1] + 1 if c > 0 else 0
        hi = breaks[c] if c < len(breaks) else len(padded)
        found = {index[w] for w in padded[lo:hi].split() if w in index}
        keep = sum(mine for mine, _ in found)
        return self.rules.sense_decision(rule, keep, len(found) - keep)


_MISSING = object()


def compile_rules(vocabulary: Vocabulary) -> np.ndarray:
    """The vocabulary's sense rules as UTF-8 JSON bytes: deriving them reads all of WordNet."""
    return np.frombuffer(json.dumps(rules_for(vocabulary).to_plain(), ensure_ascii=False).encode(), np.uint8)


__all__ = ["PosPhraseMatcher", "compile_rules", "rules_for", "DROP", "KEEP", "UNSURE"]
