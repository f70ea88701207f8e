"""Answers to frequency questions, independent of how they are asked (CLI or gRPC), read from the
in-memory totals (index.py): a question costs the same at 100 shards and at 100,000.

Input is checked before anything is looked up: names are at most MAX_NAME characters, a batch at
most MAX_CONCEPTS names and MAX_DATASETS datasets, and only the first SUGGESTED unknown names get
suggestions (a fuzzy match costs far more than a lookup), so no request can make the server work
for seconds or echo megabytes back."""

from __future__ import annotations

import base64
import binascii
import difflib
import json
from dataclasses import dataclass, field

import numpy as np

from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import IMAGE, KINDS, MATCHED, TEXT
from conceptfreq.core.vocabulary import Concept, Vocabulary
from conceptfreq.errors import NotFoundError, UserError
from conceptfreq.query.index import DatasetTotals, FrequencyIndex, Freshness, shown_name

MAX_NAME = 256
MAX_CONCEPTS = 10_000
MAX_DATASETS = 64
SUGGESTED = 20
MAX_PAGE = 1_000


@dataclass
class ConceptRow:
    concept_id: int
    name: str
    text: int = 0
    image: int = 0
    matched: int = 0
    ranks: dict[str, tuple[int, float]] = field(default_factory=dict)  # kind -> (rank, percentile)

    def to_json(self) -> dict:
        return {"concept_id": self.concept_id, "name": self.name, "text": self.text, "image": self.image, "matched": self.matched,
                **({"ranks": {k: {"rank": r, "percentile": round(p, 3)} for k, (r, p) in self.ranks.items()}} if self.ranks else {})}


@dataclass
class Answer:
    dataset: str
    vocabulary_version: str
    samples: int
    rows: list[ConceptRow]
    unknown: list[str] = field(default_factory=list)
    image_rule: str = ""  # the tagging rule the image and matched columns were read under; "" without any
    rules: dict[str, str] = field(default_factory=dict)
    suggestions: dict[str, list[str]] = field(default_factory=dict)
    shards: int = 0
    freshness: Freshness | None = None
    next_page_token: str = ""  # top: where the next page starts; empty on the last

    def to_json(self) -> dict:
        return {"dataset": self.dataset, "vocabulary_version": self.vocabulary_version, "samples": self.samples,
                "concepts": [r.to_json() for r in self.rows], "unknown": self.unknown, "image_rule": self.image_rule}


def check_name(name: str, what: str = "concept name") -> str:
    if not name or not name.strip():
        raise UserError(f"an empty {what}")
    if len(name) > MAX_NAME:
        raise UserError(f"a {what} of {len(name):,} characters; at most {MAX_NAME}")
    if "\x00" in name:
        raise UserError(f"a {what} with a NUL character")
    return name


class FrequencyQueries:
    def __init__(self, store: CountStore, index: FrequencyIndex | None = None):
        self.store = store
        self.index = index or FrequencyIndex(store)

    def vocabulary(self, dataset: str, version: str | None = None) -> Vocabulary:
        """The vocabulary a dataset was counted with: the given version, or the latest one."""
        return self._totals(dataset, version).vocabulary

    def _totals(self, dataset: str, version: str | None) -> DatasetTotals:
        if not dataset:
            raise UserError("a dataset name is required (e.g. --dataset cc3m)")
        check_name(dataset, "dataset name")
        if version:
            check_name(version, "vocabulary version")
        return self.index.resolve(dataset, version or None)

    def _rules(self, totals: DatasetTotals, image_rule: str | None) -> dict[str, str]:
        """The rule each kind is read under; image and matched under `image_rule` when one is asked for."""
        if not image_rule:
            return dict(totals.default_rules)
        check_name(image_rule, "rule")
        available = totals.rules.get(IMAGE, {})
        if image_rule not in totals.tagging_rules and image_rule not in available:
            raise NotFoundError(f"dataset {shown_name(totals.dataset)} has no image counts under rule {shown_name(image_rule)}: "
                                f"recorded rules: {', '.join(totals.tagging_rules or sorted(available)) or 'none'}")
        return {**totals.default_rules, IMAGE: image_rule, MATCHED: image_rule}

    def _rows(self, totals: DatasetTotals, concepts: list[Concept], rules: dict[str, str], with_ranks: bool = True) -> list[ConceptRow]:
        # Column by column (numpy), then row by row: a 10,000-concept batch is a few array gathers.
        ids = np.fromiter((c.id for c in concepts), dtype=np.int64, count=len(concepts))
        counts = {kind: totals.column(kind, rules.get(kind))[ids].tolist() for kind in KINDS}
        text, image, matched = counts[TEXT], counts[IMAGE], counts[MATCHED]
        if not with_ranks:
            return [ConceptRow(c.id, c.name, text[i], image[i], matched[i]) for i, c in enumerate(concepts)]
        ranks = {kind: [r[ids].tolist() for r in totals.ranks(kind, rules.get(kind))] for kind in KINDS}
        return [ConceptRow(c.id, c.name, text[i], image[i], matched[i],
                           {kind: (ranks[kind][0][i], ranks[kind][1][i]) for kind in KINDS})
                for i, c in enumerate(concepts)]

    def _answer(self, totals: DatasetTotals, rows: list[ConceptRow], rules: dict[str, str], **extra) -> Answer:
        return Answer(totals.dataset, totals.vocabulary.version, totals.samples, rows, image_rule=rules.get(IMAGE, ""),
                      rules=rules, shards=totals.shards, freshness=totals.freshness(self.index.max_staleness_ms), **extra)

    def frequencies(self, dataset: str, names: list[str], version: str | None = None, strict: bool = False,
                    rule: str | None = None) -> Answer:
        return self._frequencies(self._totals(dataset, version), self._checked_names(names), strict, rule)

    def _checked_names(self, names: list[str]) -> list[str]:
        if not names:
            raise UserError("name at least one concept to query")
        if len(names) > MAX_CONCEPTS:
            raise UserError(f"{len(names):,} concepts in one request; at most {MAX_CONCEPTS:,}")
        return [check_name(n) for n in names]

    def _frequencies(self, totals: DatasetTotals, names: list[str], strict: bool, rule: str | None,
                     with_ranks: bool = True) -> Answer:
        concepts, unknown = totals.resolve(names)
        if strict and unknown:
            raise NotFoundError(self.unknown_message(totals.vocabulary, unknown))
        rules = self._rules(totals, rule)
        return self._answer(totals, self._rows(totals, concepts, rules, with_ranks), rules, unknown=unknown,
                            suggestions={name: suggest(totals.vocabulary, name) for name in unknown[:SUGGESTED]})

    def batch(self, datasets: list[str], names: list[str], version: str | None = None, rule: str | None = None,
              with_ranks: bool = False) -> list[Answer]:
        if not datasets:
            raise UserError("name at least one dataset")
        if len(datasets) > MAX_DATASETS:
            raise UserError(f"{len(datasets)} datasets in one request; at most {MAX_DATASETS}")
        names = self._checked_names(names)
        return [self._frequencies(self._totals(d, version), names, False, rule, with_ranks) for d in datasets]

    def top(self, dataset: str, k: int = 20, rarest: bool = False, kind: str = TEXT, version: str | None = None,
            page_token: str = "") -> Answer:
        if kind not in KINDS:
            raise UserError(f"unknown count kind {shown_name(kind)}: choose one of {', '.join(KINDS)}")
        if k <= 0:
            raise UserError("k must be a positive number of concepts")
        k = min(k, MAX_PAGE)
        offset = 0
        if page_token:
            offset, token_kind, token_rarest = decode_token(page_token, ("offset", "kind", "rarest"))
            if (token_kind, bool(token_rarest)) != (kind, rarest) or not isinstance(offset, int) or offset < 0:
                raise UserError("a page token of another listing (kind or order changed): start again without one")
        totals = self._totals(dataset, version)
        rules = dict(totals.default_rules)
        column = totals.column(kind, rules.get(kind))
        # Concepts never seen have no count; the rarest list must still show them, with 0. Ties by
        # name, then id: pages never repeat or skip a concept of an unchanged snapshot.
        concepts = sorted(totals.vocabulary, key=lambda c: ((column[c.id] if rarest else -column[c.id]), c.name, c.id))
        page = concepts[offset:offset + k]
        more = offset + k < len(concepts)
        token = encode_token({"offset": offset + k, "kind": kind, "rarest": int(rarest)}) if more else ""
        return self._answer(totals, self._rows(totals, page, rules), rules, next_page_token=token)

    def search(self, query: str, dataset: str = "", version: str | None = None, limit: int = 20) -> tuple[Vocabulary, list[tuple]]:
        """(vocabulary, [(concept, matched name, how)]): exact names and aliases first, then prefixes,
        then names that contain the query as a word, then close spellings."""
        check_name(query, "search query")
        if dataset:
            vocabulary = self.vocabulary(dataset, version)
        elif version:
            vocabulary = self.index.vocabularies.resolve(check_name(version, "vocabulary version"))
        else:
            from conceptfreq.core.vocabulary import default

            vocabulary = default()
        return vocabulary, search(vocabulary, query, max(1, min(limit or 20, 200)))

    def compare(self, concept: str, datasets: list[str], rule: str | None = None) -> list[tuple[str, Answer | None]]:
        """Each dataset's counts of one concept (None where its vocabulary has no such concept)."""
        check_name(concept)
        datasets = datasets or self.index.known_datasets()
        if len(datasets) > MAX_DATASETS:
            raise UserError(f"{len(datasets)} datasets in one request; at most {MAX_DATASETS}")
        out = []
        for dataset in datasets:
            answer = self._frequencies(self._totals(dataset, None), [concept], False, rule)
            out.append((dataset, answer))
        return out

    def samples(self, dataset: str, concept: str, kind: str = TEXT, version: str | None = None, page_size: int = 100,
                page_token: str = "") -> tuple[Answer, Concept, list[tuple[str, str]], str]:
        """(answer, concept, [(shard, key)], next page token) of the samples that hit a concept."""
        if kind not in (TEXT, IMAGE):
            raise UserError(f"samples are kept for text and image hits; not {shown_name(kind)}")
        totals = self._totals(dataset, version)
        found = totals.vocabulary.get(check_name(concept))
        if found is None:
            raise NotFoundError(self.unknown_message(totals.vocabulary, [concept]))
        after = decode_token(page_token, ("shard", "key")) if page_token else ("", "")
        size = max(1, min(page_size or 100, MAX_PAGE))
        rule = totals.default_rules.get(IMAGE) if kind == IMAGE else None
        rows = self.store.samples_of(totals.dataset, totals.vocabulary.version, found.id, kind, after, size + 1, rule=rule)
        token = encode_token({"shard": rows[size - 1][0], "key": rows[size - 1][1]}) if len(rows) > size else ""
        return self._answer(totals, [], dict(totals.default_rules)), found, rows[:size], token

    @staticmethod
    def unknown_message(vocabulary: Vocabulary, unknown: list[str]) -> str:
        return describe_unknown(vocabulary.version, unknown, {name: suggest(vocabulary, name) for name in unknown[:SUGGESTED]})


def describe_unknown(version: str, unknown: list[str], suggestions: dict[str, list[str]]) -> str:
    """One line naming the unknown names (the first SUGGESTED, with their suggestions)."""
    parts = []
    for name in unknown[:SUGGESTED]:
        close = suggestions.get(name)
        parts.append(shown_name(name) + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
    more = f" and {len(unknown) - SUGGESTED} more" if len(unknown) > SUGGESTED else ""
    return f"not in vocabulary {version}: {'; '.join(parts)}{more}"


def suggest(vocabulary: Vocabulary, name: str, n: int = 3) -> list[str]:
    return difflib.get_close_matches(name.lower(), [m for c in vocabulary for m in c.names], n=n, cutoff=0.6)


def search(vocabulary: Vocabulary, query: str, limit: int) -> list[tuple[Concept, str, str]]:
    q = " ".join(query.lower().split())
    ranked: dict[int, tuple[int, Concept, str, str]] = {}

    def offer(order: int, concept: Concept, name: str, how: str) -> None:
        if concept.id not in ranked or order < ranked[concept.id][0]:
            ranked[concept.id] = (order, concept, name, how)

    for concept in vocabulary:
        for name in concept.names:
            lowered = name.lower()
            if lowered == q:
                offer(0, concept, name, "exact")
            elif lowered.startswith(q):
                offer(1, concept, name, "prefix")
            elif q in lowered.split() or f" {q}" in f" {lowered}":
                offer(2, concept, name, "word")
    if len(ranked) < limit:
        for name in suggest(vocabulary, q, n=limit):
            concept = vocabulary.get(name)
            if concept is not None:
                offer(3, concept, name, "fuzzy")
    return [(c, name, how) for _, c, name, how in sorted(ranked.values(), key=lambda r: (r[0], len(r[2]), r[2]))][:limit]


def encode_token(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def decode_token(token: str, fields: tuple[str, ...]) -> tuple:
    """A page token's fields; a token we did not make is a UserError (INVALID_ARGUMENT)."""
    try:
        if len(token) > 4 * MAX_NAME * 2:
            raise ValueError("too long")
        state = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        values = tuple(state[f] for f in fields)
        if not all(isinstance(v, (str, int)) for v in values):
            raise ValueError("bad field")
        return values
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
        raise UserError("a page token this server did not make (pass next_page_token back as it is)") from None
