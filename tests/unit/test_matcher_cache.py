"""The compiled-matcher cache (adapters/matcher_cache.py): a matcher read from the cache finds
exactly what a freshly built one finds, and the cache is rebuilt, never trusted, when the
vocabulary, MATCHER_VERSION or the file itself changed."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from conceptfreq.adapters import matcher_cache
from conceptfreq.adapters.matcher_cache import cache_root, cached_matcher, matcher_dir
from conceptfreq.core import matching
from conceptfreq.core.lexicon import WordNet
from conceptfreq.core.matching import make_matcher
from conceptfreq.core.vocabulary import default, from_names, load
from tests.labelled.senses import rows as labelled_rows

# Captions that exercise every rule of the matcher (plurals, irregular plurals, possessives,
# hyphen variants, nested concepts, verbs and adjectives that phrase+pos drops, non-ASCII text),
# and the hand-labelled CC-3M captions.
TRICKY = [
    "Two dogs and a cat's toy", "geese near the mice, children with oxen", "knives, leaves and cacti",
    "a T-Shirt and a tshirt and t shirts", "a great white shark, sports cars", "the crowd watches the orange sky",
    "a can of soda, you can see it", "Café au lait in a CAFÉ", "", "   ", "a kite flying; a bird of prey called a kite",
    "jersey\x01with a separator byte", "ＦＵＬＬＷＩＤＴＨ dog",
]
CAPTIONS = TRICKY + [row.caption for row in labelled_rows()]
METHODS = ["phrase", "phrase+pos", "bag"]
_VOCABULARIES = {}


def vocabulary(name: str):
    if name not in _VOCABULARIES:
        _VOCABULARIES[name] = default() if name == "default" else load(name)
    return _VOCABULARIES[name]


def needs_wordnet(method: str) -> None:
    if method == "phrase+pos" and not WordNet.available():
        pytest.skip("WordNet 3.0 (Debian wordnet-base) is not installed")


def same_hits(a, b) -> bool:
    return (a.n_captions == b.n_captions and np.array_equal(a.caption, b.caption) and np.array_equal(a.concept, b.concept)
            and a.ambiguous == b.ambiguous)


@pytest.mark.parametrize("vocab", ["default", "paper"])
@pytest.mark.parametrize("method", METHODS)
def test_a_cached_matcher_finds_what_a_fresh_one_finds(vocab, method, tmp_path, monkeypatch):
    needs_wordnet(method)
    v = vocabulary(vocab)
    fresh = make_matcher(v, method)
    cached_matcher(v, method, directory=tmp_path)  # builds and stores
    if method in matching.COMPILED_METHODS:
        assert len(list(tmp_path.glob("*.npz"))) == 1

        def no_build(*_args, **_kwargs):
            raise AssertionError("the matcher was built again instead of read from the cache")

        monkeypatch.setattr(matcher_cache, "compile_matcher", no_build)
    from_cache = cached_matcher(v, method, directory=tmp_path)
    assert type(from_cache) is type(fresh)
    expected = fresh.match(CAPTIONS)
    assert expected.concept.size > 0
    assert same_hits(from_cache.match(CAPTIONS), expected)


def test_another_vocabulary_gets_its_own_matcher(tmp_path):
    small = from_names([["dog"], ["cat"]])
    larger = from_names([["dog"], ["cat", "kitty"]])
    assert [len(c) for c in cached_matcher(small, directory=tmp_path).match(["a kitty"]).per_caption()] == [0]
    assert cached_matcher(larger, directory=tmp_path).match(["a kitty"]).per_caption() == [[larger.get("cat").id]]
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_a_new_matcher_version_rebuilds(tmp_path, monkeypatch):
    v = from_names([["goose"]])
    cached_matcher(v, directory=tmp_path)
    built = []
    real_compile = matcher_cache.compile_matcher
    monkeypatch.setattr(matcher_cache, "compile_matcher", lambda *a, **k: built.append(a) or real_compile(*a, **k))
    cached_matcher(v, directory=tmp_path)
    assert built == []
    for module in (matching, matcher_cache):
        monkeypatch.setattr(module, "MATCHER_VERSION", matching.MATCHER_VERSION + 1)
    matcher = cached_matcher(v, directory=tmp_path)
    assert len(built) == 1
    assert matcher.match(["two geese"]).per_caption() == [[v.get("goose").id]]
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_a_file_compiled_from_other_data_is_rebuilt_with_one_warning(tmp_path, caplog):
    dogs, cats = from_names([["dog"]]), from_names([["cat"]])
    cached_matcher(dogs, directory=tmp_path)
    (dog_file,) = tmp_path.glob("*.npz")
    cat_file = tmp_path / matcher_cache.cache_file_name(cats.version, "phrase", matcher_cache.data_fingerprint("phrase"))
    cat_file.write_bytes(dog_file.read_bytes())  # the right name, the wrong contents
    with caplog.at_level(logging.WARNING, logger=matcher_cache.__name__):
        matcher = cached_matcher(cats, directory=tmp_path)
    assert matcher.match(["a cat", "a dog"]).per_caption() == [[cats.get("cat").id], []]
    assert len(caplog.records) == 1 and "rebuilding" in caplog.records[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=matcher_cache.__name__):
        cached_matcher(cats, directory=tmp_path)  # the rebuilt file replaced the foreign one
    assert caplog.records == []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "pickle", "folder"])
def test_an_unreadable_cache_file_is_rebuilt_with_one_warning(damage, tmp_path, caplog):
    v = from_names([["mouse"], ["child"]])
    cached_matcher(v, directory=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    good = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(os.urandom(len(good)))
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "pickle":  # an object array: must never be unpickled
        np.savez(path, keys=np.array([object()], dtype=object))
    else:
        path.unlink()
        path.mkdir()
    with caplog.at_level(logging.WARNING, logger=matcher_cache.__name__):
        matcher = cached_matcher(v, directory=tmp_path)
    assert matcher.match(["mice and children"]).per_caption() == [[v.get("mouse").id, v.get("child").id]]
    warnings = [r.getMessage() for r in caplog.records]
    assert str(path) in warnings[0] and all("\n" not in w for w in warnings)
    if damage == "folder":  # a folder in the file's place cannot be replaced by a file either
        assert len(warnings) == 2 and "without caching" in warnings[1]
    else:
        assert len(warnings) == 1
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=matcher_cache.__name__):
            assert cached_matcher(v, directory=tmp_path).n_keys == matcher.n_keys
        assert caplog.records == []  # the rebuilt file replaced the damaged one


def test_an_unwritable_cache_folder_means_no_caching_and_one_warning(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    folder = blocker / "matchers"  # cannot be created: its parent is a file (root ignores permission bits)
    v = from_names([["knife"]])
    with caplog.at_level(logging.WARNING, logger=matcher_cache.__name__):
        for _ in range(3):
            matcher = cached_matcher(v, directory=folder)
            assert matcher.match(["two knives"]).per_caption() == [[v.get("knife").id]]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "without caching" in warnings[0] and "\n" not in warnings[0]


def test_the_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CONCEPTFREQ_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert matcher_dir() == tmp_path / "explicit" / "matchers"
    monkeypatch.delenv("CONCEPTFREQ_CACHE_DIR")
    assert matcher_dir() == tmp_path / "xdg" / "conceptfreq" / "matchers"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "conceptfreq"
    monkeypatch.setenv("CONCEPTFREQ_CACHE_DIR", str(tmp_path / "explicit"))
    cached_matcher(from_names([["ox"]]))
    assert len(list((tmp_path / "explicit" / "matchers").glob("*.npz"))) == 1


def test_no_cache_builds_without_touching_the_folder(tmp_path):
    cached_matcher(from_names([["ox"]]), directory=tmp_path, use_cache=False)
    assert list(tmp_path.iterdir()) == []


def test_concurrent_processes_share_one_complete_file(tmp_path):
    """Four processes building the same matcher into an empty cache at once: each gets the right
    matcher, and one whole file is left, with no temporary file beside it."""
    code = ("import json, sys; from conceptfreq.adapters.matcher_cache import cached_matcher; "
            "from conceptfreq.core.vocabulary import from_names; "
            "v = from_names([['goose'], ['t-shirt'], ['sports car'], ['car']]); "
            "print(json.dumps(cached_matcher(v, directory=sys.argv[1]).match(['geese, tshirts and a sports car']).per_caption()))")
    children = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [json.loads(child.communicate(timeout=120)[0]) for child in children]
    assert all(child.returncode == 0 for child in children)
    v = from_names([["goose"], ["t-shirt"], ["sports car"], ["car"]])
    expected = [sorted(v.get(n).id for n in ("goose", "t-shirt", "sports car", "car"))]
    assert outputs == [expected] * 4
    assert [p.suffix for p in tmp_path.iterdir()] == [".npz"]
