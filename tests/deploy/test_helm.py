"""The Helm chart, rendered offline by Helm's own engine (helm-python-sdk) under the value sets an
operator would use, and checked as Kubernetes would check it: strict schema validation
(kubernetes-validate) for the oldest Kubernetes the chart supports and the newest, plus what a
schema cannot say (probes, resources, security contexts, wiring between objects, and that every
setting the chart passes is one the service reads)."""

from __future__ import annotations

import copy
import json
import re
import subprocess

import pytest
import yaml

from tests.deploy.conftest import CHART, CHART_RULES, RULES, manifests, render, tool

COMPONENTS = ["parser", "tagger", "counter", "evaluator", "query", "reporter"]
INFERENCE_COMPONENTS = {"tagger", "evaluator"}
# The chart's minimum (Chart.yaml kubeVersion: gRPC probes are GA in 1.27) and the newest schemas.
KUBE_VERSIONS = ["1.27.0", "1.37.0"]
# Prometheus Operator kinds: kubernetes-validate has no schema for CRDs; test_servicemonitor and
# test_prometheusrule check them instead. Any other kind without a schema fails.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}

SCENARIOS = {
    "defaults": {},
    "monitoring": {"metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"},
                           "additionalRuleLabels": {"team": "data"}}}},
    "gpus-and-model-pvc": {"triton": {
        "gpus": 4, "replicaCount": 2, "runtimeClassName": "nvidia", "extraArgs": ["--log-verbose=1"],
        "modelRepository": {"source": "pvc", "existingClaim": "triton-models", "subPath": "conceptfreq"},
        "cache": {"existingClaim": "hf-cache"}}},
    "in-process-torch": {"triton": {"enabled": False}, "tagger": {"resources": {
        "requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"memory": "16Gi", "nvidia.com/gpu": 1}}}},
    "autoscaling": {"parser": {"autoscaling": {"enabled": True}},
                    "tagger": {"autoscaling": {"enabled": True, "maxReplicas": 4}}},
    "secrets-vocabulary-digest": {
        "store": {"existingSecret": "clickhouse", "existingSecretKey": "store-url"},
        "vocabulary": {"existingConfigMap": "concepts", "key": "concepts.csv"},
        "image": {"digest": "sha256:" + "a" * 64, "pullSecrets": ["registry"]},
        "kafka": {"bootstrapServers": "kafka-0:9092,kafka-1:9092", "clientOptions": {"session_timeout_ms": 30000}},
        "commonLabels": {"team": "data"}, "commonAnnotations": {"owner": "ml-platform"},
        "query": {"service": {"type": "LoadBalancer"}}},
}


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def scenario(request) -> tuple[str, list[dict]]:
    return request.param, manifests(SCENARIOS[request.param])


@pytest.fixture(scope="module")
def defaults() -> list[dict]:
    return manifests({})


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def component(doc: dict) -> str:
    return doc["metadata"]["labels"]["app.kubernetes.io/component"]


def env_of(container: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container.get("env", [])}


def pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    return [(f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"])
            for doc in docs if doc["kind"] in ("Deployment", "Job")]


# --- the chart as Helm and Kubernetes see it -----------------------------------------------------

@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_lint_is_clean(name):
    import helm_python as helm

    report = helm.lint(str(CHART), SCENARIOS[name], strict=True, kube_version="v1.27.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_manifests_pass_strict_schema_validation(scenario, version, kubernetes_validate):
    name, docs = scenario
    failures = []
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {'.'.join(map(str, error.path))}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            failures.append(f"{doc['kind']} {doc['apiVersion']} has no schema in Kubernetes {version}")
    assert not failures, f"{name}:\n" + "\n".join(failures)


def test_every_container_has_probes_resources_and_security_context(scenario):
    name, docs = scenario
    specs = pod_specs(docs)
    assert specs
    for where, spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, where
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec["automountServiceAccountToken"] is False, where
        for container in spec["containers"]:
            at = f"{name}: {where}/{container['name']}"
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), at
            assert "memory" in resources["limits"], at  # no CPU limit on purpose: see values.yaml
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, at
            assert security["readOnlyRootFilesystem"] is True, at
            assert security["capabilities"]["drop"] == ["ALL"], at
            mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
            assert "/tmp" in mounts, f"{at}: a read-only root needs a writable /tmp"
            if where.startswith("Deployment/"):
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    assert probe in container, f"{at} has no {probe}"


def test_services_use_grpc_health_probes_on_their_grpc_port(defaults):
    for deployment in by_kind(defaults, "Deployment").values():
        if component(deployment) == "triton":
            continue
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        port = {p["name"]: p["containerPort"] for p in container["ports"]}["grpc"]
        assert env_of(container)["CONCEPTFREQ_GRPC_PORT"]["value"] == str(port)
        for probe in ("startupProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": port}, (deployment["metadata"]["name"], probe)
        # Readiness asks for the health service a stalled bus worker turns off (adapters/bus/liveness.py).
        assert container["readinessProbe"]["grpc"] == {"port": port, "service": "readiness"}, deployment["metadata"]["name"]


# --- wiring between objects ----------------------------------------------------------------------

def test_one_deployment_and_service_per_component(defaults):
    deployments, services = by_kind(defaults, "Deployment"), by_kind(defaults, "Service")
    assert sorted(map(component, deployments.values())) == sorted(COMPONENTS + ["triton"])
    for name, deployment in deployments.items():
        service = services[name]
        pod = deployment["spec"]["template"]
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items(), name
        assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"], name
        container_ports = {p["name"] for c in pod["spec"]["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, (name, port)
        if component(deployment) != "triton":
            container = pod["spec"]["containers"][0]
            assert container["args"] == ["serve", component(deployment)]
            repository = "conceptfreq-inference" if component(deployment) in INFERENCE_COMPONENTS else "conceptfreq:"
            assert repository in container["image"], (name, container["image"])


def test_tagger_and_evaluator_call_the_releases_triton(defaults):
    services = by_kind(defaults, "Service")
    triton = services["cf-conceptfreq-triton"]
    grpc_port = {p["name"]: p["port"] for p in triton["spec"]["ports"]}["grpc"]
    for deployment in by_kind(defaults, "Deployment").values():
        env = env_of(deployment["spec"]["template"]["spec"]["containers"][0])
        if component(deployment) in INFERENCE_COMPONENTS:
            assert env["CONCEPTFREQ_INFERENCE"]["value"] == f"triton://cf-conceptfreq-triton:{grpc_port}"
            if component(deployment) == "tagger":  # the evaluator's model comes with each evaluation
                assert env["CONCEPTFREQ_PRETRAINED"]["value"] == "laion400m_e32"
        else:
            assert "CONCEPTFREQ_INFERENCE" not in env
        if component(deployment) in {"parser", "tagger", "counter", "evaluator"}:
            assert env["CONCEPTFREQ_BUS"]["value"] == "kafka://kafka.kafka.svc.cluster.local:9092"
        elif component(deployment) != "triton":
            assert "CONCEPTFREQ_BUS" not in env, "query and reporter read only the store"


def test_secret_store_vocabulary_and_client_options_reach_the_pods():
    docs = manifests(SCENARIOS["secrets-vocabulary-digest"])
    for deployment in by_kind(docs, "Deployment").values():
        if component(deployment) == "triton":
            assert deployment["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "registry"}]
            continue
        spec = deployment["spec"]["template"]["spec"]
        container = spec["containers"][0]
        env = env_of(container)
        assert env["CONCEPTFREQ_STORE"] == {"name": "CONCEPTFREQ_STORE", "valueFrom": {
            "secretKeyRef": {"name": "clickhouse", "key": "store-url"}}}
        assert container["image"].endswith("@sha256:" + "a" * 64)
        if "CONCEPTFREQ_BUS" in env:
            assert env["CONCEPTFREQ_BUS"]["value"] == "kafka://kafka-0:9092,kafka-1:9092?session_timeout_ms=30000"
        if component(deployment) in {"parser", "tagger"}:
            assert env["CONCEPTFREQ_VOCAB"]["value"] == "/etc/conceptfreq/vocabulary/concepts.csv"
            assert {"name": "vocabulary", "configMap": {"name": "concepts"}} in spec["volumes"]
        assert deployment["metadata"]["labels"]["team"] == "data"
        assert deployment["metadata"]["annotations"] == {"owner": "ml-platform"}


def _service_helps() -> dict[str, str]:
    from conceptfreq.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    services = next(a for a in commands["serve"]._actions if a.dest == "service").choices
    return {name: parser.format_help() for name, parser in services.items()}


def test_every_setting_the_chart_passes_is_one_the_service_reads():
    """Each CONCEPTFREQ_* variable the chart sets must be a documented flag fallback of that
    service (`conceptfreq serve SERVICE --help`), so a renamed flag cannot be silently ignored."""
    helps = _service_helps()
    docs = manifests(SCENARIOS["secrets-vocabulary-digest"]) + manifests({})
    problems = []
    for deployment in by_kind(docs, "Deployment").values():
        name = component(deployment)
        if name == "triton":
            continue
        if name not in helps:
            problems.append(f"the chart deploys `conceptfreq serve {name}`, which does not exist (have {sorted(helps)})")
            continue
        understood = set(re.findall(r"CONCEPTFREQ_[A-Z0-9_]+", helps[name]))
        for variable in env_of(deployment["spec"]["template"]["spec"]["containers"][0]):
            if variable.startswith("CONCEPTFREQ_") and variable not in understood:
                problems.append(f"{name}: {variable} is not read by `conceptfreq serve {name}`")
    assert not problems, "\n".join(sorted(set(problems)))


def test_migration_runs_as_a_hook_before_the_new_pods(defaults):
    from conceptfreq.cli import COMMANDS

    (job,) = by_kind(defaults, "Job").values()
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    # The chart's ServiceAccount does not exist yet when a pre-install hook runs.
    assert "serviceAccountName" not in spec
    container = spec["containers"][0]
    assert container["args"] == ["migrate"] and "migrate" in COMMANDS
    assert "CONCEPTFREQ_STORE" in env_of(container)


def test_bad_values_fail_at_render_time():
    import helm_python as helm

    for values, message in [
        ({"migration": {"hookEvents": "pre-instal"}}, "hookEvents"),
        ({"triton": {"modelRepository": {"source": "pvc"}}}, "existingClaim"),
        # values.schema.json catches these before the templates do
        ({"triton": {"modelRepository": {"source": "s3"}}}, "must be one of 'generate', 'image', 'pvc'"),
        ({"triton": {"extraModels": [{"pretrained": "laion400m_e32"}]}}, "missing property 'model'"),
        ({"store": {"url": ""}}, "store.url"),
    ]:
        with pytest.raises(helm.HelmError, match=message):
            render(values)


def test_autoscaled_deployments_leave_replicas_to_the_hpa():
    docs = manifests(SCENARIOS["autoscaling"])
    deployments, hpas = by_kind(docs, "Deployment"), by_kind(docs, "HorizontalPodAutoscaler")
    assert sorted(map(component, hpas.values())) == ["parser", "tagger"]
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert "replicas" not in deployments[name]["spec"]
    assert hpas["cf-conceptfreq-tagger"]["spec"]["maxReplicas"] == 4
    assert deployments["cf-conceptfreq-query"]["spec"]["replicas"] == 2


def test_every_deployment_has_a_disruption_budget(scenario):
    name, docs = scenario
    budgets = by_kind(docs, "PodDisruptionBudget")
    for deployment_name, deployment in by_kind(docs, "Deployment").items():
        assert budgets[deployment_name]["spec"]["selector"] == deployment["spec"]["selector"], (name, deployment_name)


# --- Triton --------------------------------------------------------------------------------------

def _triton(docs: list[dict]) -> dict:
    return by_kind(docs, "Deployment")["cf-conceptfreq-triton"]


def test_triton_gets_gpus_shared_memory_and_a_generated_model_repository(defaults):
    spec = _triton(defaults)["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    shm = next(v for v in spec["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert {"name": "shm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    assert "--model-repository=/models" in container["args"]
    (init,) = spec["initContainers"]
    script = init["args"][0]
    # the tagger's model, for the GPU, where the server's weights cache lives
    assert ("python3 -m conceptfreq.adapters.inference.repository --out '/models' --model 'ViT-B-32' "
            "--pretrained 'laion400m_e32' --precision 'fp16' --kind gpu --cache-dir '/cache/open_clip'") in script
    assert {"name": "models", "mountPath": "/models"} in init["volumeMounts"]
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in container["volumeMounts"]
    assert {"name": "cache", "mountPath": "/cache"} in container["volumeMounts"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"


def test_triton_serves_extra_models_or_the_ones_baked_in_its_image():
    values = {"triton": {"gpus": 0, "extraModels": [{"model": "ViT-L-14", "pretrained": "laion2b_s32b_b82k", "instances": 2},
                                                    {"model": "RN50", "pretrained": "random"}]}}
    script = _triton(manifests(values))["spec"]["template"]["spec"]["initContainers"][0]["args"][0]
    lines = [line for line in script.splitlines() if line.startswith("python3")]
    assert len(lines) == 3 and all("--kind cpu" in line for line in lines)
    assert "--model 'ViT-L-14' --pretrained 'laion2b_s32b_b82k' --precision 'fp16' --kind cpu" in lines[1]
    assert lines[1].endswith("--instances 2")
    assert "--pretrained" not in lines[2], "random weights: no --pretrained, as the services spell it"
    spec = _triton(manifests({"triton": {"modelRepository": {"source": "image"}}}))["spec"]["template"]["spec"]
    assert "initContainers" not in spec
    assert not any(v["name"] == "models" for v in spec["volumes"]), "image source: the models are in the image"


def test_triton_model_repository_from_a_volume_and_more_gpus():
    spec = _triton(manifests(SCENARIOS["gpus-and-model-pvc"]))["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert spec["runtimeClassName"] == "nvidia"
    assert {"name": "models", "persistentVolumeClaim": {"claimName": "triton-models", "readOnly": True}} in spec["volumes"]
    assert {"name": "models", "mountPath": "/models", "subPath": "conceptfreq", "readOnly": True} in container["volumeMounts"]
    assert {"name": "cache", "persistentVolumeClaim": {"claimName": "hf-cache"}} in spec["volumes"]
    assert "--log-verbose=1" in container["args"]


def test_without_triton_the_model_runs_in_process():
    docs = manifests(SCENARIOS["in-process-torch"])
    assert not any(doc["metadata"]["labels"].get("app.kubernetes.io/component") == "triton" for doc in docs)
    tagger = by_kind(docs, "Deployment")["cf-conceptfreq-tagger"]["spec"]["template"]["spec"]["containers"][0]
    assert env_of(tagger)["CONCEPTFREQ_INFERENCE"]["value"] == "torch://"
    assert tagger["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "torch://" in render(SCENARIOS["in-process-torch"])["conceptfreq/templates/NOTES.txt"]


def test_cpu_only_triton_requests_no_gpu():
    container = _triton(manifests({"triton": {"gpus": 0}}))["spec"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]


# --- monitoring ----------------------------------------------------------------------------------

def test_service_monitor_scrapes_every_service_of_the_release():
    docs = manifests(SCENARIOS["monitoring"])
    (monitor,) = by_kind(docs, "ServiceMonitor").values()
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    (endpoint,) = spec["endpoints"]
    assert endpoint["honorLabels"] is True, "keeps the gRPC metrics' own `service` label"
    selected = [s for s in by_kind(docs, "Service").values()
                if spec["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
    assert sorted(map(component, selected)) == sorted(COMPONENTS + ["triton"])
    for service in selected:
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}, service["metadata"]["name"]
        assert spec["jobLabel"] in service["metadata"]["labels"]
    # job names the one-machine scrape config and the alert rules use
    with (RULES.parent / "prometheus.yml").open() as config:
        jobs = {job["job_name"] for job in yaml.safe_load(config)["scrape_configs"]}
    assert jobs == {service["metadata"]["labels"][spec["jobLabel"]] for service in selected}


def test_prometheus_rule_is_the_rules_file(tmp_path):
    assert CHART_RULES.read_bytes() == RULES.read_bytes(), \
        f"copy {RULES.relative_to(RULES.parents[2])} to {CHART_RULES.relative_to(RULES.parents[2])}"
    docs = manifests(SCENARIOS["monitoring"])
    (rule,) = by_kind(docs, "PrometheusRule").values()
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    expected = copy.deepcopy(yaml.safe_load(RULES.read_text())["groups"])
    for group in expected:
        for item in group["rules"]:
            if "alert" in item:
                item["labels"] = {"team": "data", **item.get("labels", {})}
    assert rule["spec"]["groups"] == expected
    rendered = tmp_path / "rendered-rules.yml"
    rendered.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    check = subprocess.run([tool("promtool"), "check", "rules", str(rendered)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_monitoring_objects_are_off_by_default(defaults):
    kinds = {doc["kind"] for doc in defaults}
    assert not kinds & CRD_KINDS, "the Prometheus Operator CRDs may not exist; these are opt-in"


def test_dashboard_configmap_carries_the_canonical_dashboard(defaults):
    (configmap,) = [d for d in defaults if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboards")]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads(configmap["data"]["conceptfreq.json"])
    assert shipped == json.loads((CHART / "dashboards" / "conceptfreq.json").read_text())
    assert shipped["uid"] == "conceptfreq"


# --- conventions ---------------------------------------------------------------------------------

def _leaves(values, path=""):
    if isinstance(values, dict) and values:
        for key, value in values.items():
            yield from _leaves(value, f"{path}.{key}" if path else key)
    else:
        yield path


def test_values_are_documented_line_by_line():
    text = (CHART / "values.yaml").read_text()
    documented = set(re.findall(r"^\s*## @param (\S+) \S", text, flags=re.M))
    values = yaml.safe_load(text)
    undocumented = [leaf for leaf in _leaves(values)
                    if not any(leaf == d or leaf.startswith(d + ".") for d in documented)]
    assert not undocumented, f"values without a `## @param` line: {undocumented}"
    stale = [d for d in documented if d not in set(_leaves(values)) and not any(
        leaf.startswith(d + ".") for leaf in _leaves(values))]
    assert not stale, f"`## @param` lines for keys that do not exist: {stale}"


def test_names_and_labels_fit_kubernetes_limits_for_a_long_release_name():
    docs = manifests({"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}},
                     name="a-release-name-that-is-rather-long-for-a-cluster-x")
    for doc in docs:
        assert len(doc["metadata"]["name"]) <= 63, doc["metadata"]["name"]
        for value in doc["metadata"].get("labels", {}).values():
            assert len(str(value)) <= 63, value
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), "truncation made two names collide"


def test_notes_tell_how_to_reach_the_query_service():
    notes = render({})["conceptfreq/templates/NOTES.txt"]
    assert "port-forward svc/cf-conceptfreq-query 50051" in notes
    assert "metrics.serviceMonitor.enabled is false" in notes
