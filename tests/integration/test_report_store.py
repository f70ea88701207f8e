"""The reporter over the count store, with identical assertions on a ClickHouse 18.16 server and on
embedded chDB: importing the paper's layout, reading it back, and reproducing the file-based fits."""

from __future__ import annotations

import pytest

from conceptfreq.core import trends
from conceptfreq.core.counting import ShardResult
from conceptfreq.errors import NotFoundError, UserError
from conceptfreq.reporter import analysis
from conceptfreq.adapters.store import ClassResult
from conceptfreq.reporter.importer import PaperVocabularies, import_paper
from conceptfreq.reporter.paper import PaperArtifacts
from conceptfreq.reporter.store_source import StoreSource
from tests.unit.test_report_artifacts import PUBLISHED, make_artifacts


@pytest.fixture
def artifacts(tmp_path) -> PaperArtifacts:
    return PaperArtifacts(make_artifacts(tmp_path / "artifacts"))


@pytest.fixture
def imported(store, artifacts) -> StoreSource:
    summary = import_paper(store, artifacts)
    assert summary["conflicts"] == [] and len(summary["duplicates_skipped"]) == 4  # imagenet-sketch = imagenet
    return StoreSource(store)


def _fit(source, dataset, model, count, method="binned"):
    data, info = source.trend_data(dataset, model, count, "ensemble")
    return data, trends.fit(data, method, n_boot=100), info


@pytest.mark.parametrize("model, dataset", sorted(PUBLISHED))
def test_store_reproduces_the_artifacts(imported, artifacts, model, dataset):
    store_data, store_fit, info = _fit(imported, dataset, model, "matched")
    file_data, file_fit, _ = _fit(artifacts, dataset, model, "integrated")
    assert info["rule"] == "integrated_tlemmatized_i0.7" and info["kind"] == "matched"
    assert len(store_data) == len(file_data)
    assert sorted(store_data.frequency) == sorted(file_data.frequency)
    assert store_fit.pearson == pytest.approx(file_fit.pearson, abs=1e-12)
    assert store_fit.slope_per_decade == pytest.approx(file_fit.slope_per_decade, abs=1e-9)


def test_import_twice_replaces(store, artifacts, imported):
    before = _fit(imported, "cc3m", "RN50", "image", "per-concept")[1]
    import_paper(store, artifacts, datasets=["cc3m"], prompts=["ensemble"])
    data, after, _ = _fit(imported, "cc3m", "RN50", "image", "per-concept")
    assert len(data) == before.n_concepts and after.slope_ci == before.slope_ci


def test_counts_rules_and_models(imported):
    assert imported.datasets() == ["cc12m", "cc3m"]
    assert imported.models("cc3m") == ["RN50", "ViT-B-16"]
    assert imported.rules("cc3m", "text") == ["lemmatized"]
    assert imported.resolve_count("cc3m", "integrated") == ("matched", "integrated_tlemmatized_i0.7")
    # The store keeps imagenet-sketch's classes under imagenet's vocabulary, so text counts cover it too.
    _, _, info = _fit(imported, "cc3m", "RN50", "text")
    assert "imagenet-sketch" in info["downstream"]
    counts = imported.concept_counts("cc3m", "matched")
    assert len(counts) == 10 + 60 + 30 + 40 and min(counts.values()) >= 0
    with pytest.raises(NotFoundError, match="RN50, ViT-B-16"):
        imported.trend_data("cc3m", "RN51", "matched", "ensemble")
    with pytest.raises(NotFoundError, match="no counts in the store"):
        imported.trend_data("laion", "RN50", "matched", "ensemble")
    with pytest.raises(NotFoundError, match="available: rampp0.7"):
        imported.trend_data("cc3m", "RN50", "image", "ensemble", rule="rampp0.5")


def test_counts_of_your_own_with_evaluator_results(store, artifacts, imported):
    """A dataset counted by ordinary shards (absent concept = 0) and evaluated with test-set sizes."""
    vocabulary = PaperVocabularies(artifacts).vocabularies["food101"]
    version = vocabulary.version
    for rule in ("phrase", "bag"):
        store.write_shard(ShardResult("mine", version, f"s-{rule}", "text", samples=1000, rule=rule,
                                      counts={c.id: (c.id % 7) * 10 ** (c.id % 4) for c in vocabulary if c.id % 5}))
    rows = [("M", "mine", "ensemble", "food101", c.name, version, c.id, min(50, c.id + 5), 50,
             100 * min(50, c.id + 5) / 50, "evaluator", 1) for c in vocabulary]
    store.write_results([ClassResult(*row[:-1]) for row in rows])
    with pytest.raises(UserError, match="several rules"):
        imported.trend_data("mine", "M", "text", "ensemble")
    data, info = imported.trend_data("mine", "M", "text", "ensemble", rule="phrase")
    assert len(data) == len(vocabulary) and info["downstream"] == ["food101"]
    assert sum(f == 0 for f in data.frequency) == sum(1 for c in vocabulary if c.id % 5 == 0 or c.id % 7 == 0)
    assert data.totals is not None and set(data.totals) == {50.0}
    assert trends.fit(data, "logit").details["eps_percent"] is None


def test_long_tail_and_cross_dataset_views(imported, artifacts):
    from_store = analysis.long_tail(imported, analysis.LongTailOptions(k=5, reference=artifacts.let_it_wag()))
    from_files = analysis.long_tail(artifacts, analysis.LongTailOptions(k=5))
    assert [c["name"].replace(" ", "_") for c in from_store["concepts"]] == [c["name"] for c in from_files["concepts"]]
    assert from_store["reference_overlap"] == from_files["reference_overlap"]
    cross = analysis.cross_dataset(imported, None, "matched")
    assert cross["datasets"] == ["cc12m", "cc3m"] and cross["n_concepts"] == 10 + 60 + 30 + 40
    assert cross["spearman"][0][1] == pytest.approx(analysis.cross_dataset(artifacts, None, "matched")["spearman"][0][1])


def test_real_artifacts_through_the_store(store, shared_data):
    root = shared_data / "paper_artifacts"
    if not root.is_dir():
        pytest.skip(f"paper artifacts not found at {root}")
    import_paper(store, PaperArtifacts(root), methods=["integrated"], prompts=["ensemble"])
    source = StoreSource(store)
    for (model, dataset), published in PUBLISHED.items():
        fit = analysis.fit_trend(source, analysis.Selection(dataset, model, "matched"))
        assert fit["pearson"] == pytest.approx(published, abs=0.005) and fit["n_concepts"] == 4469
