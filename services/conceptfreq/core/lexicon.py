"""WordNet 3.0 as a lexicon: parts of speech, how often each is used, and noun senses.

Read straight from the database files that Debian's `wordnet-base` installs (`/usr/share/wordnet`,
or `CONCEPTFREQ_WORDNET`), without nltk: the files are plain text with byte offsets, so a synset
is one seek away and loading costs only the index files (about half a second).

What the matcher needs from it:
- `tag_counts(word)`: how often the word was used as a noun, verb, adjective and adverb in the
  sense-tagged SemCor corpus (`cntlist.rev`). A concept whose name is used as a verb or adjective
  about as often as a noun needs its part of speech decided from context.
- `noun_senses(word)`: the noun synsets of a word in WordNet's frequency order, each with its
  lemmas, gloss and neighbours, from which a sense's context words are drawn.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from conceptfreq.errors import UserError

DEFAULT_DIR = "/usr/share/wordnet"
POS = ("n", "v", "a", "r")
# cntlist sense keys number parts of speech 1..5; 5 is the satellite adjective, an adjective here.
_SS_TYPE = {"1": "n", "2": "v", "3": "a", "4": "r", "5": "a"}
_FILES = ("index.noun", "index.verb", "index.adj", "index.adv", "data.noun", "cntlist.rev", "verb.exc", "adj.exc")
# Pointer symbols whose targets describe a noun sense: hypernyms, hyponyms (instance ones too),
# member/part/substance holonyms and meronyms, and domain links.
_NEIGHBOUR_POINTERS = {"@", "@i", "~", "~i", "#m", "#s", "#p", "%m", "%s", "%p", ";c", "-c"}


class LexiconError(UserError):
    """The lexicon files are missing; the message says how to install them."""


@dataclass(frozen=True)
class Synset:
    offset: int
    lemmas: tuple[str, ...]
    gloss: str
    neighbours: tuple[int, ...]  # offsets of related noun synsets (see _NEIGHBOUR_POINTERS)
    hypernyms: tuple[int, ...]


class WordNet:
    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory or os.environ.get("CONCEPTFREQ_WORDNET") or DEFAULT_DIR)
        missing = [f for f in _FILES if not (self.directory / f).is_file()]
        if missing:
            raise LexiconError(f"WordNet 3.0 not found in {str(self.directory)!r} (missing {', '.join(missing)}): "
                               "install it with `apt-get install wordnet-base`, or set CONCEPTFREQ_WORDNET to its folder")
        self._senses: dict[str, dict[str, list[int]]] = {p: {} for p in POS}
        for pos, name in zip(POS, ("noun", "verb", "adj", "adv")):
            with open(self.directory / f"index.{name}", encoding="utf-8") as f:
                for line in f:
                    if line.startswith(" "):  # licence header
                        continue
                    fields = line.split()
                    synset_count = int(fields[2])
                    self._senses[pos][fields[0]] = [int(o) for o in fields[-synset_count:]]
        self._tags: dict[str, dict[str, int]] = {}
        self._noun_sense_tags: dict[str, dict[int, int]] = {}
        with open(self.directory / "cntlist.rev", encoding="utf-8") as f:
            for line in f:
                key, number, count = line.split()
                lemma, _, rest = key.partition("%")
                pos = _SS_TYPE[rest[0]]
                counts = self._tags.setdefault(lemma, {})
                counts[pos] = counts.get(pos, 0) + int(count)
                if pos == "n":
                    senses = self._noun_sense_tags.setdefault(lemma, {})
                    senses[int(number)] = senses.get(int(number), 0) + int(count)
        # Irregular verb forms ("rose" -> rise, "left" -> leave): a noun that is also one is a verb too.
        self._verb_forms: dict[str, list[str]] = {}
        with open(self.directory / "verb.exc", encoding="utf-8") as f:
            for line in f:
                form, *lemmas = line.split()
                self._verb_forms[form] = lemmas
        # Irregular and comparative adjective forms: "lighter" -> light.
        self._adjective_forms: dict[str, list[str]] = {}
        with open(self.directory / "adj.exc", encoding="utf-8") as f:
            for line in f:
                form, *lemmas = line.split()
                self._adjective_forms[form] = lemmas
        # Two-word nouns by their last word, for `teddy bear` beside `bear`.
        self._compounds_by_last: dict[str, list[tuple[str, str]]] = {}
        for key in self._senses["n"]:
            parts = key.split("_")
            if len(parts) == 2:
                self._compounds_by_last.setdefault(parts[1], []).append((parts[0], key))
        self._data = open(self.directory / "data.noun", "rb")

    @staticmethod
    def available(directory: str | Path | None = None) -> bool:
        path = Path(directory or os.environ.get("CONCEPTFREQ_WORDNET") or DEFAULT_DIR)
        return all((path / f).is_file() for f in _FILES)

    def provenance(self) -> dict:
        """Where the lexicon came from, to record beside what was derived from it."""
        return {
            "resource": "WordNet 3.0 (Princeton), Debian package wordnet-base",
            "debian_version": _debian_version("wordnet-base"),
            "path": str(self.directory),
            "sha256": {f: _sha256(self.directory / f) for f in _FILES},
        }

    def parts_of_speech(self, word: str) -> set[str]:
        key = word.lower().replace(" ", "_")
        return {pos for pos in POS if key in self._senses[pos]}

    def tag_counts(self, word: str) -> dict[str, int]:
        return dict(self._tags.get(word.lower().replace(" ", "_"), {}))

    def verb_lemmas_of_form(self, form: str) -> list[str]:
        """The verbs an irregular form belongs to: `rose` -> [`rise`]."""
        return list(self._verb_forms.get(form.lower(), ()))

    def adjective_lemmas_of_form(self, form: str) -> list[str]:
        return list(self._adjective_forms.get(form.lower(), ()))

    def compounds_before(self, word: str) -> list[tuple[str, str]]:
        """(first word, compound) of two-word nouns ending in `word`: `bear` -> [(teddy, teddy_bear), ...]."""
        return list(self._compounds_by_last.get(word.lower(), ()))

    def noun_sense_tags(self, word: str) -> dict[int, int]:
        """{sense number (1-based, WordNet's frequency order): SemCor tags} of a word's noun senses."""
        return dict(self._noun_sense_tags.get(word.lower().replace(" ", "_"), {}))

    def is_noun(self, word: str) -> bool:
        return word.lower().replace(" ", "_") in self._senses["n"]

    def compounds_after(self, word: str) -> set[str]:
        """Second words of two-word WordNet nouns that start with `word`: `orange` -> {juice, peel, ...}."""
        prefix = word.lower() + "_"
        return {k[len(prefix):] for k in self._senses["n"] if k.startswith(prefix) and "_" not in k[len(prefix):]}

    def noun_offsets(self, word: str) -> list[int]:
        return list(self._senses["n"].get(word.lower().replace(" ", "_"), ()))

    def noun_senses(self, word: str) -> list[Synset]:
        return [self.synset(o) for o in self.noun_offsets(word)]

    @lru_cache(maxsize=65536)
    def synset(self, offset: int) -> Synset:
        self._data.seek(offset)
        line = self._data.readline().decode("utf-8")
        body, _, gloss = line.partition(" | ")
        fields = body.split()
        n_words = int(fields[3], 16)
        lemmas = tuple(fields[4 + 2 * i].lower() for i in range(n_words))
        at = 4 + 2 * n_words
        n_pointers = int(fields[at])
        neighbours, hypernyms = [], []
        for i in range(n_pointers):
            symbol, target, pos = fields[at + 1 + 4 * i : at + 4 + 4 * i]
            if pos == "n" and symbol in _NEIGHBOUR_POINTERS:
                neighbours.append(int(target))
                if symbol in ("@", "@i"):
                    hypernyms.append(int(target))
        return Synset(offset, lemmas, gloss.strip(), tuple(neighbours), tuple(hypernyms))

    def hypernym_closure(self, offset: int, depth: int = 32) -> set[int]:
        seen: set[int] = set()
        frontier = [offset]
        for _ in range(depth):
            frontier = [h for o in frontier for h in self.synset(o).hypernyms if h not in seen]
            if not frontier:
                break
            seen.update(frontier)
        return seen

    def close(self) -> None:
        self._data.close()


def _debian_version(package: str) -> str | None:
    """The installed Debian package's version, from dpkg's status file (None elsewhere)."""
    try:
        with open("/var/lib/dpkg/status", encoding="utf-8", errors="replace") as status:
            current = None
            for line in status:
                if line.startswith("Package: "):
                    current = line[9:].strip()
                elif current == package and line.startswith("Version: "):
                    return line[9:].strip()
    except OSError:
        pass
    return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@lru_cache(maxsize=1)
def wordnet() -> WordNet:
    return WordNet()
