"""Reading the paper's artifact layout, on a small synthetic copy (always) and on the real artifacts
(when ../shared/data is there): the published binned correlations, the quirks, the errors.

`make_artifacts` is also the fixture data of the other reporter tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conceptfreq.core import trends
from conceptfreq.errors import NotFoundError, UserError
from conceptfreq.reporter.paper import PaperArtifacts, method_kind, parse_model_key, resolve_method

# The paper's Pearson for integrated counts and ensemble prompts (shared/data/README.md).
PUBLISHED = {("RN50", "cc3m"): 0.96, ("ViT-B-16", "cc3m"): 0.97, ("RN50", "cc12m"): 0.94, ("ViT-B-16", "cc12m"): 0.92}

DOWNSTREAM = {"cifar10": 10, "imagenet": 60, "imagenet-sketch": 60, "dtd": 30, "food101": 40}
METHODS = ("integrated_tlemmatized_i0.7", "lemmatized", "rampp0.7")
MODELS = {("RN50", "cc3m"): 8.0, ("ViT-B-16", "cc3m"): 9.0, ("RN50", "cc12m"): 7.0, ("ViT-B-16", "cc12m"): 10.0}


def make_artifacts(root: Path, seed: int = 0) -> Path:
    """A miniature of the paper's layout with a known trend (accuracy rises ~slope points per decade),
    the CIFAR-10 plane/airplane quirk, a model with no counts, and a Let It Wag! list."""
    rng = np.random.default_rng(seed)
    (root / "search_counts").mkdir(parents=True)
    (root / "zero_shot_evaluations").mkdir()
    (root / "let_it_wag").mkdir()
    classes = {ds: [f"{ds}_class_{i:02d}" for i in range(n)] for ds, n in DOWNSTREAM.items()}
    classes["cifar10"][0] = "airplane"
    classes["imagenet-sketch"] = classes["imagenet"]
    log_counts = {}
    for pretrain, scale in (("cc3m", 0.0), ("cc12m", 0.6)):
        for ds, names in classes.items():
            base = log_counts.setdefault((pretrain, ds), {n: rng.uniform(0, 5) + scale for n in names})
            if ds == "imagenet-sketch":
                base.update(log_counts[(pretrain, "imagenet")])
            for method, shrink in zip(METHODS, (0.0, -0.3, 0.2)):
                if method == "lemmatized" and ds == "imagenet-sketch":
                    continue  # as in the real artifacts
                counts = {n: int(round(10 ** max(0.0, v + shrink))) - 1 for n, v in base.items()}
                (root / "search_counts" / f"{ds}_{pretrain}_{method}_search_counts.json").write_text(json.dumps(counts))
    for ds, names in classes.items():
        for prompts in ("ensemble", "simple"):
            results = {}
            for (model, pretrain), slope in MODELS.items():
                acc = {("plane" if n == "airplane" else n):
                       float(np.clip(5 + slope * log_counts[(pretrain, ds)][n] + rng.normal(0, 6), 0, 100)) for n in names}
                results[f"backbone{model}_pretrained{pretrain}"] = {"full": float(np.mean(list(acc.values()))), "classwise": acc}
            results["backboneViT-B-32_pretrainedlaion400m"] = {"full": 50.0, "classwise": {n: 50.0 for n in names}}
            (root / "zero_shot_evaluations" / f"{ds}_{prompts}_results.json").write_text(json.dumps(results))
    rare = sorted(log_counts[("cc3m", "food101")], key=log_counts[("cc3m", "food101")].get)[:5]
    (root / "let_it_wag" / "let_it_wag_class_list.txt").write_text("\n".join(f'"{n}"' for n in rare))
    return root


@pytest.fixture
def artifacts(tmp_path) -> PaperArtifacts:
    return PaperArtifacts(make_artifacts(tmp_path / "artifacts"))


def test_layout_and_quirks(artifacts):
    assert artifacts.datasets() == ["cc12m", "cc3m"]
    assert artifacts.models("cc3m") == ["RN50", "ViT-B-16"]
    assert "airplane" in artifacts.evaluations("cifar10", "ensemble")[("RN50", "cc3m")]  # `plane` in the file
    data, info = artifacts.trend_data("cc3m", "RN50", "integrated", "ensemble")
    assert len(data) == sum(DOWNSTREAM.values()) and info["unmatched_classes"] == 0
    assert info["downstream"] == ["imagenet", "cifar10", "dtd", "food101", "imagenet-sketch"]  # the paper's order
    _, text = artifacts.trend_data("cc3m", "RN50", "lemmatized", "ensemble")
    assert "imagenet-sketch" in text["missing_counts"] and "imagenet" in text["downstream"]
    assert len(artifacts.let_it_wag()) == 5 and artifacts.misalignment("cc3m") is None


def test_names_of_counts_and_models():
    assert resolve_method("integrated") == "integrated_tlemmatized_i0.7"
    assert resolve_method("matched") == "integrated_tlemmatized_i0.7" and resolve_method("text") == "lemmatized"
    assert [method_kind(m) for m in ("lowercased", "rampp0.55", "integrated_tlemmatized_i0.5")] == ["text", "image", "matched"]
    assert parse_model_key("backboneViT-B-32_pretrainedlaion200m_train_test_sim_normalized") == \
        ("ViT-B-32", "laion200m_train_test_sim_normalized")
    with pytest.raises(UserError, match="unknown count method"):
        resolve_method("bm25")


def test_synthetic_trend_is_recovered(artifacts):
    data, _ = artifacts.trend_data("cc12m", "ViT-B-16", "integrated", "ensemble")
    fit = trends.fit(data, "per-concept", n_boot=200)
    assert fit.slope_ci[0] < 10.0 < fit.slope_ci[1] + 0.5
    assert trends.fit(data, "binned").pearson > 0.9


@pytest.mark.parametrize("call, error, message", [
    (lambda a: a.trend_data("cc3m", "RN51", "integrated", "ensemble"), NotFoundError, "RN50, ViT-B-16"),
    (lambda a: a.trend_data("laion400m", "ViT-B-32", "integrated", "ensemble"), NotFoundError, "no counts for pretraining set"),
    (lambda a: a.trend_data("cc3m", "RN50", "integrated", "fancy"), UserError, "unknown prompts"),
    (lambda a: a.trend_data("cc3m", "RN50", "rampp0.9", "ensemble"), NotFoundError, "methods available"),
])
def test_missing_things_are_clear_errors(artifacts, call, error, message):
    with pytest.raises(error, match=message):
        call(artifacts)


def test_not_an_artifacts_directory(tmp_path):
    with pytest.raises(UserError, match="not a paper artifacts directory"):
        PaperArtifacts(tmp_path)


# --- the real artifacts ----------------------------------------------------------------------------------

@pytest.fixture
def paper(shared_data) -> PaperArtifacts:
    root = shared_data / "paper_artifacts"
    if not root.is_dir():
        pytest.skip(f"paper artifacts not found at {root}")
    return PaperArtifacts(root)


def test_every_model_and_pretraining_set_is_covered(paper):
    present = {(m, p) for p in paper.datasets() for m in paper.models(p, "ensemble")}
    assert present == set(PUBLISHED)


@pytest.mark.parametrize("model, pretrain", sorted(PUBLISHED))
def test_binned_pearson_is_the_papers(paper, model, pretrain):
    data, info = paper.trend_data(pretrain, model, "integrated", "ensemble")
    fit = trends.fit(data, "binned")
    assert fit.pearson == pytest.approx(PUBLISHED[(model, pretrain)], abs=0.005)
    assert fit.n_concepts == 4469 and info["missing_counts"] == [] and info["unmatched_classes"] == 0
    assert fit.p_value < 1e-3 and fit.slope_per_decade > 5
