"""train-clip: the same shards and seed give the same weights, a different seed does not, and the
checkpoint loads by path the way the tagger and the evaluator load a model."""

from __future__ import annotations

import json

import pytest
import torch

from conceptfreq.cli import main as cli
from conceptfreq.world.generate import WorldSpec, generate, shard_paths
from conceptfreq.world.train import TrainConfig, train


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("world")
    spec = WorldSpec(concepts=6, samples=120, zipf=1.0, misalignment=0.1, seed=0, shard_size=60, eval_per_concept=1)
    generate(spec, out, progress=False)
    return shard_paths(out, spec)


def _weights(path) -> dict:
    return torch.load(path, map_location="cpu")


def test_the_same_seed_gives_the_same_weights(shards, tmp_path):
    config = TrainConfig(steps=3, batch_size=16, warmup=1, seed=1)
    first = train(shards, tmp_path / "a.pt", config, progress=False)
    train(shards, tmp_path / "b.pt", config, progress=False)
    train(shards, tmp_path / "c.pt", TrainConfig(steps=3, batch_size=16, warmup=1, seed=2), progress=False)
    a, b, c = _weights(tmp_path / "a.pt"), _weights(tmp_path / "b.pt"), _weights(tmp_path / "c.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    record = json.loads((tmp_path / "a.json").read_text())
    assert record["pairs"] == 120 and record["losses"][-1][0] == 3 and first.steps_per_second > 0


def test_the_checkpoint_loads_by_path_like_any_model(shards, tmp_path):
    from conceptfreq.adapters.inference.models import load_clip, resolve

    train(shards, tmp_path / "world.pt", TrainConfig(steps=2, batch_size=16, warmup=1), progress=False)
    weights = resolve("conceptfreq-world", str(tmp_path / "world.pt"))
    assert weights.source == "file" and weights.label == "world"
    loaded = load_clip(weights, "cpu")
    trained = _weights(tmp_path / "world.pt")
    assert all(torch.equal(loaded.module.state_dict()[k], trained[k]) for k in trained)


def test_train_clip_cli_gives_one_line_errors(shards, tmp_path, capsys):
    assert cli(["train-clip", "--shards", shards[0], "--config", "no-such-model", "--out", str(tmp_path / "x.pt")]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    assert cli(["train-clip", "--shards", str(tmp_path / "missing.tar"), "--steps", "1", "--out", str(tmp_path / "x.pt")]) == 2
    assert "cannot read training shard" in capsys.readouterr().err
