"""The Dockerfiles. No Docker engine runs on these machines (docs/platform.md), so the images are not
built here; instead the files are linted with hadolint, their structure is checked, and the
commands they run that decide what goes into an image (the constraint file, the pip installs)
are run here, against this checkout, as a dry run."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO, tool

DOCKER = REPO / "deploy" / "docker"
DOCKERFILES = ["Dockerfile", "Dockerfile.triton"]


def instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = (DOCKER / name).read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), " ".join(rest.split())))
    return out


def stages(name: str) -> dict[str, list[tuple[str, str]]]:
    """Instructions per build stage, by stage name."""
    out, current = {}, None
    for keyword, args in instructions(name):
        if keyword == "FROM":
            current = args.split(" AS ")[-1] if " AS " in args else args
            out[current] = []
        if current:
            out[current].append((keyword, args))
    return out


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_finds_nothing(name):
    result = subprocess.run([tool("hadolint"), "--format", "json", "--no-fail", str(DOCKER / name)],
                            capture_output=True, text=True, timeout=60)
    findings = json.loads(result.stdout or "[]")
    assert not findings, "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)


def test_service_images_run_conceptfreq_as_an_unprivileged_user():
    all_stages = stages("Dockerfile")
    assert {"base", "inference"} <= set(all_stages)
    # A plain `docker build` (no --target) gives the last stage: the small image.
    assert list(all_stages)[-1] == "base"
    for target in ("base", "inference"):
        # the runtime stage they both start FROM holds USER and ENTRYPOINT
        runtime = all_stages[all_stages[target][0][1].split(" AS ")[0]]
        settings = dict(runtime)
        assert settings["USER"] == "${UID}:${UID}"
        assert json.loads(settings["ENTRYPOINT"]) == ["conceptfreq"]
        assert json.loads(settings["CMD"])[0] == "serve"
    uid = next(args for keyword, args in all_stages["runtime"] if keyword == "ARG" and args.startswith("UID="))
    assert uid == "UID=10001", "the chart's podSecurityContext.runAsUser assumes 10001"


def test_triton_image_runs_conceptfreqs_model_code_unprivileged():
    (stage,) = stages("Dockerfile.triton").values()
    settings = dict(stage)
    assert stage[0][1] == "nvcr.io/nvidia/tritonserver:${TRITON_VERSION}-py3"
    assert settings["USER"] == "1000:1000", "the chart's triton.podSecurityContext assumes uid 1000"
    assert json.loads(settings["CMD"])[:2] == ["tritonserver", "--model-repository=/models"]
    runs = " ".join(args for keyword, args in stage if keyword == "RUN")
    # the python-backend model imports conceptfreq's TorchBackend
    assert "pip install --constraint constraints.txt ./services torch torchvision open_clip_torch" in runs


def test_triton_image_bakes_the_repository_as_the_charts_init_container_writes_it():
    from tests.deploy.conftest import manifests

    (stage,) = stages("Dockerfile.triton").values()
    baked = " ".join(args for keyword, args in stage if keyword == "RUN")
    (triton,) = [d for d in manifests({}) if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-triton")]
    script = triton["spec"]["template"]["spec"]["initContainers"][0]["args"][0].replace("'", "")
    for part in ("python3 -m conceptfreq.adapters.inference.repository", "--kind gpu", "--out /models"):
        assert part in baked and part in script, part
    # baked weights must not sit under /cache, where the chart mounts a volume over them
    assert "--cache-dir /opt/open_clip" in baked and "--cache-dir /cache/open_clip" in script
    mounts = triton["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert not any("/opt/open_clip".startswith(m["mountPath"].rstrip("/") + "/") for m in mounts)


def test_triton_model_repository_has_models():
    (source,) = [shlex.split(a)[0] for k, a in instructions("Dockerfile.triton") if k == "COPY" and a.endswith(" /models/")]
    repository = REPO / source
    models = sorted(p.parent.name for p in repository.glob("*/config.pbtxt"))
    assert models, f"{source} (copied to /models) holds no model"
    for model in models:
        assert (repository / model / "1" / "model.py").is_file(), f"model {model} has no 1/model.py"
        assert model.endswith(("__image", "__text")), model


def _ignored(patterns: list[str], path: str) -> bool:
    """Docker's .dockerignore rule: the last pattern that matches a path (or a parent) decides."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = Path(path).parts
        if any(fnmatch.fnmatch("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)):
            ignored = not negate
    return ignored


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerignore_keeps_what_copy_needs_and_drops_the_rest(name):
    ignore = DOCKER / f"{name}.dockerignore"
    patterns = [line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")]
    args = {a.split("=", 1)[0]: a.split("=", 1)[1].strip('"') for k, a in instructions(name) if k == "ARG" and "=" in a}
    for keyword, rest in instructions(name):
        if keyword == "COPY" and "--from=" not in rest:
            for source in shlex.split(rest)[:-1]:
                source = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], source)
                assert not _ignored(patterns, source), f"{name}: COPY {source} is excluded by {ignore.name}"
    for heavy in (".venv/bin/python", ".git/HEAD", "build/x", "demo-output/x", "tests/conftest.py"):
        assert _ignored(patterns, heavy), f"{ignore.name} lets {heavy} into the build context"


def _run_dockerfile_pip(name: str, workdir: Path) -> list[str]:
    """Run the Dockerfile's own `sed` and `pip install` lines in `workdir`, pip as a dry run."""
    (workdir / "requirements.lock").write_bytes((REPO / "requirements.lock").read_bytes())
    (workdir / "services").symlink_to(REPO / "services")
    outputs = []
    for keyword, args in instructions(name):
        if keyword != "RUN":
            continue
        for command in args.split("&&"):
            command = command.strip()
            if command.startswith("sed "):
                subprocess.run(command, shell=True, cwd=workdir, check=True, timeout=30)
            elif command.startswith("pip install"):
                # The installed venv stands in for the image's; no build isolation keeps it offline.
                words = shlex.split(command)
                argv = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-build-isolation", *words[2:]]
                result = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=120)
                assert result.returncode == 0, f"{name}: `{command}` fails:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
                outputs.append(result.stdout)
    return outputs


def test_service_image_installs_resolve_at_the_locked_versions(tmp_path):
    outputs = _run_dockerfile_pip("Dockerfile", tmp_path)
    assert len(outputs) == 2, "expected the base and the inference pip installs"
    constraints = (tmp_path / "constraints.txt").read_text()
    assert "[" not in constraints and "tritonclient==" in constraints


def test_triton_image_install_resolves_at_the_locked_versions(tmp_path):
    (output,) = _run_dockerfile_pip("Dockerfile.triton", tmp_path)


def test_base_image_dependencies_leave_out_torch():
    """The point of the two targets: nothing the package itself requires pulls torch in."""
    seen, todo = set(), ["conceptfreq"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requirements = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in requirements:
            if "extra ==" in requirement:
                continue
            todo.append(re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-"))
    assert "conceptfreq" in seen and len(seen) > 10
    assert not {"torch", "torchvision", "open-clip-torch", "nvidia-pytriton"} & seen
