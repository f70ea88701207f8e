"""The Grafana dashboard and the Prometheus rules, checked against the real thing: a real
Prometheus 2.42 scrapes
- a real `conceptfreq serve query` process (gRPC metrics from real calls), as job `query`;
- this process, as job `parser`: the pipeline metrics of conceptfreq.adapters.metrics, driven as
  the services drive them, and the inference client metrics of a real TritonBackend;
- a real Triton Inference Server (devservers.triton) serving the model repository that the Helm
  chart's init container script generates, as job `triton`.
Every dashboard query must parse, evaluate and return data; every alert rule must evaluate
without error; promtool checks and unit-tests the rules.
"""

from __future__ import annotations

import importlib.util
import json
import math
import random
import re
import subprocess
import sys
import threading
import time

import grpc
import pytest
import yaml

from conceptfreq.devservers import prometheus_server
from conceptfreq.devservers._process import free_port, port_open, stop, wait_until
from tests.deploy.conftest import CHART, REPO, RULES, generate_triton_repository, tool

DASHBOARD = CHART / "dashboards" / "conceptfreq.json"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
# Grafana's built-in variables, as Grafana would fill them for a short time range on a 1 s scrape.
GRAFANA_VARIABLES = {"$__rate_interval": "10s", "$__range": "1m", "$__interval": "2s"}
# Triton exports these only where NVML sees a GPU; on these CPU machines they cannot have data.
GPU_ONLY = {"nv_gpu_utilization", "nv_gpu_memory_used_bytes", "nv_gpu_memory_total_bytes", "nv_gpu_power_usage",
            "nv_energy_consumption"}


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title / refId, PromQL) of every target of every panel."""
    return [(f"{panel['title']} / {target['refId']}", target["expr"])
            for panel in dashboard["panels"] if panel["type"] != "row" for target in panel["targets"]]


def variables(dashboard: dict) -> dict[str, dict]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def concrete(expr: str, dashboard: dict) -> str:
    """The query Grafana would send with every variable at its default (All = `.*`)."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    for name, variable in variables(dashboard).items():
        if variable["type"] == "query":
            expr = expr.replace(f"${name}", variable["allValue"])
    assert "$" not in expr, f"unresolved variable in {expr}"
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (as exposed: conceptfreq_samples_total, ..._bucket)."""
    return set(re.findall(r"\b((?:conceptfreq|nv)_[a-z0-9_]+)\b", expr))


def exposed_conceptfreq_metrics() -> set[str]:
    """The series names that conceptfreq.adapters.metrics exposes: counters gain _total,
    histograms are read through _bucket, _sum and _count."""
    import prometheus_client

    from conceptfreq.adapters import metrics

    names = set()
    for collector in vars(metrics).values():
        if isinstance(collector, prometheus_client.metrics.MetricWrapperBase):
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(collector._type, ("",))
            names |= {collector._name + suffix for suffix in suffixes}
    return names


# --- static ----------------------------------------------------------------------------------------

def test_dashboard_copies_are_generated_from_dashboard_py():
    spec = importlib.util.spec_from_file_location("dashboard_builder", REPO / "deploy" / "grafana" / "dashboard.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    assert builder.main(["--check"]) == 0, "run: python deploy/grafana/dashboard.py"
    assert (REPO / "deploy" / "grafana" / "conceptfreq.json").read_bytes() == DASHBOARD.read_bytes()


def test_dashboard_is_well_formed_grafana_json():
    dashboard = load_dashboard()
    assert dashboard["uid"] == "conceptfreq" and dashboard["schemaVersion"] >= 36
    assert variables(dashboard)["datasource"]["type"] == "datasource"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cell = {(grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])}
        assert not cell & cells, f"{panel['title']} overlaps another panel"
        cells |= cell
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["description"], f"{panel['title']} says nothing about what it shows"
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
    titles = " | ".join(panel["title"] for panel in dashboard["panels"])
    for required in ("Samples/s by stage", "Shards finished", "Consumer lag", "Shard latency", "Skipped samples",
                     "Requests/s by method", "Errors/s", "Latency by method", "Retries", "GPU utilization"):
        assert required in titles


def test_every_metric_the_dashboard_and_rules_read_exists():
    """A renamed metric would leave a panel silently empty; catch it by name, GPU or not."""
    ours = exposed_conceptfreq_metrics()
    triton = {"nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
              "nv_inference_exec_count", "nv_inference_queue_duration_us", "nv_inference_compute_infer_duration_us",
              "nv_inference_request_duration_us"} | GPU_ONLY
    exprs = [expr for _, expr in dashboard_queries(load_dashboard())]
    exprs += [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    exprs += [v["definition"] for v in variables(load_dashboard()).values() if v["type"] == "query"]
    for expr in exprs:
        for name in metric_names(expr):
            assert name in ours or name in triton, f"{name} (in {expr!r}) is neither conceptfreq's nor Triton's"


def test_promtool_checks_the_rules_and_the_one_machine_config():
    promtool = tool("promtool")
    for argv in (["check", "rules", str(RULES)], ["check", "config", str(PROMETHEUS_CONFIG)],
                 ["test", "rules", str(RULES.parent / "rules.test.yml")]):
        result = subprocess.run([promtool, *argv], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"promtool {' '.join(argv)}:\n{result.stdout}{result.stderr}"


# --- live: real Prometheus, real services ----------------------------------------------------------

def _simulate_pipeline(stop_event: threading.Event) -> None:
    """Drive the pipeline metrics as the parser, tagger and counter do (same objects, same labels)."""
    from conceptfreq.adapters import metrics

    rng = random.Random(7)
    lag = 500
    for tick in range(3000):  # bounded: about 5 minutes at most
        if stop_event.wait(0.1):
            return
        for stage, reason in (("text", "no_caption"), ("image", "undecodable_image")):
            metrics.SAMPLES.labels(stage, "cc3m").inc(1000)
            metrics.SKIPPED.labels(stage, "cc3m", reason).inc(rng.randint(0, 5))
            metrics.SHARDS.labels(stage, "cc3m", "failed" if tick % 10 == 0 else "done").inc()
            metrics.SHARD_SECONDS.labels(stage).observe(rng.uniform(0.5, 5))
            metrics.IN_FLIGHT.labels(stage).set(rng.randint(1, 3))
            metrics.RETRIES.labels(stage, "store").inc(rng.randint(0, 1))
        metrics.SHARDS.labels("counted", "cc3m", "done").inc()
        metrics.SHARD_END_TO_END.observe(rng.uniform(1, 60))
        lag = max(0, lag + rng.randint(-20, 25))
        metrics.CONSUMER_LAG.labels("parser", "shards").set(lag)
        metrics.CONSUMER_LAG.labels("tagger", "shards").set(lag * 2)
        metrics.DEAD_LETTERS.labels("parser", "DecodeError").inc(rng.randint(0, 1))
        metrics.INFERENCE_RETRIES.labels("triton", "UNAVAILABLE").inc(rng.randint(0, 1))
        metrics.EVAL_TOP1.labels("conceptfreq-tiny", "seed0", "cifar10", "ensemble").set(min(100, 10 + tick / 10))


def _traffic(stop_event: threading.Event, grpc_port: int, backend) -> None:
    """Real calls to the query service (OK and refused ones) and to Triton, a few per second."""
    import numpy as np
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from conceptfreq.v1 import frequency_pb2 as pb
    from conceptfreq.v1 import frequency_pb2_grpc as pb_grpc

    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        frequencies = pb_grpc.FrequencyServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(1200):  # bounded: about 5 minutes at most
            if stop_event.wait(0.25):
                return
            health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            frequencies.ListDatasets(pb.ListDatasetsRequest(), timeout=5)
            try:
                frequencies.TopConcepts(pb.TopConceptsRequest(dataset="no-such-dataset", kind="colour"), timeout=5)
            except grpc.RpcError:
                pass  # refused on purpose: the dashboard's error panel needs a non-OK code
            backend.encode_texts(["a photo of a dog", "a photo of a cat"])
            backend.encode_images(np.zeros((2, 3, *backend.image_size), np.float32))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Prometheus, with deploy/prometheus/prometheus.yml's jobs and rules.yml, scraping the query
    service, this process and Triton (see the module docstring). The slow starts (the query
    service's imports, Triton loading two towers) overlap."""
    import prometheus_client

    from conceptfreq.adapters.inference import open_inference
    from conceptfreq.adapters.inference.models import tiny_checkpoint
    from conceptfreq.devservers.triton import TritonServer

    root = tmp_path_factory.mktemp("stack")
    grpc_port, query_metrics = free_port(), free_port()
    log = root / "query.log"
    query = subprocess.Popen(
        [sys.executable, "-m", "conceptfreq.cli", "serve", "query", "--store", f"chdb://{root / 'store'}",
         "--host", "127.0.0.1", "--port", str(grpc_port), "--metrics-port", str(query_metrics)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    exporter, exporter_thread = prometheus_client.start_http_server(0, addr="127.0.0.1")
    (root / "triton").mkdir()
    triton = TritonServer(root / "models", root / "triton")
    stop_event = threading.Event()
    threads, backend, failures = [], None, []
    try:
        # The project's tiny CLIP (no weights can be downloaded here), through the chart's own script.
        checkpoint = tiny_checkpoint(root / "weights")
        values = {"inference": {"model": "conceptfreq-tiny", "pretrained": str(checkpoint), "precision": "fp32"},
                  "triton": {"gpus": 0}}
        generate_triton_repository(values, root / "models", root / "cache")
        starting = threading.Thread(target=lambda: _record(failures, triton.start), daemon=True)
        starting.start()  # waits until every model is loaded, or fails
        targets = {"query": query_metrics, "parser": exporter.server_port, "triton": triton.metrics_port}
        jobs = [{**job, "static_configs": [{"targets": [f"127.0.0.1:{targets[job['job_name']]}"]}]}
                for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"] if job["job_name"] in targets]
        with prometheus_server(jobs, rule_files=[RULES]) as prometheus:
            wait_until(lambda: port_open(grpc_port) and port_open(query_metrics), query, "conceptfreq serve query", log, 60)
            starting.join(triton.start_timeout_s)
            assert not failures and triton.process and triton.process.poll() is None, f"Triton did not start: {failures}"
            # What the tagger does with CONCEPTFREQ_INFERENCE/_MODEL/_PRETRAINED: find its towers by name.
            backend = open_inference(triton.url, "conceptfreq-tiny", str(checkpoint))
            threads = [threading.Thread(target=_simulate_pipeline, args=(stop_event,), daemon=True),
                       threading.Thread(target=_traffic, args=(stop_event, grpc_port, backend), daemon=True)]
            for thread in threads:
                thread.start()
            # enough scrapes of each target's traffic for rate() over GRAFANA_VARIABLES' windows
            for metric in ("conceptfreq_samples_total", "conceptfreq_grpc_requests_total",
                           "conceptfreq_inference_seconds_count", "nv_inference_request_success"):
                prometheus.wait_for_samples(f"sum({metric})", count=4, timeout=30)
            for _ in range(50):  # and at least one evaluation of every rule group
                groups = prometheus.api("rules")["groups"]
                if groups and all(not group.get("lastEvaluation", "0001").startswith("0001") for group in groups):
                    break
                time.sleep(0.2)
            yield prometheus
            stop_event.set()
            for thread in threads:
                thread.join(10)
    finally:
        stop_event.set()
        for thread in threads:
            thread.join(10)
        if backend is not None:
            backend.close()
        if query.poll() is None:
            query.terminate()  # drains while Triton stops
        triton.stop()
        exporter.shutdown()
        exporter_thread.join(5)
        stop(query)


def _record(failures: list, start) -> None:
    try:
        start()
    except Exception as error:  # noqa: BLE001 - reported by the fixture, in the test's thread
        failures.append(error)


def test_every_dashboard_query_runs_and_returns_data(stack):
    dashboard = load_dashboard()
    empty, nan_only = [], []
    for where, expr in dashboard_queries(dashboard):
        result = stack.query(concrete(expr, dashboard))  # raises PrometheusError on a bad query
        if not result:
            if not metric_names(expr) <= GPU_ONLY:
                empty.append(f"{where}: {expr}")
            continue
        values = [float(series["value"][1]) for series in result]
        if all(math.isnan(value) for value in values):
            nan_only.append(f"{where}: {expr}")
    assert not empty, "queries with no data although their metrics were emitted:\n" + "\n".join(empty)
    assert not nan_only, "queries whose every value is NaN:\n" + "\n".join(nan_only)


def test_dashboard_variables_find_their_values(stack):
    dashboard = load_dashboard()
    for name, variable in variables(dashboard).items():
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])
        assert match, variable["definition"]
        selector, label = concrete(match.group(1), dashboard), match.group(2)
        values = stack.api(f"label/{label}/values", **{"match[]": selector})
        # one machine has no namespace label; the dataset comes from the pipeline metrics
        assert values == (["cc3m"] if name == "dataset" else []), (name, values)


def test_gpu_panels_are_the_only_ones_without_data_on_a_cpu_machine(stack):
    gpu_series = stack.query('{__name__=~"nv_gpu_.*"}')
    assert not gpu_series, "this machine has a GPU after all: the GPU panels can be checked for data"


def test_triton_serves_the_chart_generated_repository_under_the_names_clients_use(stack):
    """The init container's repository, loaded by real Triton, has the towers the tagger asks for."""
    from conceptfreq.adapters.inference.repository import triton_model_name

    served = {series["metric"]["model"] for series in stack.query("nv_inference_request_success")}
    expected = {triton_model_name("conceptfreq-tiny", "/weights/conceptfreq-tiny-seed0.pt", tower) for tower in ("image", "text")}
    assert served == expected


def test_alert_rules_evaluate_without_errors_on_real_series(stack):
    groups = stack.api("rules")["groups"]
    expected = yaml.safe_load(RULES.read_text())["groups"]
    assert sorted(g["name"] for g in groups) == sorted(g["name"] for g in expected)
    for group in groups:
        for rule in group["rules"]:
            assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"
