"""Concepts and vocabularies.

A vocabulary is an immutable, ordered set of concepts. Its version is a hash of its content, so
two runs that count with the same concepts (names, aliases, ids) share their counts, and any edit
gives a new version. Counts are always stored under a vocabulary version.

Files a user can give (`load`):
- text: one concept per line, `name|alias|alias`; blank lines and `#` comments are skipped;
- JSON: a conceptfreq vocabulary (`{"name", "concepts": [{"id", "name", "aliases", "sources"}]}`),
  a list of names or of concept objects, or the paper's `{name: count}` files;
- CSV: a header with `name` and optionally `id`, `aliases` and `sources` (lists split on `|`).
Names may be written in the paper's underscore style: `great_white_shark` is `great white shark`.

Duplicates, compared by `phrase_key` (case and punctuation do not matter, as in matching):
- where ids are implicit (text, lists of names, CSV/JSON without ids), an entry whose name is
  the name of an earlier concept is merged into it: concatenated lists from
  several downstream datasets repeat names (`crab` is in CIFAR-100 and Caltech-101), and one
  concept counted once is what the user means;
- where the file gives ids, two concepts with the same name are an error: each id would count
  the same thing, and merging would silently drop an id someone refers to.
- Two concepts may share an alias; the matcher credits both. `resolve` prefers the concept
  whose name it is, then the lowest id.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

from conceptfreq.core.text import phrase_key
from conceptfreq.errors import UserError

# Concept ids travel as uint32 in the protos (concept_id) and size per-concept arrays.
MAX_CONCEPT_ID = 2**32 - 1
_BOM = "\ufeff"


class VocabularyError(UserError, ValueError):
    """A vocabulary that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Concept:
    id: int
    name: str
    aliases: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # downstream datasets the concept comes from
    senses: tuple[str, ...] = ()  # the WordNet 3.0 senses it means (`wn30:n04371774`); see core.senses

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def to_json(self) -> dict:
        out = {"id": self.id, "name": self.name, "aliases": list(self.aliases), "sources": list(self.sources)}
        if self.senses:
            out["senses"] = list(self.senses)
        return out


@dataclass(frozen=True)
class Vocabulary:
    concepts: tuple[Concept, ...]
    name: str = "custom"
    provenance: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if not self.concepts:
            raise VocabularyError(f"vocabulary {self.name!r} is empty: give it at least one concept (one name per line)")
        seen_ids: set[int] = set()
        for concept in self.concepts:
            if concept.id in seen_ids:
                raise VocabularyError(f"vocabulary {self.name!r} has concept id {concept.id} twice: give every concept its own id")
            seen_ids.add(concept.id)
        owners: dict[str, Concept] = {}
        for concept in self.concepts:
            key = phrase_key(concept.name)
            if not key:
                raise VocabularyError(f"concept {concept.id} has no words in its name {concept.name!r}: give it a name")
            if key in owners:
                raise VocabularyError(
                    f"concepts {owners[key].id} and {concept.id} have the same name {concept.name!r} "
                    "(ignoring case and punctuation): merge them into one concept, with aliases"
                )
            owners[key] = concept

    @cached_property
    def version(self) -> str:
        """Content hash: ids, names, aliases and senses (the phrase+pos matcher counts by them).
        Provenance and sources do not change what is counted."""
        canonical = json.dumps(
            [[c.id, c.name, sorted(c.aliases), *([sorted(c.senses)] if c.senses else [])]
             for c in sorted(self.concepts, key=lambda c: c.id)],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.concepts)

    def __iter__(self):
        return iter(self.concepts)

    @cached_property
    def _surface_index(self) -> dict[str, Concept]:
        index: dict[str, Concept] = {}
        # Names first, so a name shared as another concept's alias resolves to its own concept.
        ordered = sorted(self.concepts, key=lambda c: c.id)
        for concept in ordered:
            index.setdefault(phrase_key(concept.name), concept)
        for concept in ordered:
            for alias in concept.aliases:
                index.setdefault(phrase_key(alias), concept)
        return index

    def get(self, name: str) -> Concept | None:
        """The concept a user-typed name (any alias, any case or punctuation) stands for, or None."""
        concept = self._surface_index.get(phrase_key(name))
        if concept is None:  # "great white sharks", "geese": a plural of a known name
            from conceptfreq.core.inflection import singular_keys

            concept = next((self._surface_index[k] for k in sorted(singular_keys(name)) if k in self._surface_index), None)
        return concept

    def resolve(self, names: Iterable[str]) -> tuple[list[Concept], list[str]]:
        """Map user-typed names to concepts; return (found, unknown)."""
        found, unknown = [], []
        for name in names:
            concept = self.get(name)
            (found.append(concept) if concept else unknown.append(name))
        return found, unknown

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "provenance": self.provenance,
            "concepts": [c.to_json() for c in self.concepts],
        }


def dumps(vocabulary: Vocabulary) -> str:
    """Canonical JSON text: header fields indented, one concept per line, so edits diff cleanly."""
    head = {k: v for k, v in vocabulary.to_json().items() if k != "concepts"}
    lines = ["{"]
    for key, value in head.items():
        text = json.dumps(value, ensure_ascii=False, indent=2).replace("\n", "\n  ")
        lines.append(f"  {json.dumps(key)}: {text},")
    lines.append('  "concepts": [')
    rows = [json.dumps(c.to_json(), ensure_ascii=False) for c in vocabulary.concepts]
    lines.extend(f"    {row}," for row in rows[:-1])
    lines.append(f"    {rows[-1]}")
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _display_name(raw: str) -> str:
    """The paper writes `great_white_shark`; people write `great white shark`. Store the latter."""
    return " ".join(raw.replace("_", " ").split())


@dataclass
class _Entry:
    """One concept as read from a file, before ids and duplicates are settled."""

    names: list[str]
    id: int | None = None
    sources: list[str] = field(default_factory=list)
    senses: list[str] = field(default_factory=list)
    where: str = ""  # `line 3`, `entry 5`: said in error messages


def _build(entries: Sequence[_Entry], name: str, provenance: dict | None = None) -> Vocabulary:
    """Settle ids and duplicates (see the module docstring) and make the vocabulary."""
    # A vocabulary that says its names are as written (the `paper` one: `Cassins_Vireo`, as the
    # paper's result files spell it) keeps them; matching and lookup ignore underscores either way.
    as_written = (provenance or {}).get("names") == "as_written"
    display = (lambda raw: " ".join(raw.split())) if as_written else _display_name
    entries = [e for e in entries if any(display(n) for n in e.names)]
    with_ids = [e for e in entries if e.id is not None]
    if with_ids and len(with_ids) != len(entries):
        missing = next(e for e in entries if e.id is None)
        raise VocabularyError(f"{missing.where} has no id while others do: give every concept an id, or none")
    concepts: list[dict] = []
    by_name: dict[str, int] = {}  # phrase key of a name -> index in concepts
    for entry in entries:
        names = [display(n) for n in entry.names]
        names = [n for n in names if n]
        key = phrase_key(names[0])
        if not key:
            raise VocabularyError(f"{entry.where}: the name {names[0]!r} has no letters or digits")
        if key in by_name and not with_ids:
            index = by_name[key]
        else:
            # With ids, a repeated name reaches Vocabulary.__post_init__, which says which ids clash.
            concepts.append({"id": entry.id if with_ids else len(concepts), "name": names[0], "aliases": {}, "sources": [], "senses": []})
            index = len(concepts) - 1
            by_name.setdefault(key, index)
        target = concepts[index]
        for alias in names[1:]:
            alias_key = phrase_key(alias)
            if alias_key and alias_key != phrase_key(target["name"]):
                target["aliases"].setdefault(alias_key, alias)
        for source in entry.sources:
            if source not in target["sources"]:
                target["sources"].append(source)
        for sense in entry.senses:
            if sense not in target["senses"]:
                target["senses"].append(sense)
    return Vocabulary(
        tuple(
            Concept(id=c["id"], name=c["name"], aliases=tuple(c["aliases"].values()), sources=tuple(c["sources"]),
                    senses=tuple(c["senses"]))
            for c in concepts
        ),
        name=name,
        provenance=provenance or {},
    )


def from_names(entries: Sequence[Sequence[str]], name: str = "custom", sources: Sequence[Sequence[str]] | None = None) -> Vocabulary:
    """Build a vocabulary from `[canonical, alias, ...]` entries; ids follow input order, repeats merge."""
    return _build(
        [
            _Entry(names=list(names), sources=list(sources[i]) if sources else [], where=f"entry {i}")
            for i, names in enumerate(entries)
        ],
        name=name,
    )


def parse_text(text: str, name: str = "custom") -> Vocabulary:
    """One concept per line, `name|alias|alias`; blank lines and `#` comments are ignored."""
    entries = []
    for number, line in enumerate(text.removeprefix(_BOM).splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append(_Entry(names=line.split("|"), where=f"line {number}"))
    return _build(entries, name=name)


def _parse_id(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise VocabularyError(f"{where}: id {value!r} is not a whole number")
    try:
        number = int(value)
    except ValueError:
        raise VocabularyError(f"{where}: id {value!r} is not a whole number") from None
    if not 0 <= number <= MAX_CONCEPT_ID:
        raise VocabularyError(f"{where}: id {number} is out of range: use 0 to {MAX_CONCEPT_ID}")
    return number


def _string_list(value, what: str, where: str) -> list[str]:
    """A list of strings; a string is read as a `|`-separated list, as in text and CSV files."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part for part in value.split("|") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise VocabularyError(f"{where}: {what} must be a list of strings, got {value!r}")


def parse_json(text: str, name: str = "custom") -> Vocabulary:
    """A conceptfreq vocabulary file, a list of names, a list of objects, or `{name: count}` (the paper's counts).

    A `version` field, as `export` writes it, is informational: the version is always recomputed.
    """
    try:
        data = json.loads(text.removeprefix(_BOM))
    except json.JSONDecodeError as error:
        raise VocabularyError(
            f"not valid JSON ({error.msg} at line {error.lineno} column {error.colno}): fix the file, "
            "or use a .txt file with one name per line"
        ) from None
    provenance: dict = {}
    if isinstance(data, dict) and "concepts" in data:
        name = str(data.get("name") or name)
        provenance = data.get("provenance") or {}
        if not isinstance(provenance, dict):
            raise VocabularyError("'provenance' must be a JSON object")
        data = data["concepts"]
    elif isinstance(data, dict):  # {concept: anything}, e.g. a paper search-count file
        data = list(data)
    if not isinstance(data, list):
        raise VocabularyError("a JSON vocabulary must be a list of names or of {id, name, aliases} objects")
    entries = []
    for position, item in enumerate(data):
        where = f"concept entry {position}"
        if isinstance(item, str):
            entries.append(_Entry(names=[item], where=where))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            raise VocabularyError(f"{where} needs a non-empty 'name' string, got {item!r}")
        entries.append(
            _Entry(
                names=[item["name"], *_string_list(item.get("aliases"), "aliases", where)],
                id=_parse_id(item["id"], where) if item.get("id") is not None else None,
                sources=_string_list(item.get("sources"), "sources", where),
                senses=_string_list(item.get("senses"), "senses", where),
                where=where,
            )
        )
    return _build(entries, name=name, provenance=provenance)


def parse_csv(text: str, name: str = "custom") -> Vocabulary:
    """CSV with a header: `name` (required), `id`, and `aliases` and `sources` separated by `|`."""
    # strict: a stray quote is an error to report, not a row that swallows the rest of the file
    reader = csv.DictReader(io.StringIO(text.removeprefix(_BOM)), strict=True)
    try:
        header = [(f or "").strip().lower() for f in reader.fieldnames or []]
        if "name" not in header:
            raise VocabularyError(
                "a CSV vocabulary needs a header row with a 'name' column (and optionally 'id', 'aliases', 'sources')"
            )
        reader.fieldnames = header
        entries = []
        for row in reader:
            where = f"CSV line {reader.line_num}"
            if not (row.get("name") or "").strip():
                if any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    raise VocabularyError(f"{where} has an empty name: fill it in or delete the row")
                continue
            raw_id = (row.get("id") or "").strip()
            entries.append(
                _Entry(
                    names=[row["name"], *_string_list(row.get("aliases"), "aliases", where)],
                    id=_parse_id(raw_id, where) if raw_id else None,
                    sources=[s.strip() for s in _string_list(row.get("sources"), "sources", where)],
                    where=where,
                )
            )
    except csv.Error as error:
        raise VocabularyError(f"not a readable CSV file ({error})") from None
    return _build(entries, name=name)


_PARSERS = {".txt": parse_text, ".json": parse_json, ".csv": parse_csv}


# Vocabularies shipped with the package, selected by name (`--vocab paper`) where no file has that name.
PACKAGED = ("default", "paper")


def load(path: str | Path | None = None) -> Vocabulary:
    """Load a vocabulary file by extension (other extensions are read as text); None: the packaged
    default; a packaged vocabulary's name (`default`, `paper`) where no such file exists."""
    if path is None:
        return default()
    if str(path) in PACKAGED and not Path(path).exists():
        return packaged(str(path))
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "not found"
        raise VocabularyError(f"vocabulary file {str(path)!r} {what}: pass --vocab PATH to an existing .txt, .json or .csv file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise VocabularyError(f"vocabulary file {str(path)!r} is not UTF-8 text: save it as UTF-8") from None
    parser = _PARSERS.get(path.suffix.lower(), parse_text)
    try:
        return parser(text, name=path.stem)
    except VocabularyError as error:
        raise VocabularyError(f"vocabulary file {str(path)!r}: {error}") from None


@lru_cache(maxsize=1)
def default() -> Vocabulary:
    """Class names of the standard zero-shot downstream datasets (see services/scripts/build_default_vocabulary.py)."""
    return packaged("default")


@lru_cache(maxsize=len(PACKAGED))
def packaged(name: str) -> Vocabulary:
    """A vocabulary shipped with the package: `default`, or `paper` (every concept of the paper's
    count files, with its exact names; see services/scripts/build_paper_vocabulary.py)."""
    if name not in PACKAGED:
        raise VocabularyError(f"no packaged vocabulary {name!r}: choose one of {', '.join(PACKAGED)}, or give a file")
    text = resources.files("conceptfreq.data").joinpath(f"{name}_vocabulary.json").read_text(encoding="utf-8")
    return parse_json(text, name=name)
