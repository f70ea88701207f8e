"""The chart's production features, under each documented example values file
(helm/conceptfreq/examples/): values.schema.json rejects unknown and mistyped keys; every
manifest passes strict Kubernetes schema validation, and the custom resources (KEDA, cert-manager)
their CRD schemas (tests/deploy/crds); network policies select every pod and let through only
what the pipeline needs; TLS, tokens, Kafka security and read-only store credentials reach the
pods as files and settings that the services really read."""

from __future__ import annotations

import copy
import functools
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.deploy.conftest import CHART, manifests, render
from tests.paths import REPO

EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
CRDS = Path(__file__).parent / "crds"
KUBE_VERSIONS = ["1.27.0", "1.37.0"]
WORKERS = ["parser", "tagger", "counter", "evaluator"]
READERS = ["query", "reporter"]


def example(name: str) -> dict:
    return yaml.safe_load((CHART / "examples" / f"{name}.yaml").read_text())


@functools.lru_cache(maxsize=None)
def _rendered(name: str) -> tuple[dict, ...]:
    return tuple(manifests(example(name)))


def docs_of(name: str) -> list[dict]:
    return copy.deepcopy(list(_rendered(name)))


def by_kind(docs, kind) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def component(doc) -> str:
    return doc["metadata"]["labels"].get("app.kubernetes.io/component", "")


def pods(docs) -> list[tuple[str, dict, dict]]:
    """(where, pod labels, pod spec) of every workload."""
    return [(f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["metadata"]["labels"], d["spec"]["template"]["spec"])
            for d in docs if d["kind"] in ("Deployment", "Job")]


def env_of(container) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def selects(selector: dict, labels: dict) -> bool:
    if not selector:
        return True
    return selector.get("matchLabels", {}).items() <= labels.items() and not selector.get("matchExpressions")


@functools.lru_cache(maxsize=None)
def crd_schemas() -> dict[tuple[str, str], dict]:
    out = {}
    for path in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        out[(crd["apiVersion"], crd["kind"])] = {**crd["schema"], "definitions": crd.get("definitions", {})}
    return out


def test_every_example_is_documented_and_there_is_one_per_scenario():
    names = {p.stem for p in EXAMPLES}
    assert {"production", "external-services", "gpu-off", "tls", "autoscaling", "replicated-clickhouse"} <= names
    guide = (REPO / "docs" / "deploy.md").read_text()
    for name in names:
        assert f"examples/{name}.yaml" in guide, f"docs/deploy.md does not mention examples/{name}.yaml"
    # The worked production file, verbatim.
    assert (CHART / "examples" / "production.yaml").read_text().strip() in guide


# --- values.schema.json ----------------------------------------------------------------------------

def test_the_values_schema_is_current():
    check = subprocess.run([sys.executable, str(REPO / "deploy" / "scripts" / "values_schema.py"), "--check"],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr


def _closed_objects(schema: dict, path=()):
    if schema.get("type") == "object" and schema.get("additionalProperties") is False:
        yield path
        for key, sub in schema.get("properties", {}).items():
            yield from _closed_objects(sub, path + (key,))


def _set(values: dict, path: tuple, key: str, value) -> dict:
    values = copy.deepcopy(values)
    node = values
    for part in path:
        node = node.setdefault(part, {})
    node[key] = value
    return values


def test_the_schema_covers_every_value_and_rejects_a_typo_at_every_level():
    import json

    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.validate(defaults, schema)
    closed = list(_closed_objects(schema))
    assert len(closed) > 60, "most values are closed objects"
    for path in closed:
        with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
            jsonschema.validate(_set(defaults, path, "enabeld", True), schema)

    def leaves(value, path=()):
        if isinstance(value, dict) and value:
            for key, item in value.items():
                yield from leaves(item, path + (key,))
        else:
            yield path

    for path in leaves(defaults):
        node = schema
        for part in path:
            node = node["properties"][part] if "properties" in node else None
            if node is None:
                break
        assert node is None or "type" in node or "$ref" in node, f"{'.'.join(path)} has no type"


@pytest.mark.parametrize("name", [p.stem for p in EXAMPLES])
def test_helm_rejects_an_unknown_or_mistyped_key_in_each_example(name):
    import helm_python as helm

    values = example(name)
    for broken, message in [
        (_set(values, ("parser",), "replicaCont", 3), "additional properties 'replicaCont' not allowed"),
        (_set(values, ("tls",), "enabled", "yes"), "at '/tls/enabled': got string, want boolean"),
        (_set(values, ("networkPolicy", "kafka"), "ports", ["9092"]), "got string, want integer"),
        (_set(values, ("kafka", "sasl"), "mechanism", "SCRAM"), "value must be one of"),
    ]:
        with pytest.raises(helm.HelmError, match=re.escape(message)):
            render(broken)


# --- every manifest, validated ---------------------------------------------------------------------

@pytest.mark.parametrize("name", [p.stem for p in EXAMPLES])
def test_every_manifest_of_each_example_passes_its_schema(name, kubernetes_validate):
    failures = []
    for doc in docs_of(name):
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        custom = crd_schemas().get((doc["apiVersion"], doc["kind"]))
        if custom is not None:
            try:
                jsonschema.validate(doc, custom)
            except jsonschema.ValidationError as error:
                failures.append(f"{where}: {'.'.join(map(str, error.path))}: {error.message}")
            continue
        if doc["kind"] in {"ServiceMonitor", "PrometheusRule"}:
            continue  # Prometheus Operator kinds: checked by test_helm.py
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                failures.append(f"{where} ({version}): {'.'.join(map(str, error.path))}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError:
                failures.append(f"{where}: no schema for {doc['apiVersion']} in Kubernetes {version} or tests/deploy/crds")
    assert not failures, "\n".join(failures)


def test_the_crd_schemas_catch_what_they_are_for():
    scaled = next(iter(by_kind(docs_of("autoscaling"), "ScaledObject").values()))
    schema = crd_schemas()[("keda.sh/v1alpha1", "ScaledObject")]
    broken = copy.deepcopy(scaled)
    broken["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 20  # KEDA wants strings
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    broken = copy.deepcopy(scaled)
    broken["spec"]["maxReplicas"] = 3  # the HPA's spelling, not KEDA's
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


@pytest.mark.parametrize("name", [p.stem for p in EXAMPLES])
def test_policies_hold_in_each_example(name):
    values = example(name)
    docs = docs_of(name)
    gpus_on = values.get("triton", {}).get("enabled", True) and values.get("triton", {}).get("gpus", 1) > 0
    for where, _, spec in pods(docs):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, where
        for container in spec.get("initContainers", []) + spec["containers"]:
            at = f"{name}: {where}/{container['name']}"
            assert not container["image"].endswith(":latest") and ":" in container["image"].rsplit("/", 1)[-1] \
                or "@sha256:" in container["image"], at
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), at
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False, at
            gpu = container["resources"].get("limits", {}).get("nvidia.com/gpu")
            if gpu:
                assert component_of(where) == "triton" and gpus_on or "nvidia.com/gpu" in str(values), at
            if where.startswith("Deployment/") and container in spec["containers"]:
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    assert probe in container, f"{at} has no {probe}"
    if not gpus_on:
        assert "nvidia.com/gpu" not in yaml.safe_dump(docs), f"{name}: GPUs requested with the GPU off"


def component_of(where: str) -> str:
    return where.rsplit("-", 1)[-1]


# --- network policies --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [p.stem for p in EXAMPLES])
def test_a_network_policy_selects_every_pod_and_the_default_denies_all(name):
    docs = docs_of(name)
    policies = list(by_kind(docs, "NetworkPolicy").values())
    deny = [p for p in policies if p["metadata"]["name"].endswith("-default-deny")]
    assert len(deny) == 1 and "ingress" not in deny[0]["spec"] and "egress" not in deny[0]["spec"]
    assert deny[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    for where, labels, _ in pods(docs):
        assert selects(deny[0]["spec"]["podSelector"], labels), f"{where} is outside the default deny"
        own = [p for p in policies if p is not deny[0] and selects(p["spec"]["podSelector"], labels)]
        assert len(own) == 1, f"{where}: {len(own)} policies of its own"


def _rules(docs, component_name):
    (policy,) = [p for p in by_kind(docs, "NetworkPolicy").values() if component(p) == component_name
                 and not p["metadata"]["name"].endswith("-default-deny")]
    return policy["spec"].get("ingress", []), policy["spec"].get("egress", [])


def _ports(rule) -> set:
    return {p["port"] for p in rule.get("ports", [])}


def test_only_the_read_path_accepts_clients_from_outside_the_release():
    docs = docs_of("production")
    release = {"app.kubernetes.io/instance": "cf", "app.kubernetes.io/name": "conceptfreq"}
    research = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "research"}}}
    for name in WORKERS + READERS:
        ingress, _ = _rules(docs, name)
        (grpc_rule,) = [r for r in ingress if "grpc" in _ports(r)]
        peers = grpc_rule["from"]
        assert {"podSelector": {"matchLabels": release}} in peers, name
        assert (research in peers) == (name in READERS), name
        assert all("podSelector" in p and p["podSelector"]["matchLabels"] == release for p in peers if p != research)
    # allowExternal opens the read path to any client, and only the read path.
    docs = docs_of("external-services")
    for name in WORKERS + READERS:
        ingress, _ = _rules(docs, name)
        (grpc_rule,) = [r for r in ingress if "grpc" in _ports(r)]
        assert ("from" not in grpc_rule) == (name in READERS), name


def test_prometheus_may_scrape_every_metrics_port():
    docs = docs_of("production")
    prometheus = example("production")["networkPolicy"]["prometheus"]
    for name in WORKERS + READERS + ["triton"]:
        ingress, _ = _rules(docs, name)
        (scrape,) = [r for r in ingress if "http-metrics" in _ports(r)]
        assert scrape["from"] == prometheus, name
    for where, _, spec in pods(docs):
        if where.startswith("Deployment/"):
            assert "http-metrics" in {p["name"] for p in spec["containers"][0]["ports"]}, where


def test_workers_reach_kafka_clickhouse_and_triton_and_the_read_path_only_clickhouse():
    docs = docs_of("production")
    values = example("production")["networkPolicy"]
    triton_selector = next(d for d in by_kind(docs, "Deployment").values() if component(d) == "triton")["spec"]["selector"]
    for name in WORKERS + READERS + ["migration"]:
        _, egress = _rules(docs, name)
        targets = [(r.get("to"), _ports(r)) for r in egress]
        assert (values["clickhouse"]["peers"], {9000}) in targets, name
        assert ((values["kafka"]["peers"], {9093}) in targets) == (name in WORKERS), name
        to_triton = any(r.get("to") and r["to"][0].get("podSelector") == triton_selector for r in egress)
        assert to_triton == (name in {"tagger", "evaluator"}), name
        assert any(53 in _ports(r) for r in egress), f"{name} cannot resolve names"
    ingress, _ = _rules(docs, "triton")
    (inference,) = [r for r in ingress if "grpc" in _ports(r)]
    assert sorted(p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in inference["from"]) == ["evaluator", "tagger"]


# --- autoscaling on lag ------------------------------------------------------------------------------

def test_keda_scales_each_worker_on_its_own_group_and_topic_and_replaces_its_hpa():
    docs = docs_of("autoscaling")
    scaled = {component(s): s for s in by_kind(docs, "ScaledObject").values()}
    assert sorted(scaled) == sorted(WORKERS)
    hpas = {component(h) for h in by_kind(docs, "HorizontalPodAutoscaler").values()}
    assert hpas == set(READERS), "a KEDA-scaled worker has no second HPA"
    deployments = {component(d): d for d in by_kind(docs, "Deployment").values()}
    for name, obj in scaled.items():
        spec = obj["spec"]
        assert spec["scaleTargetRef"]["name"] == deployments[name]["metadata"]["name"]
        assert "replicas" not in deployments[name]["spec"]
        env = env_of(deployments[name]["spec"]["template"]["spec"]["containers"][0])
        lag, cpu = spec["triggers"]
        assert lag["type"] == "kafka" and cpu["type"] == "cpu" and cpu["metricType"] == "Utilization"
        group = {k: v["value"] for k, v in env.items() if k.endswith("_GROUP")}
        assert list(group.values()) == [lag["metadata"]["consumerGroup"]], name
        topic_env = {"parser": "CONCEPTFREQ_TOPIC_SHARDS", "tagger": "CONCEPTFREQ_TOPIC_SHARDS",
                     "counter": "CONCEPTFREQ_TOPIC_RESULTS", "evaluator": "CONCEPTFREQ_TOPIC_EVAL_SHARDS"}[name]
        assert lag["metadata"]["topic"] == env[topic_env]["value"], name
        assert lag["metadata"]["bootstrapServers"] == env["CONCEPTFREQ_BUS"]["value"].removeprefix("kafka://")
        assert "authenticationRef" not in lag, "plaintext Kafka needs no TriggerAuthentication"


def test_keda_authenticates_to_kafka_with_the_secrets_the_pods_mount():
    docs = docs_of("production")
    (auth,) = by_kind(docs, "TriggerAuthentication").values()
    refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    assert refs["ca"] == ("kafka-ca", "ca.crt") and refs["password"] == ("kafka-conceptfreq", "password")
    user_secret = by_kind(docs, "Secret")[refs["username"][0]]
    assert user_secret["stringData"] == {"username": "conceptfreq"}
    for obj in by_kind(docs, "ScaledObject").values():
        lag = obj["spec"]["triggers"][0]
        assert lag["authenticationRef"]["name"] == auth["metadata"]["name"]
        assert lag["metadata"]["tls"] == "enable" and lag["metadata"]["sasl"] == "scram_sha512"


# --- TLS, tokens, credentials ---------------------------------------------------------------------

def _containers(docs):
    return {component(d): (d["spec"]["template"]["spec"], d["spec"]["template"]["spec"]["containers"][0])
            for d in by_kind(docs, "Deployment").values() if component(d) != "triton"}


def test_tls_and_the_token_are_mounted_into_every_grpc_server_and_probes_use_the_health_port():
    for name in ("tls", "production"):
        docs = docs_of(name)
        certificates = {c["spec"]["secretName"]: c for c in by_kind(docs, "Certificate").values()}
        services = by_kind(docs, "Service")
        for service, (spec, container) in _containers(docs).items():
            env = env_of(container)
            volumes = {v["name"]: v for v in spec["volumes"]}
            mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
            assert mounts["tls"] == "/etc/conceptfreq/tls" and mounts["auth"] == "/etc/conceptfreq/auth"
            assert env["CONCEPTFREQ_TLS_CERT"]["value"] == "/etc/conceptfreq/tls/tls.crt"
            assert env["CONCEPTFREQ_TLS_KEY"]["value"] == "/etc/conceptfreq/tls/tls.key"
            assert env["CONCEPTFREQ_TLS_CLIENT_CA"]["value"] == "/etc/conceptfreq/tls/ca.crt"
            assert env["CONCEPTFREQ_AUTH_TOKEN_FILE"]["value"] == "/etc/conceptfreq/auth/token"
            secret = volumes["tls"]["secret"]["secretName"]
            if name == "production":  # cert-manager: one Certificate per service, naming its Service
                own = f"cf-conceptfreq-{service}"
                assert secret == f"{own}-tls" and own in services
                assert own in certificates[secret]["spec"]["dnsNames"]
                assert f"{own}.ml.svc.cluster.local" in certificates[secret]["spec"]["dnsNames"]
            else:
                assert secret == "conceptfreq-tls" and not certificates
            health = int(env["CONCEPTFREQ_HEALTH_PORT"]["value"])
            assert health in {p["containerPort"] for p in container["ports"]}
            for probe in ("startupProbe", "livenessProbe"):
                assert container[probe]["grpc"] == {"port": health}, (service, probe)
            # Readiness asks for the `readiness` health service, which a stalled worker turns NOT_SERVING.
            assert container["readinessProbe"]["grpc"] == {"port": health, "service": "readiness"}, service


def test_the_read_path_gets_read_only_store_credentials_and_the_rest_the_writers():
    docs = docs_of("production")
    for service, (_, container) in _containers(docs).items():
        store = env_of(container)["CONCEPTFREQ_STORE"]["valueFrom"]["secretKeyRef"]
        assert store["name"] == ("clickhouse-reader" if service in READERS else "clickhouse-writer"), service
    (job,) = by_kind(docs, "Job").values()
    assert env_of(job["spec"]["template"]["spec"]["containers"][0])["CONCEPTFREQ_STORE"]["valueFrom"]["secretKeyRef"]["name"] \
        == "clickhouse-writer", "the migration creates tables"
    defaults = manifests({})
    urls = {env_of(c)["CONCEPTFREQ_STORE"]["value"] for _, c in _containers(defaults).values()}
    assert len(urls) == 1, "without store.readOnly every service shares store.url"


def test_the_rendered_kafka_url_is_one_the_bus_adapter_accepts(tmp_path):
    from conceptfreq.adapters.bus.kafka import open_kafka

    docs = docs_of("production")
    _, parser = _containers(docs)["parser"]
    url = env_of(parser)["CONCEPTFREQ_BUS"]["value"]
    mounts = {m["mountPath"] for m in parser["volumeMounts"]}
    assert {"/etc/conceptfreq/kafka-tls", "/etc/conceptfreq/kafka-sasl"} <= mounts
    # The mounted Secrets, here: the same file names under a temporary root.
    for path in re.findall(r"(/etc/conceptfreq/[\w/.-]+)", url):
        local = tmp_path / path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text("secret-password\n" if path.endswith("password") else "PEM")
    bus = open_kafka(url.replace("/etc/conceptfreq/", f"{tmp_path}/etc/conceptfreq/"))
    assert bus.bootstrap == example("production")["kafka"]["bootstrapServers"].split(",")
    assert bus.security["security_protocol"] == "SASL_SSL" and bus.security["sasl_mechanism"] == "SCRAM-SHA-512"
    assert bus.security["sasl_plain_username"] == "conceptfreq" and bus.security["sasl_plain_password"] == "secret-password"
    assert bus.security["ssl_cafile"].endswith("/etc/conceptfreq/kafka-tls/ca.crt")
    assert bus.options["session_timeout_ms"] == 30000
    assert "password" not in url.split("?")[0], "no password in the URL itself"


def test_the_replicated_store_url_is_one_the_store_accepts():
    from urllib.parse import urlsplit

    from conceptfreq.adapters.store import _clickhouse_options

    docs = docs_of("replicated-clickhouse")
    _, parser = _containers(docs)["parser"]
    options = _clickhouse_options(urlsplit(env_of(parser)["CONCEPTFREQ_STORE"]["value"]))
    assert options["cluster"] == "conceptfreq" and options["alt_hosts"] == "clickhouse-1.clickhouse.svc:9000"
    _, query = _containers(docs)["query"]
    assert "reader@" in env_of(query)["CONCEPTFREQ_STORE"]["value"]


def test_every_setting_the_chart_passes_in_each_example_is_read_by_the_service():
    from tests.deploy.test_helm import _service_helps

    helps = _service_helps()
    problems = []
    for path in EXAMPLES:
        for service, (_, container) in _containers(docs_of(path.stem)).items():
            understood = set(re.findall(r"CONCEPTFREQ_[A-Z0-9_]+", helps[service]))
            problems += [f"{path.stem}: {service}: {v}" for v in env_of(container) if v.startswith("CONCEPTFREQ_") and v not in understood]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", [p.stem for p in EXAMPLES])
def test_helm_lint_is_clean_for_each_example(name):
    import helm_python as helm

    report = helm.lint(str(CHART), example(name), strict=True, kube_version="v1.27.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


@pytest.mark.parametrize("mechanism, keda", [("PLAIN", "plaintext"), ("SCRAM-SHA-256", "scram_sha256"), ("SCRAM-SHA-512", "scram_sha512")])
def test_keda_gets_the_sasl_mechanism_in_its_own_spelling(mechanism, keda):
    values = _set(example("production"), ("kafka", "sasl"), "mechanism", mechanism)
    for obj in by_kind(manifests(values), "ScaledObject").values():
        assert obj["spec"]["triggers"][0]["metadata"]["sasl"] == keda


def test_extra_rules_reach_every_service_policy():
    docs = docs_of("external-services")
    extra = example("external-services")["networkPolicy"]["extraEgress"][0]
    assert not any(component(d) == "triton" for d in docs), "an external Triton: none in the release"
    for name in WORKERS + READERS:
        _, egress = _rules(docs, name)
        assert extra in egress, name
    tagger = _containers(docs)["tagger"][1]
    assert env_of(tagger)["CONCEPTFREQ_INFERENCE"]["value"] == "triton://triton.inference.example.com:8001"
