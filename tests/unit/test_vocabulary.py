"""Vocabularies: the file formats users give, their errors, the version hash, and the packaged default."""

from __future__ import annotations

import argparse
import json
from collections import Counter

import pytest

from conceptfreq.commands import vocab as vocab_command
from conceptfreq.core.text import phrase_key
from conceptfreq.core.vocabulary import (
    Concept,
    Vocabulary,
    VocabularyError,
    default,
    dumps,
    from_names,
    load,
    parse_csv,
    parse_json,
    parse_text,
)
from conceptfreq.errors import UserError


def summary(vocabulary: Vocabulary) -> list[tuple[int, str, tuple[str, ...]]]:
    return [(c.id, c.name, c.aliases) for c in vocabulary]


# --- formats -----------------------------------------------------------------------------------

SHARK_AND_CAT = [(0, "great white shark", ("white shark",)), (1, "tabby cat", ())]
NO_ALIASES = [(0, "great white shark", ()), (1, "tabby cat", ())]


@pytest.mark.parametrize("parse, text, expected", [
    (parse_text, "great white shark|white shark\ntabby cat\n", SHARK_AND_CAT),
    (parse_text, "# comment\n\n  great_white_shark | white_shark  \n\ntabby_cat\n", SHARK_AND_CAT),  # paper style
    (parse_text, "\ufeffgreat white shark|white shark\r\ntabby cat\r\n", SHARK_AND_CAT),  # BOM, CRLF
    (parse_json, '["great white shark", "tabby cat"]', NO_ALIASES),
    (parse_json, '[{"name": "great white shark", "aliases": ["white shark"]}, {"name": "tabby cat"}]', SHARK_AND_CAT),
    (parse_json, '[{"id": 0, "name": "great_white_shark", "aliases": "white shark"}, {"id": 1, "name": "tabby cat"}]',
     SHARK_AND_CAT),
    (parse_json, '{"name": "x", "concepts": [{"id": 0, "name": "great white shark", "aliases": ["white shark"]},'
                 ' {"id": 1, "name": "tabby cat"}]}', SHARK_AND_CAT),
    (parse_json, '\ufeff{"great_white_shark": 120, "tabby_cat": 3}', NO_ALIASES),  # the paper's {concept: count}
    (parse_csv, "id,name,aliases\n0,great white shark,white shark\n1,tabby cat,\n", SHARK_AND_CAT),
    (parse_csv, "\ufeffName , Aliases\ngreat_white_shark,white shark\ntabby cat,\n\n", SHARK_AND_CAT),  # header case
])
def test_formats_give_the_same_concepts(parse, text, expected):
    assert summary(parse(text)) == expected


def test_explicit_ids_and_sources_are_kept():
    vocabulary = parse_csv("id,name,aliases,sources\n7,tench,,imagenet\n3,goldfish,gold fish|carassius,imagenet|cifar100\n")
    assert [(c.id, c.name, c.aliases, c.sources) for c in vocabulary] == [
        (7, "tench", (), ("imagenet",)),
        (3, "goldfish", ("gold fish", "carassius"), ("imagenet", "cifar100")),
    ]


@pytest.mark.parametrize("text, expected", [
    # A repeated name (any case or punctuation) is one concept; its aliases and sources merge.
    ("crab\nCrab|king crab\nlobster\n", [(0, "crab", ("king crab",)), (1, "lobster", ())]),
    ("T-shirt\nt shirt|tee\n", [(0, "T-shirt", ("tee",))]),
    # An alias equal to the name, or repeated, is dropped.
    ("dog|Dog|hound|hound\n", [(0, "dog", ("hound",))]),
    # Two concepts may share an alias: the matcher credits both.
    ("apple|fruit\nbanana|fruit\n", [(0, "apple", ("fruit",)), (1, "banana", ("fruit",))]),
])
def test_duplicates_without_ids_merge(text, expected):
    assert summary(parse_text(text)) == expected


def test_from_names_merges_sources():
    vocabulary = from_names([["crab"], ["lobster"], ["Crab"]], sources=[["cifar100"], ["imagenet"], ["caltech101"]])
    assert [(c.name, c.sources) for c in vocabulary] == [("crab", ("cifar100", "caltech101")), ("lobster", ("imagenet",))]


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("parse, text, message", [
    (parse_text, "", "empty"),
    (parse_text, "# only a comment\n\n", "empty"),
    (parse_text, "|||\n", "empty"),
    (parse_text, "...\n", "no letters or digits"),
    (parse_json, "", "not valid JSON"),
    (parse_json, '{"concepts": [', "not valid JSON (Expecting value at line 1"),
    (parse_json, "[]", "empty"),
    (parse_json, "42", "must be a list"),
    (parse_json, '{"concepts": 3}', "must be a list"),
    (parse_json, '[{"aliases": ["x"]}]', "entry 0 needs a non-empty 'name'"),
    (parse_json, '[{"name": ""}]', "entry 0 needs a non-empty 'name'"),
    (parse_json, '[{"name": "a", "aliases": [1]}]', "aliases must be a list of strings"),
    (parse_json, '[{"id": "x", "name": "a"}]', "not a whole number"),
    (parse_json, '[{"id": true, "name": "a"}]', "not a whole number"),
    (parse_json, '[{"id": -1, "name": "a"}]', "out of range"),
    (parse_json, '[{"id": 0, "name": "a"}, {"id": 0, "name": "b"}]', "concept id 0 twice"),
    (parse_json, '[{"id": 0, "name": "crab"}, {"id": 1, "name": "Crab"}]', "concepts 0 and 1 have the same name"),
    (parse_json, '[{"id": 0, "name": "a"}, {"name": "b"}]', "has no id while others do"),
    (parse_json, '{"concepts": [{"name": "a"}], "provenance": [1]}', "'provenance' must be a JSON object"),
    (parse_csv, "", "needs a header row with a 'name' column"),
    (parse_csv, "label,id\ncat,0\n", "needs a header row with a 'name' column"),
    (parse_csv, "name\n", "empty"),
    (parse_csv, "id,name\nx,cat\n", "CSV line 2: id 'x' is not a whole number"),
    (parse_csv, "id,name\n0,cat\n1,\n", "CSV line 3 has an empty name"),
    (parse_csv, 'name\n"cat\n', "not a readable CSV file"),
])
def test_bad_input_raises_a_vocabulary_error(parse, text, message):
    with pytest.raises(VocabularyError) as raised:
        parse(text)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)  # the CLI prints it as one line


@pytest.mark.parametrize("setup, message", [
    (lambda tmp: tmp / "missing.txt", "not found: pass --vocab PATH"),
    (lambda tmp: tmp, "is a directory"),
    (lambda tmp: _write(tmp / "latin1.txt", "caf\xe9\n".encode("latin-1")), "is not UTF-8 text"),
    (lambda tmp: _write(tmp / "bad.json", b"{"), "bad.json': not valid JSON"),
    (lambda tmp: _write(tmp / "empty.csv", b""), "empty.csv': a CSV vocabulary needs a header"),
])
def test_load_errors_name_the_file(tmp_path, setup, message):
    with pytest.raises(VocabularyError) as raised:
        load(setup(tmp_path))
    assert message in str(raised.value)
    assert isinstance(raised.value, UserError)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("filename, content", [
    ("v.txt", "great_white_shark|white shark\ntabby cat\n"),
    ("v.TXT", "great_white_shark|white shark\ntabby cat\n"),
    ("v.list", "great_white_shark|white shark\ntabby cat\n"),  # unknown extensions read as text
    ("v.csv", "name,aliases\ngreat white shark,white shark\ntabby cat,\n"),
    ("v.json", '[{"name": "great white shark", "aliases": ["white shark"]}, "tabby cat"]'),
])
def test_load_picks_the_parser_by_extension(tmp_path, filename, content):
    path = tmp_path / filename
    path.write_text(content, encoding="utf-8")
    vocabulary = load(path)
    assert summary(vocabulary) == SHARK_AND_CAT
    assert vocabulary.name == "v"


# --- version -----------------------------------------------------------------------------------

BASE = parse_text("great white shark|white shark\ntabby cat\n")


@pytest.mark.parametrize("other, same", [
    (parse_text("great white shark|white shark\ntabby cat\n", name="other name"), True),
    (parse_csv("id,name,aliases\n1,tabby cat,\n0,great white shark,white shark\n"), True),  # row order
    (parse_text("great white shark|white shark|white shark\ntabby cat\n"), True),  # repeated alias
    (Vocabulary(BASE.concepts, provenance={"built_by": "someone"}), True),
    (Vocabulary(tuple(Concept(c.id, c.name, c.aliases, ("imagenet",)) for c in BASE)), True),  # sources
    (parse_text("great white shark|white shark|carcharodon\ntabby cat\n"), False),  # alias added
    (parse_text("great white shark\ntabby cat\n"), False),  # alias removed
    (parse_text("great white shark|white shark\ntabby cat\nlion\n"), False),  # concept added
    (parse_text("great white shark|white shark\ntabby kitten\n"), False),  # name changed
    (parse_csv("id,name,aliases\n0,great white shark,white shark\n5,tabby cat,\n"), False),  # id changed
])
def test_version_follows_what_is_counted(other, same):
    assert (other.version == BASE.version) is same


def test_version_is_stable_across_runs_and_round_trips():
    assert BASE.version == "5d174bc086a14d5b"  # a change here orphans every stored count
    again = parse_json(dumps(BASE))
    assert again.version == BASE.version and summary(again) == summary(BASE)
    assert parse_json(json.dumps(BASE.to_json())).version == BASE.version  # what the store keeps


# --- resolve -----------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, expected", [
    ("great white shark", "great white shark"),
    ("Great White Shark", "great white shark"),
    ("great_white_shark", "great white shark"),
    ("WHITE-SHARK", "great white shark"),  # alias, any case and punctuation
    ("  tabby   cat ", "tabby cat"),
    ("tiger shark", None),
])
def test_resolve_finds_names_and_aliases(typed, expected):
    found, unknown = BASE.resolve([typed])
    assert [c.name for c in found] == ([expected] if expected else [])
    assert unknown == ([] if expected else [typed])


def test_resolve_prefers_the_concept_a_shared_surface_names():
    vocabulary = parse_text("highway or road|highway|road\nroad\n")
    assert vocabulary.get("road").name == "road"
    assert vocabulary.get("highway").name == "highway or road"


# --- the packaged default ----------------------------------------------------------------------

PAPER_DATASETS = {
    "imagenet", "cifar10", "cifar100", "caltech101", "caltech256", "sun397", "birdsnap", "country211", "cub", "dtd",
    "eurosat", "fgvcaircraft", "flowers102", "food101", "oxfordpets", "stanfordcars", "ucf101",
}


def test_default_vocabulary_is_large_and_sourced():
    vocabulary = default()
    assert vocabulary.name == "default"
    assert len(vocabulary) > 1000
    assert all(c.sources for c in vocabulary)
    assert [c.id for c in vocabulary] == list(range(len(vocabulary)))
    assert load(None) is vocabulary


def test_default_vocabulary_covers_the_paper_datasets_it_documents():
    provenance = default().provenance
    covered, missing = set(provenance["datasets"]), set(provenance["not_covered"])
    assert covered | missing == PAPER_DATASETS and not covered & missing
    used = Counter(s for c in default() for s in c.sources)
    assert set(used) == covered
    for entry in provenance["lists"]:
        assert {"dataset", "package", "version", "path", "sha256"} <= set(entry)
        assert len(entry["sha256"]) == 64


def test_default_vocabulary_has_one_concept_per_name():
    vocabulary = default()
    names = Counter(phrase_key(c.name) for c in vocabulary)
    assert [k for k, n in names.items() if n > 1] == []
    for concept in vocabulary:
        own = [phrase_key(n) for n in concept.names]
        assert len(own) == len(set(own)), concept
    # Surfaces shared between concepts are the EuroSAT synonym splits only (`highway or road`).
    owners = Counter(k for c in vocabulary for k in {phrase_key(n) for n in c.names})
    shared = {k for k, n in owners.items() if n > 1}
    assert all("eurosat" in c.sources for c in vocabulary if {phrase_key(a) for a in c.aliases} & shared)


@pytest.mark.parametrize("typed, name, source", [
    ("Great White Shark", "great white shark", "imagenet"),
    ("apple_pie", "apple pie", "food101"),  # food-101 machine label
    ("abbey", "abbey", "sun397"),  # /a/abbey
    ("indoor church", "church indoor", "sun397"),  # /c/church/indoor
    ("apply eye makeup", "apply eye makeup", "ucf101"),  # ApplyEyeMakeup
    ("aquarium fish", "aquarium fish", "cifar100"),  # aquarium_fish
    ("kite", "kite (bird of prey)", "imagenet"),  # bare alias of a CLIP parenthetical
    ("shrubland", "brushland or shrubland", "eurosat"),
    ("Black-footed Albatross", "Black footed Albatross", "cub"),
])
def test_default_vocabulary_cleans_machine_labels(typed, name, source):
    concept = default().get(typed)
    assert concept is not None and concept.name == name and source in concept.sources


def test_default_vocabulary_merges_names_shared_by_datasets():
    sunflower = default().get("sunflower")
    assert {"cifar100", "caltech101", "flowers102"} <= set(sunflower.sources)


def test_packaged_file_is_canonical():
    from importlib import resources

    text = resources.files("conceptfreq.data").joinpath("default_vocabulary.json").read_text(encoding="utf-8")
    assert text == dumps(default())  # rebuild with services/scripts/build_default_vocabulary.py


# --- the `vocab` command -----------------------------------------------------------------------

def run_vocab(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    vocab_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_vocab_show_summarizes(capsys):
    assert run_vocab(["vocab", "show", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert f"version     {default().version}" in out
    assert "imagenet" in out and "tench" in out and "not covered" in out


def test_vocab_show_json(tmp_path, capsys):
    path = tmp_path / "mine.txt"
    path.write_text("great_white_shark|white shark\ntabby cat\n", encoding="utf-8")
    assert run_vocab(["vocab", "show", "--vocab", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["name"] == "mine" and shown["concepts"] == 2 and shown["version"] == BASE.version
    assert shown["first"][0] == {"id": 0, "name": "great white shark", "aliases": ["white shark"], "sources": []}


def test_vocab_export_round_trips(tmp_path, capsys):
    path = tmp_path / "mine.csv"
    path.write_text("name,aliases\ngreat white shark,white shark\ntabby cat,\n", encoding="utf-8")
    assert run_vocab(["vocab", "export", "--vocab", str(path)]) == 0
    exported = capsys.readouterr().out
    assert parse_json(exported).version == BASE.version
    assert json.loads(exported)["version"] == BASE.version


def test_vocab_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        run_vocab(["vocab", "show", "--vocab", str(tmp_path / "nope.txt")])
