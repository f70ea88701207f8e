"""The reporting commands end to end in process: the CLI contract, the store path, files and errors."""

from __future__ import annotations

import json

import pytest

from conceptfreq import cli
from tests.unit.test_report_artifacts import PUBLISHED, make_artifacts

REPORTING = ["report", "import_paper", "longtail", "predict", "budget"]


@pytest.fixture(autouse=True)
def commands(monkeypatch):
    # Until the lead lists them in cli.COMMANDS, add the reporting commands for these tests.
    monkeypatch.setattr(cli, "COMMANDS", list(dict.fromkeys([*cli.COMMANDS, *REPORTING])))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> str:
    return str(make_artifacts(tmp_path_factory.mktemp("cli") / "artifacts"))


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


CONTRACT_KEYS = {"pearson", "p_value", "n_concepts", "slope_per_decade"}


def test_contract_on_the_papers_artifacts(capsys, shared_data):
    root = shared_data / "paper_artifacts"
    if not root.is_dir():
        pytest.skip(f"paper artifacts not found at {root}")
    for (model, pretrain), published in sorted(PUBLISHED.items()):
        result = run_json(capsys, "report", "--paper-artifacts", root, "--pretrain", pretrain, "--model", model,
                          "--count", "integrated", "--prompts", "ensemble", "--method", "binned")
        assert CONTRACT_KEYS <= set(result)
        assert result["pearson"] == pytest.approx(published, abs=0.005), (model, pretrain)


def test_contract_from_files_and_from_the_store(capsys, artifacts, chdb_url):
    from_files = run_json(capsys, "report", "--paper-artifacts", artifacts, "--pretrain", "cc3m", "--model", "RN50",
                          "--count", "integrated", "--prompts", "ensemble", "--method", "binned")
    assert CONTRACT_KEYS <= set(from_files) and from_files["n_concepts"] == 200
    imported = run_json(capsys, "import-paper", "--artifacts", artifacts, "--store", chdb_url, "--pretrain", "cc3m")
    assert imported["datasets"] == ["cc3m"] and imported["evaluation_rows"] > 0
    from_store = run_json(capsys, "report", "--store", chdb_url, "--dataset", "cc3m", "--model", "RN50",
                          "--count", "matched", "--prompts", "ensemble", "--method", "binned")
    assert from_store["pearson"] == pytest.approx(from_files["pearson"], abs=1e-12)
    assert from_store["selection"]["rule"] == "integrated_tlemmatized_i0.7"
    for count in ("text", "image"):
        assert run_json(capsys, "report", "--store", chdb_url, "--dataset", "cc3m", "--model", "RN50", "--count", count)["n_concepts"] > 0


def test_per_concept_text_output_and_several_models(capsys, artifacts):
    code, out, _ = run(capsys, "report", "--paper-artifacts", artifacts, "--pretrain", "cc12m", "--method", "per-concept",
                       "--bootstrap", "100")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("RN50 on cc12m") and "accuracy points per 10x [" in lines[0]
    both = run_json(capsys, "report", "--paper-artifacts", artifacts, "--pretrain", "cc12m", "--model", "RN50,ViT-B-16",
                    "--method", "logit")
    assert [f["selection"]["model"] for f in both["fits"]] == ["RN50", "ViT-B-16"]


def test_predict_and_budget(capsys, artifacts):
    common = ["--paper-artifacts", artifacts, "--pretrain", "cc3m", "--model", "RN50"]
    predicted = run_json(capsys, "predict", *common, "--concept", "dtd class 03", "--frequency", "10", "--frequency", "1e5")
    first, low, high = predicted["predictions"]
    assert first["concept"] == "dtd class 03" and first["observed_accuracy"] is not None
    assert low["accuracy"] < high["accuracy"] and low["lower"] <= low["accuracy"] <= low["upper"]
    budget = run_json(capsys, "budget", *common, "--concept", "dtd_class_03", "--target", "60")
    assert budget["reachable"] and budget["required_frequency"] > 0 and "additional_samples" in budget
    code, out, _ = run(capsys, "budget", *common, "--current", "100", "--target", "60")
    assert code == 0 and "60% needs about" in out


def test_longtail_writes_the_class_list_counts_and_predictions(capsys, artifacts, tmp_path):
    result = run_json(capsys, "longtail", "--paper-artifacts", artifacts, "--datasets", "cc3m,cc12m", "--k", "7",
                      "--kind", "matched", "--model", "RN50", "--out", tmp_path / "lt")
    assert len(result["concepts"]) == 7 and result["tie_break"] == ["text", "image"]
    assert result["reference_overlap"]["reference_size"] == 5
    classes = (tmp_path / "lt" / "class_list.txt").read_text().splitlines()
    assert classes == [c["name"] for c in result["concepts"]]
    header = (tmp_path / "lt" / "counts.csv").read_text().splitlines()[0]
    assert header == "rank,concept,score,cc3m,cc12m,predicted_accuracy_cc3m,predicted_accuracy_cc12m"
    assert json.loads((tmp_path / "lt" / "long_tail.json").read_text())["k"] == 7


def test_longtail_filters(capsys, artifacts, tmp_path):
    common = ["longtail", "--paper-artifacts", artifacts, "--k", "50"]
    dtd = run_json(capsys, *common, "--downstream", "dtd")
    assert len(dtd["concepts"]) == 30 and all(c["name"].startswith("dtd_") for c in dtd["concepts"])
    (tmp_path / "subset.txt").write_text('"food101_class_01"\nfood101 class 02\nunicorn\n')
    subset = run_json(capsys, *common, "--concepts", tmp_path / "subset.txt", "--min-evaluations", "5")
    assert sorted(c["name"] for c in subset["concepts"]) == ["food101_class_01", "food101_class_02"]
    code, _, err = run(capsys, *common, "--min-evaluations", "6")  # 5 models evaluated every class
    assert code == 2 and "leave no concept" in err


def test_html_report(capsys, artifacts, tmp_path):
    code, out, _ = run(capsys, "report", "--paper-artifacts", artifacts, "--pretrain", "cc3m", "--bootstrap", "50",
                       "--html", tmp_path / "r" / "report.html", "--k", "10")
    assert code == 0 and "4 figures" in out
    assert (tmp_path / "r" / "report.html").read_text().count("data:image/png;base64,") == 4


@pytest.mark.parametrize("argv, message", [
    (["report", "--pretrain", "cc3m", "--model", "RN51"], "models available: RN50, ViT-B-16"),
    (["report", "--pretrain", "laion400m", "--model", "RN50"], "no counts for pretraining set"),
    (["report", "--pretrain", "cc3m", "--model", "RN50", "--count", "bm25"], "unknown count method"),
    (["predict", "--pretrain", "cc3m", "--model", "RN50", "--method", "binned", "--frequency", "10"], "does not predict"),
    (["predict", "--pretrain", "cc3m", "--model", "RN50"], "at least one concept or frequency"),
    (["predict", "--pretrain", "cc3m", "--model", "RN50", "--concept", "unicorn"], "not counted"),
    (["budget", "--pretrain", "cc3m", "--model", "RN50", "--current", "5", "--target", "120"], "between 0 and 100"),
    (["report", "--model", "RN50"], "name the pretraining dataset"),
    (["longtail", "--datasets", "cc3m,laion", "--k", "5"], "unknown dataset"),
])
def test_errors_are_one_line(capsys, artifacts, argv, message):
    command, *rest = argv
    code, out, err = run(capsys, command, "--paper-artifacts", artifacts, *rest)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_registering_the_reporting_commands_stays_light():
    """Building the CLI with these commands (and `serve reporter`) must not import scipy's heavy company."""
    import subprocess
    import sys

    code = ("import sys, json; from conceptfreq import cli; from conceptfreq.commands import serve; "
            "serve.SERVICES.setdefault('reporter', 'conceptfreq.reporter.main'); "
            f"cli.COMMANDS = list(dict.fromkeys(cli.COMMANDS + {REPORTING!r})); cli.build_parser(); "
            "print(json.dumps([m for m in ('matplotlib', 'statsmodels', 'scipy') if m in sys.modules]))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert loaded == []
