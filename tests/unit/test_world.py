"""The controlled world's generator: reproducible bytes, the requested Zipf law, the requested
misalignment rate, and ground truth that the project's own matcher agrees with."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from conceptfreq.cli import main as cli
from conceptfreq.core.matching import PhraseMatcher
from conceptfreq.core.vocabulary import load
from conceptfreq.world.generate import World, WorldSpec, generate, read_manifest, zipf_probabilities
from conceptfreq.world.render import identities


def _digests(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    generate(WorldSpec(concepts=12, samples=1500, zipf=1.2, misalignment=0.2, seed=3, shard_size=500, eval_per_concept=4),
             out, progress=False)
    return out


def test_same_seed_gives_identical_files_and_another_seed_does_not(world, tmp_path):
    again, other = tmp_path / "again", tmp_path / "other"
    generate(WorldSpec(concepts=12, samples=1500, zipf=1.2, misalignment=0.2, seed=3, shard_size=500, eval_per_concept=4),
             again, progress=False)
    generate(WorldSpec(concepts=12, samples=1500, zipf=1.2, misalignment=0.2, seed=4, shard_size=500, eval_per_concept=4),
             other, progress=False)
    first = _digests(world)
    assert len([name for name in first if name.startswith("shards/")]) == 3
    assert first == _digests(again)
    assert first["shards/world-00000.tar"] != _digests(other)["shards/world-00000.tar"]


def test_slot_draws_follow_the_requested_zipf_law(tmp_path):
    # The manifest's content without the pixels: the same draws `generate` writes, far cheaper.
    spec = WorldSpec(concepts=20, samples=6000, zipf=1.5, misalignment=0.0, seed=1, shard_size=2000, eval_per_concept=1)
    world = World(spec)
    draws = np.concatenate([sample.slots for shard in range(spec.shards) for sample in world.shard_samples(shard)])
    observed = np.bincount(draws, minlength=spec.concepts)
    expected = zipf_probabilities(spec.concepts, spec.zipf) * len(draws)
    # Goodness of fit against the requested law...
    assert stats.chisquare(observed, expected).pvalue > 0.001
    # ...and against a clearly different exponent, which the test must be able to reject.
    assert stats.chisquare(observed, zipf_probabilities(spec.concepts, 1.2) * len(draws)).pvalue < 1e-6
    # The exponent itself, by maximum likelihood over the ranks, within a few hundredths.
    ranks = np.arange(1, spec.concepts + 1)
    grid = np.linspace(1.0, 2.0, 201)
    loglik = [(observed * np.log(zipf_probabilities(spec.concepts, s))).sum() for s in grid]
    assert abs(grid[int(np.argmax(loglik))] - spec.zipf) < 0.05
    assert ranks.size == observed.size


def test_misalignment_rate_matches_the_requested_fraction(world):
    samples = list(read_manifest(world))
    misaligned = [s for s in samples if s["misaligned"]]
    assert all(set(s["image"]) != set(s["caption_concepts"]) for s in misaligned)
    assert all(set(s["image"]) == set(s["caption_concepts"]) for s in samples if not s["misaligned"])
    # Two-sided binomial test of the observed rate against P = 0.2.
    assert stats.binomtest(len(misaligned), len(samples), 0.2).pvalue > 0.001
    assert {s["misaligned"] for s in misaligned} == {"omit", "add", "swap"}


def test_the_matcher_finds_exactly_the_concepts_each_caption_was_built_from(world):
    vocabulary = load(str(world / "vocab.txt"))
    samples = list(read_manifest(world))
    hits = PhraseMatcher(vocabulary).match([s["caption"] for s in samples]).per_caption()
    wrong = [(s["caption"], s["caption_concepts"], h) for s, h in zip(samples, hits) if sorted(h) != s["caption_concepts"]]
    assert not wrong[:5]
    # Plurals and aliases are really used, so this exercises the matcher beyond verbatim names.
    captions = " ".join(s["caption"] for s in samples)
    assert " two " in captions or " three " in captions
    aliases = [a for c in vocabulary for a in c.aliases]
    assert aliases and any(a in captions for a in aliases)


def test_images_show_one_to_three_concepts_and_the_eval_set_is_balanced(world):
    sizes = {len(s["image"]) for s in read_manifest(world)}
    assert sizes <= {1, 2, 3} and 1 in sizes and 3 in sizes
    folders = sorted(p for p in (world / "eval").iterdir() if p.is_dir())
    assert len(folders) == 12 and {len(list(f.glob("*.jpg"))) for f in folders} == {4}
    names = sorted(f.name.replace("_", " ") for f in folders)
    assert names == sorted(c["name"] for c in json.loads((world / "world.json").read_text())["concepts"])


def test_identities_are_two_attributes_apart():
    chosen = identities(40, np.random.default_rng(0))
    assert min(a.distance(b) for i, a in enumerate(chosen) for b in chosen[i + 1:]) >= 2


def test_synth_cli_refuses_a_non_empty_output_and_bad_parameters(tmp_path, capsys):
    (tmp_path / "x").write_text("keep me")
    assert cli(["synth", "--out", str(tmp_path), "--samples", "10"]) == 2
    assert "not an empty directory" in capsys.readouterr().err
    assert cli(["synth", "--out", str(tmp_path / "new"), "--misalignment", "1.5"]) == 2
    assert "--misalignment must be between 0 and 1" in capsys.readouterr().err


def test_world_report_says_when_a_directory_is_not_a_world(tmp_path, capsys):
    assert cli(["world-report", "--world", str(tmp_path), "--dataset", "world", "--model", "conceptfreq-world",
                "--pretrained", "world", "--eval-dataset", "world-eval", "--store", f"chdb://{tmp_path / 'store'}"]) == 2
    assert "is not a world (no world.json)" in capsys.readouterr().err
