"""Whether a caption's word means the concept: part of speech and word sense from context.

A phrase hit on `watch` in "the crowd watches" or `orange` in "bright orange sneakers" shares the
concept's spelling, not its meaning. For the few surface forms where that happens often, the
`phrase+pos` matcher asks `SenseRules.decide` about each hit; every other hit is counted as the
phrase matcher counts it. Which forms are asked about is derived from a lexicon (WordNet 3.0, see
core.lexicon), never listed by hand:

- **part of speech**: a single-word name whose SemCor tags are at least half as often a verb or
  adjective as a noun (`watch`, `fly`, `orange`, `swing`), an irregular verb form (`rose`), a
  comparative (`lighter`), or an English function word (`can`, from spaCy's stop-word list);
- **sense**: a concept whose vocabulary names its WordNet sense (`Concept.senses`) where the same
  word names a different kind of thing that a caption could mean instead (`_sense_cues`:
  `Jersey` the island vs the shirt, `Boxer` the dog vs the fighter, `kite` the bird vs the toy,
  `basketball` the ball vs the game).

The decision reads the words next to the hit (a determiner before it makes a noun; `to`, a modal
or a pronoun before it, or an object after it, make a verb; another content word after a colour
word makes it an adjective; `teddy` before `bear` makes another thing) and, for senses, the
caption's other words against each sense's context words (its gloss, synonyms, hypernyms,
hyponyms, parts and wholes: simplified Lesk). A hit whose sense cannot be told apart is
`UNSURE`: counted separately, as `ambiguous`, not in the count.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass, field, fields
from functools import lru_cache

from pathlib import Path

from conceptfreq.core.inflection import plural_forms
from conceptfreq.core.lexicon import LexiconError, WordNet
from conceptfreq.core.text import phrase_key
from conceptfreq.core.vocabulary import Vocabulary

KEEP, DROP, UNSURE = 1, 0, 2

# Closed word classes: grammar, the same for every vocabulary. Captions are normalized (lower
# case, punctuation to spaces), so "dog's" reads "dog s" and "I'll" reads "i ll".
DETERMINERS = frozenset(
    "a an the this that these those my your his her its our their some any no every each another both all several "
    "many few s one two three four five six seven eight nine ten dozen pair of".split()
)
# Words after which a verb-or-noun form is the verb: the infinitive marker, modals and
# auxiliaries (contracted ones too), subject pronouns and relative pronouns.
BEFORE_VERB = frozenset(
    "to can could will would shall should may might must ll d don doesn didn won cannot not never let lets please "
    "i you he she we they who also always often just".split()
)
# Words that follow a verb, not a noun: objects, particles and the subordinators of captions
# ("watches over the people", "fly away", "as the crowd watches").
AFTER_VERB = frozenset(
    "the a an his her their my your our its him them me us this these those over away out off up down into "
    "through across together back towards toward past".split()
)
# After a modal: the verb's base form, or the adverbs and negations that come between.
AFTER_MODAL = frozenset("be t not also only now still easily even never always really actually help get make see do have "
                        "go find take use give keep".split())
# Words after a predicative adjective: "safe for kids", "safe to swim", "lighter than".
AFTER_ADJECTIVE = frozenset("for to in from with at than enough".split())
# Verbs that make the next colour word an adjective ("is orange", "turned orange").
COPULAS = frozenset("is are was were be been being looks look turns turn turned turning painted".split())
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class FormRule:
    """How to decide one ambiguous surface form of one concept."""

    concept: int
    verb: bool = False  # the form is also a common verb
    adjective: bool = False  # ... or a common adjective
    modal: bool = False  # ... or a function word (a modal: `can`)
    plural: bool = False  # the form is the name's plural (never a base verb, never a modal)
    keep_cues: frozenset[str] = frozenset()  # context words of the concept's sense
    drop_cues: frozenset[str] = frozenset()  # context words of the word's other senses
    unsure_without_cues: bool = False  # the other senses are more common: no cue, no decision
    compounds: frozenset[str] = frozenset()  # words that make a WordNet noun with the form: `orange juice`
    compound_heads: frozenset[str] = frozenset()  # words before the form that make another thing: `teddy`

    @property
    def senses(self) -> bool:
        return bool(self.drop_cues)


@dataclass
class SenseRules:
    """The derived rules of one vocabulary: {(surface form, concept id): FormRule}."""

    rules: dict[tuple[str, int], FormRule] = field(default_factory=dict)
    lexicon: dict = field(default_factory=dict)  # provenance of the resources they were derived from
    _lemmas: dict[str, str] = field(default_factory=dict, repr=False)
    _verbish: frozenset[str] = frozenset()
    _nounish: frozenset[str] = frozenset()
    _adjectives: frozenset[str] = frozenset()
    _stop: frozenset[str] = frozenset()
    _cue_indexes: dict = field(default_factory=dict, repr=False)
    _by_lemma: dict | None = field(default=None, repr=False)

    def forms(self) -> set[str]:
        return {form for form, _ in self.rules}

    def to_plain(self) -> dict:
        """The rules and word classes as JSON-ready data (lists, strings, numbers); the lemma
        table they were derived with is not included: from_plain takes it again."""
        def plain(rule: FormRule) -> dict:
            return {f.name: sorted(getattr(rule, f.name)) if isinstance(getattr(rule, f.name), frozenset) else getattr(rule, f.name)
                    for f in fields(FormRule)}

        return {"rules": [[form, concept, plain(rule)] for (form, concept), rule in self.rules.items()],
                "lexicon": self.lexicon, "verbish": sorted(self._verbish), "nounish": sorted(self._nounish),
                "adjectives": sorted(self._adjectives), "stop": sorted(self._stop)}

    @classmethod
    def from_plain(cls, data: dict, lemmas: dict[str, str]) -> "SenseRules":
        """The inverse of to_plain; ValueError when `data` is not its shape."""
        try:
            sets = {f.name for f in fields(FormRule) if f.type.startswith("frozenset")}
            rules = {(str(form), int(concept)): FormRule(**{k: frozenset(v) if k in sets else v for k, v in rule.items()})
                     for form, concept, rule in data["rules"]}
            return cls(rules=rules, lexicon=dict(data["lexicon"]), _lemmas=lemmas, _verbish=frozenset(data["verbish"]),
                       _nounish=frozenset(data["nounish"]), _adjectives=frozenset(data["adjectives"]), _stop=frozenset(data["stop"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a compiled set of sense rules: {error}") from None

    def summary(self) -> dict[str, list[str]]:
        out: dict[str, set[str]] = {"verb": set(), "adjective": set(), "modal": set(), "sense": set()}
        for (form, _), rule in self.rules.items():
            for kind, flag in (("verb", rule.verb), ("adjective", rule.adjective), ("modal", rule.modal), ("sense", rule.senses)):
                if flag:
                    out[kind].add(form)
        return {k: sorted(v) for k, v in out.items()}

    def decide(self, rule: FormRule, prev: str, nxt: str, caption_words: list[str] | None, nxt2: str = "") -> int:
        """KEEP, DROP or UNSURE for one hit: `prev`/`nxt`/`nxt2` are the words around it ('' at
        the caption's edges), `caption_words` all of its words (needed only when `rule.senses`)."""
        decided = self.context_decision(rule, prev, nxt, nxt2)
        if decided is not None:
            return decided
        lemmas = {self._lemmas.get(w, w) for w in caption_words or ()}
        return self.sense_decision(rule, len(lemmas & rule.keep_cues), len(lemmas & rule.drop_cues))

    def context_decision(self, rule: FormRule, prev: str, nxt: str, nxt2: str = "") -> int | None:
        """The part of the decision the neighbouring words settle: DROP, KEEP (for a rule without
        senses), or None when the caption's other words must tell the sense."""
        noun_context = prev in DETERMINERS or prev.isdigit()
        if rule.modal and not rule.plural:
            if nxt in AFTER_MODAL or nxt in self._verbish:
                return DROP
            if not (noun_context or nxt == "of" or nxt in self._nounish):
                return DROP  # `can` with nothing noun-like around it is the modal
        if rule.verb:
            if not rule.plural and prev in BEFORE_VERB:
                return DROP
            if nxt in AFTER_VERB and not (noun_context and prev not in ("that",)):
                return DROP
        if rule.compound_heads and prev in rule.compound_heads:
            return DROP  # `teddy bear`, `baby shower`, `space suit`: a WordNet noun that is another thing
        if rule.adjective:
            if nxt and nxt not in self._stop and not nxt.isdigit() and nxt not in rule.keep_cues and nxt not in rule.compounds:
                return DROP  # a colour word before another word describes it; `orange juice` is a compound
            if not noun_context:
                if prev in COPULAS or (nxt in AFTER_ADJECTIVE and prev not in ("the",)):
                    return DROP  # "is orange", "safe for kids", "not safe to swim"
                if nxt in ("and", "or") and (nxt2 in self._adjectives or nxt2 in self._nounish):
                    return DROP  # "orange and blue butterfly"
        return None if rule.senses else KEEP

    @staticmethod
    def sense_decision(rule: FormRule, keep: int, drop: int) -> int:
        """From how many distinct context words of the concept's sense (`keep`) and of the other
        senses (`drop`) the caption has."""
        if keep > drop:
            return KEEP
        if drop > keep:
            return DROP
        return UNSURE if rule.unsure_without_cues or keep else KEEP

    def cue_index(self, rule: FormRule) -> dict[bytes, tuple[bool, str]]:
        """Every caption word (UTF-8, any inflection the lemma table knows) that is a context word
        of `rule`: word -> (of the concept's sense?, lemma). Lets the matcher score a caption with
        one dict lookup per word instead of lemmatizing it."""
        index = self._cue_indexes.get(id(rule))
        if index is None:
            cues = {c: True for c in rule.keep_cues} | {c: False for c in rule.drop_cues}
            index = {c.encode(): (mine, c) for c, mine in cues.items()}
            for word, lemma in self._inverse_lemmas(frozenset(cues)):
                index.setdefault(word.encode(), (cues[lemma], lemma))
            self._cue_indexes[id(rule)] = index
        return index

    def _inverse_lemmas(self, lemmas: frozenset[str]):
        if self._by_lemma is None:
            by_lemma: dict[str, list[str]] = {}
            for word, lemma in self._lemmas.items():
                if word != lemma:
                    by_lemma.setdefault(lemma, []).append(word)
            self._by_lemma = by_lemma
        for lemma in lemmas:
            for word in self._by_lemma.get(lemma, ()):
                yield word, lemma


# --- deriving the rules from the lexicon -----------------------------------------------------------

def resources(wordnet: WordNet) -> dict:
    """Source and version of every resource the rules are derived from."""
    from importlib import metadata

    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    return {
        "wordnet": wordnet.provenance(),
        "function_words": {"package": "spacy", "version": version("spacy"), "path": "spacy/lang/en/stop_words.py"},
        "lemmas": {"package": "spacy-lookups-data", "version": version("spacy-lookups-data"),
                   "path": "spacy_lookups_data/data/en_lemma_lookup.json.gz"},
    }


def _ratio_ambiguous(tags: dict[str, int], other: str) -> bool:
    count = tags.get(other, 0)
    return count >= 2 and 2 * count >= tags.get("n", 0)


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    """spaCy's English stop words (function words: `can`, `may`, `will`), read from its source file:
    importing spaCy itself costs seconds that matching does not need."""
    spec = importlib.util.find_spec("spacy")
    if spec is None or not spec.submodule_search_locations:
        raise LexiconError("spaCy is not installed: it provides the function-word list (pip install spacy)")
    source = Path(spec.submodule_search_locations[0], "lang", "en", "stop_words.py").read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "STOP_WORDS":
            text = next((n.value for n in ast.walk(node.value) if isinstance(n, ast.Constant) and isinstance(n.value, str)), "")
            if text.split():
                return frozenset(text.split())
    raise LexiconError("spaCy's stop_words.py has no STOP_WORDS set: pin the spacy version in requirements.lock")


def _sense_words(wordnet: WordNet, offset: int, lemma_of) -> set[str]:
    """Simplified Lesk context of a noun synset: its lemmas and gloss words, the lemmas of its
    neighbours (hypernyms, hyponyms, holonyms, meronyms, domains) and of two more hypernym levels."""
    stop = _stop_words()
    synset = wordnet.synset(offset)
    words: set[str] = set()
    for lemma in synset.lemmas:
        words.update(lemma.replace("-", "_").split("_"))
    gloss = re.sub(r'"[^"]*"', " ", synset.gloss)  # the definition, without the quoted examples
    words.update(lemma_of(w) for w in _WORD.findall(gloss.lower()))
    level = list(synset.neighbours)
    for depth in range(3):
        next_level = []
        for o in level:
            neighbour = wordnet.synset(o)
            for lemma in neighbour.lemmas:
                words.update(lemma.replace("-", "_").split("_"))
            if depth == 0 and o in synset.hypernyms:
                words.update(lemma_of(w) for w in _WORD.findall(re.sub(r'"[^"]*"', " ", neighbour.gloss).lower()))
            next_level.extend(neighbour.hypernyms)
        level = next_level
    return {w for w in words if len(w) > 2 and w not in stop}


def parse_sense(sense: str) -> int | None:
    """`wn30:n04371774` -> 4371774 (a WordNet 3.0 noun offset); anything else -> None."""
    if sense.startswith("wn30:n") and sense[6:].isdigit():
        return int(sense[6:])
    return None


def derive(vocabulary: Vocabulary, wordnet: WordNet, lemma_table: dict[str, str]) -> SenseRules:
    """The rules for every single-word surface form of the vocabulary that needs a decision."""
    stop = _stop_words()
    lemma_of = lambda w: lemma_table.get(w, w)  # noqa: E731
    # Which concepts claim which WordNet sense: another concept's sense of the same word competes.
    claimed: dict[int, set[int]] = {}
    for concept in vocabulary:
        for sense in getattr(concept, "senses", ()):
            offset = parse_sense(sense)
            if offset is not None:
                claimed.setdefault(offset, set()).add(concept.id)
    rules: dict[tuple[str, int], FormRule] = {}
    for concept in vocabulary:
        offsets = [o for o in (parse_sense(s) for s in getattr(concept, "senses", ())) if o is not None]
        for name in concept.names:
            word = phrase_key(name)
            if not word.isalpha():  # multi-word names are specific enough: `trash can`, `digital watch`
                continue
            tags = wordnet.tag_counts(word)
            if not wordnet.is_noun(word) and word not in stop:
                continue  # `striped`, `lined` (texture names): adjectives are what the concept is
            verb = _ratio_ambiguous(tags, "v") or any(
                _ratio_ambiguous(wordnet.tag_counts(v), "v") for v in wordnet.verb_lemmas_of_form(word)
            )
            # A comparative is an adjective form whatever its base is more often: `lighter` (light).
            adjective = _ratio_ambiguous(tags, "a") or any(
                wordnet.tag_counts(a).get("a", 0) >= 2 for a in wordnet.adjective_lemmas_of_form(word) + _comparative_bases(word)
            )
            modal = word in stop and tags.get("n", 0) < 3
            keep_cues, drop_cues, unsure = _sense_cues(wordnet, word, offsets, claimed, concept.id, lemma_of)
            if not (verb or adjective or modal or drop_cues):
                continue
            compounds = frozenset(wordnet.compounds_after(word)) if adjective else frozenset()
            heads = frozenset(_other_things_before(wordnet, word))
            if adjective and not keep_cues:
                # A colour word before a word of its own sense is the noun: `husky dog`, `orange tree`.
                own = offsets or wordnet.noun_offsets(word)[:1]
                keep_cues = frozenset(set().union(*(_sense_words(wordnet, o, lemma_of) for o in own)) - {word})
            base = FormRule(concept.id, verb=verb, adjective=adjective, modal=modal, keep_cues=keep_cues,
                            drop_cues=drop_cues, unsure_without_cues=unsure, compounds=compounds, compound_heads=heads)
            rules[(word, concept.id)] = base
            for plural in plural_forms(word):
                rules[(plural, concept.id)] = FormRule(concept.id, verb=verb, adjective=False, modal=False, plural=True,
                                                       keep_cues=keep_cues, drop_cues=drop_cues, unsure_without_cues=unsure,
                                                       compound_heads=heads)
    verbish, nounish, adjectives = _open_class_sets(wordnet, lemma_table)
    return SenseRules(rules=rules, lexicon=resources(wordnet), _lemmas=lemma_table, _verbish=verbish, _nounish=nounish,
                      _adjectives=adjectives, _stop=stop)


def _comparative_bases(word: str) -> list[str]:
    """Adjectives a regular comparative could come from: `lighter` -> light, `bigger` -> big, `safer` -> safe."""
    if not word.endswith("er") or len(word) < 5:
        return []
    stem = word[:-2]
    bases = [stem, word[:-1]]
    if len(stem) > 2 and stem[-1] == stem[-2]:
        bases.append(stem[:-1])
    return bases


def _other_things_before(wordnet: WordNet, word: str) -> set[str]:
    """First words of two-word WordNet nouns ending in `word` that name a different kind of thing
    than every noun sense of the word: `teddy` (a teddy bear is a toy, not an animal), `baby` (a
    baby shower is a party); not `polar`, `kitchen` or `siberian`, which name kinds of it."""
    physical, top, *_ = _anchors(wordnet)
    senses = [wordnet.hypernym_closure(o) | {o} for o in wordnet.noun_offsets(word)]
    heads = set()
    for first, compound in wordnet.compounds_before(word):
        closures = [wordnet.hypernym_closure(o) | {o} for o in wordnet.noun_offsets(compound)]
        if all((c & s) <= top for c in closures for s in senses):
            heads.add(first)
    return heads


def _sense_cues(wordnet: WordNet, word: str, offsets: list[int], claimed: dict[int, set[int]], concept_id: int, lemma_of):
    """(keep cues, drop cues, unsure without cues) for a concept whose vocabulary names its senses.

    Another noun sense of the word competes when a caption could mean it instead:
    - a different kind of concrete thing (the nearest common hypernym is one of the top concrete
      nodes: a bird and a toy, an island and a shirt, a dog and a fighter) that is listed earlier,
      tagged as often, or is the sense of another concept of the vocabulary (a plant or animal and
    the food made of it are one thing);
    - an activity tagged at least twice as often (`baseball` the game vs the ball).
    Metonymic and abstract senses (a village's community, a stage of development) do not compete:
    they name the same visible thing, or none. Without cues a hit is UNSURE when a competitor is
    tagged clearly more often than the concept's sense (twice, or it has none), or is another
    concept's sense.
    """
    all_senses = wordnet.noun_offsets(word)
    mine = [o for o in offsets if o in all_senses]
    if not mine:
        return frozenset(), frozenset(), False
    tags = wordnet.noun_sense_tags(word)
    first_rank = min(all_senses.index(o) for o in mine) + 1
    my_tags = max(tags.get(all_senses.index(o) + 1, 0) for o in mine)
    related = set(mine)
    for o in mine:
        related.update(wordnet.synset(o).neighbours)
    physical, top, act, food, organism, plant_part = _anchors(wordnet)
    mine_closure = [wordnet.hypernym_closure(o) | {o} for o in mine]
    # A concrete sense that the concept's own definition names is the same visible thing: ImageNet's
    # `plate` is "a main course served on a plate".
    defined_by = {o for o in all_senses if physical in wordnet.hypernym_closure(o)
                  and any(re.search(rf"\b{re.escape(word)}\b", wordnet.synset(m).gloss.split(";")[0]) for m in mine)}
    competitors, unsure = [], False
    for rank, offset in enumerate(all_senses, start=1):
        if offset in related or offset in defined_by:
            continue
        closure = wordnet.hypernym_closure(offset) | {offset}
        their_tags = tags.get(rank, 0)
        if physical in closure and all(physical in m for m in mine_closure):
            shared = set.intersection(closure, *mine_closure)
            # A plant, its fruit and the food made of it are one thing to a caption (`mushroom`, `corn`).
            kind_marks = (organism, plant_part, *food)
            kinds = {k for k in kind_marks if k in closure}
            food_and_source = False
            for m in mine_closure:
                m_kinds = {k for k in kind_marks if k in m}
                food_and_source |= bool(kinds and m_kinds and kinds != m_kinds)
            different_kind = shared <= top and not food_and_source
            compete = different_kind and (rank < first_rank or their_tags >= max(my_tags, 1)
                                          or bool(claimed.get(offset, set()) - {concept_id}))
        else:
            compete = act in closure and their_tags >= 2 * max(my_tags, 1)
        if compete:
            competitors.append(offset)
            # WordNet's order is a weak prior for captions (it lists the proctor before the screen,
            # the cloud before the mushroom): only tags, or another concept's claim, make a hit unsure.
            more_tagged = their_tags > my_tags and (my_tags == 0 or their_tags >= 2 * my_tags)
            unsure |= more_tagged or bool(claimed.get(offset, set()) - {concept_id})
    if not competitors:
        return frozenset(), frozenset(), False
    keep = set().union(*(_sense_words(wordnet, o, lemma_of) for o in mine))
    drop = set().union(*(_sense_words(wordnet, o, lemma_of) for o in competitors))
    shared_words = keep & drop
    keep -= shared_words | {word}
    drop -= shared_words | {word}
    return frozenset(keep), frozenset(drop), unsure


@lru_cache(maxsize=4)
def _anchors(wordnet: WordNet) -> tuple[int, frozenset[int], int]:
    """physical_entity; the top concrete nodes, above which two concrete senses are different
    kinds of thing; act (something people do); food; organism; plant part."""
    def first(lemma: str, number: int = 1) -> int:
        return wordnet.noun_offsets(lemma)[number - 1]

    top = frozenset({first("physical_entity"), first("entity"), first("object"), first("whole", 2),
                     first("living_thing"), first("organism")})
    food = frozenset({first("food"), first("food", 2)})
    return first("physical_entity"), top, first("act", 2), food, first("organism"), first("plant_part")


def _open_class_sets(wordnet: WordNet, lemma_table: dict[str, str]):
    """Words mostly used as verbs (base forms), as nouns, and as adjectives, from SemCor tags.
    Only frequent words are tagged often enough to say; the rest count as none."""
    verbish, nounish, adjectives = set(), set(), set()
    for word, tags in wordnet._tags.items():  # noqa: SLF001 - the lexicon's own table, read once
        if "_" in word:
            continue
        n, v, a = tags.get("n", 0), tags.get("v", 0), tags.get("a", 0)
        if a >= 2 and a > n and a > v:
            adjectives.add(word)
        if v >= 3 and v > 2 * n:
            verbish.add(word)
        elif n >= 2 and n > v and n > a:
            # Regular plurals are enough here: this set only reads the word after a hit.
            nounish.update((word, word + "s", word + "es", word[:-1] + "ies" if word.endswith("y") else word))
    stop = _stop_words()
    return frozenset(verbish - stop), frozenset(nounish - stop), frozenset(adjectives - stop)
