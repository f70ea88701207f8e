"""The packaged `paper` vocabulary: the paper's exact concept names, selected with `--vocab paper`,
mapped to the default vocabulary where they are the same thing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conceptfreq.core import vocabulary as vocabularies
from conceptfreq.core.text import phrase_key
from tests.paths import REPO, SHARED_DATA

ARTIFACTS = SHARED_DATA / "paper_artifacts"
needs_artifacts = pytest.mark.skipif(not (ARTIFACTS / "search_counts").is_dir(),
                                     reason=f"the paper's artifacts are not at {ARTIFACTS}")


@pytest.fixture(scope="module")
def paper():
    return vocabularies.load("paper")


def test_selected_by_name_and_keeps_the_papers_names(paper):
    assert paper.name == "paper" and paper is vocabularies.load("paper")
    names = {c.name for c in paper}
    assert {"Cassins_Vireo", "2012 Tesla Model S Sedan", "outdoor basketball_court", "great white shark"} <= names
    assert paper.get("cassins vireo").name == "Cassins_Vireo"  # lookups ignore case and underscores


def test_a_file_named_like_a_packaged_vocabulary_wins(tmp_path, monkeypatch):
    (tmp_path / "paper").write_text("dog\ncat\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert [c.name for c in vocabularies.load("paper")] == ["dog", "cat"]


def test_unknown_packaged_name_is_a_clear_error():
    with pytest.raises(vocabularies.VocabularyError, match="choose one of default, paper"):
        vocabularies.packaged("laion")


def test_concepts_map_to_the_default_vocabulary(paper):
    default = vocabularies.default()
    same_as = paper.provenance["same_as_default"]
    assert paper.provenance["default_vocabulary_version"] == default.version
    by_id = {c.id: c for c in default}

    def mapped(name):
        return by_id[same_as[str(paper.get(name).id)]].name

    assert mapped("2012 Tesla Model S Sedan") == "Tesla Model S Sedan 2012"  # year first in the paper
    assert mapped("tench") == "tench"
    # Senses travel with the mapping, so phrase+pos decides both vocabularies' concepts alike.
    assert paper.get("Jersey").senses == default.get("Jersey").senses != ()
    birdsnap_only = [c for c in paper if c.sources == ("birdsnap",)]
    assert birdsnap_only and sum(str(c.id) in same_as for c in birdsnap_only) < len(birdsnap_only)


def test_names_by_dataset_join_the_papers_result_files(paper):
    names_by_dataset = paper.provenance["names_by_dataset"]
    ids = {c.id for c in paper}
    assert set(paper.provenance["datasets"]) == set(names_by_dataset)
    for dataset, names in names_by_dataset.items():
        for name, concept_id in names.items():
            assert concept_id in ids and phrase_key(paper.get(name).name) == phrase_key(name), (dataset, name)


@needs_artifacts
def test_every_name_of_every_result_file_resolves(paper):
    for path in sorted((ARTIFACTS / "zero_shot_evaluations").glob("*_class_results.json")):
        results = json.loads(path.read_text())
        for model in results.values():
            unknown = [name for name in model["classwise"] if paper.get(name) is None]
            # CIFAR-10's `plane` is `airplane` in the count files (a quirk of the artifacts)
            assert not [n for n in unknown if n != "plane"], (path.name, unknown[:5])


@needs_artifacts
def test_the_packaged_file_is_what_the_builder_writes():
    script = REPO / "services" / "scripts" / "build_paper_vocabulary.py"
    done = subprocess.run([sys.executable, str(script), "--artifacts", str(ARTIFACTS), "--check"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_default_vocabularys_senses_are_what_the_annotator_writes():
    pytest.importorskip("timm")
    pytest.importorskip("open_clip")
    from conceptfreq.core.lexicon import WordNet

    if not WordNet.available():
        pytest.skip("WordNet 3.0 (Debian wordnet-base) is not installed")
    script = REPO / "services" / "scripts" / "annotate_senses.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
