"""Build the conceptfreq Grafana dashboard (dashboard as code, standard library only).

    python deploy/grafana/dashboard.py          # write both copies
    python deploy/grafana/dashboard.py --check  # exit 1 if a copy is stale (tests/deploy runs this)

Writes the canonical helm/conceptfreq/dashboards/conceptfreq.json, which the chart ships in a
ConfigMap for Grafana's sidecar (a chart can read only files inside its own directory), and the
identical deploy/grafana/conceptfreq.json for importing by hand. Edit this file, not the JSON.

Every query reads the metrics of conceptfreq/adapters/metrics.py or Triton's own, filtered by the
`namespace` and `dataset` variables. Both default to All (`.*`), which also matches series without
the label, so the same dashboard reads a cluster (the ServiceMonitor adds `namespace`) and one
machine (deploy/prometheus/prometheus.yml). tests/deploy/test_dashboard.py runs every query against
a real Prometheus scraping real conceptfreq and Triton processes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUTPUTS = (REPO / "helm/conceptfreq/dashboards/conceptfreq.json", REPO / "deploy/grafana/conceptfreq.json")

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
NS = 'namespace=~"$namespace"'
NS_DATASET = f'{NS}, dataset=~"$dataset"'
# Kubernetes probes call Health/Check every few seconds on every pod; they would drown the real traffic.
GRPC = f'{NS}, service!="grpc.health.v1.Health"'
RATE = "[$__rate_interval]"


def target(expr: str, legend: str = "", ref: str = "A") -> dict:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "range": True, "refId": ref}


def targets(*pairs: tuple[str, str]) -> list[dict]:
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(pairs)]


def timeseries(title: str, description: str, queries: list[dict], unit: str = "short", *, stack: bool = False,
               width: int = 12, height: int = 8, min_zero: bool = True) -> dict:
    defaults: dict = {
        "unit": unit,
        "custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 15 if stack else 5, "showPoints": "never",
                   "spanNulls": True, "stacking": {"mode": "normal" if stack else "none", "group": "A"}},
    }
    if min_zero:
        defaults["min"] = 0
    return {
        "type": "timeseries", "title": title, "description": description, "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                               "calcs": ["mean", "max", "lastNotNull"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
        "targets": queries, "_size": (width, height),
    }


def stat(title: str, description: str, queries: list[dict], unit: str = "short", *, red_above: float | None = None,
         decimals: int | None = None) -> dict:
    steps = [{"color": "green", "value": None}]
    if red_above is not None:
        steps.append({"color": "red", "value": red_above})
    defaults: dict = {"unit": unit, "color": {"mode": "thresholds"}, "thresholds": {"mode": "absolute", "steps": steps}}
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat", "title": title, "description": description, "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "value", "graphMode": "area", "justifyMode": "auto", "textMode": "value_and_name",
                    "orientation": "auto"},
        "targets": queries, "_size": (4, 4),
    }


def quantiles(metric: str, by: str, selector: str) -> list[tuple[str, str]]:
    """p50 and p99 of a histogram, per `by`."""
    return [(f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{{{selector}}}{RATE})))",
             f"p{int(q * 100)} {{{{{by.split(',')[-1].strip()}}}}}") for q in (0.5, 0.99)]


def per_request(numerator: str, denominator: str, scale: str = "") -> str:
    """Mean of a cumulative Triton duration per request, per model."""
    return (f"sum by (model) (rate({numerator}{{{NS}}}{RATE})){scale}\n/\n"
            f"sum by (model) (rate({denominator}{{{NS}}}{RATE}))")


def overview() -> list[dict]:
    return [
        stat("Samples/s", "Samples leaving each stage per second: text (parser), image (tagger).",
             targets((f"sum by (stage) (rate(conceptfreq_samples_total{{{NS_DATASET}}}{RATE}))", "{{stage}}"))),
        stat("Shards done", "Shards finished successfully in the time range, by stage.",
             targets((f'sum by (stage) (increase(conceptfreq_shards_total{{{NS_DATASET}, state="done"}}[$__range]))',
                      "{{stage}}")), decimals=0),
        stat("Shards failed", "Shards that ended failed (with a reason in the shard status table) in the time range.",
             targets((f'sum(increase(conceptfreq_shards_total{{{NS_DATASET}, state="failed"}}[$__range])) or vector(0)',
                      "failed")), red_above=1, decimals=0),
        stat("Consumer lag", "Messages waiting in Kafka, by consumer group.",
             targets((f"sum by (group) (conceptfreq_consumer_lag{{{NS}}})", "{{group}}")), decimals=0),
        stat("Shards in flight", "Shards being processed right now, by stage.",
             targets((f"sum by (stage) (conceptfreq_shards_in_flight{{{NS}}})", "{{stage}}")), decimals=0),
        stat("Dead letters", "Messages set aside on the dead-letter topic in the time range.",
             targets((f"sum(increase(conceptfreq_dead_letters_total{{{NS}}}[$__range])) or vector(0)", "dead letters")),
             red_above=1, decimals=0),
    ]


def pipeline() -> list[dict]:
    return [
        timeseries("Samples/s by stage", "The pipeline's throughput: samples parsed (text) and tagged (image) per second.",
                   targets((f"sum by (stage) (rate(conceptfreq_samples_total{{{NS_DATASET}}}{RATE}))", "{{stage}}")),
                   "short"),
        timeseries("Shards finished by stage and state", "Shards per minute reaching done or failed.",
                   targets((f"sum by (stage, state) (rate(conceptfreq_shards_total{{{NS_DATASET}}}{RATE})) * 60",
                            "{{stage}} {{state}}")), "short", stack=True),
        timeseries("Consumer lag", "Messages behind the partition high-watermark, by group and topic. "
                   "Steady growth means the consumers fall behind: add replicas (HPA) or check the slowest stage.",
                   targets((f"sum by (group, topic) (conceptfreq_consumer_lag{{{NS}}})", "{{group}} on {{topic}}"))),
        timeseries("Shard latency", "Time to process one shard, p50 and p99 by stage.",
                   targets(*quantiles("conceptfreq_shard_seconds", "stage", NS)), "s"),
        timeseries("Skipped samples by reason", "Samples skipped inside good shards (no caption, undecodable image...), per second.",
                   targets((f"sum by (stage, reason) (rate(conceptfreq_samples_skipped_total{{{NS_DATASET}}}{RATE}))",
                            "{{stage}}: {{reason}}")), "short", stack=True),
        timeseries("Retries by stage and target", "Transient failures retried per second (store, bus, inference).",
                   targets((f"sum by (stage, target) (rate(conceptfreq_retries_total{{{NS}}}{RATE}))",
                            "{{stage}} → {{target}}")), "short", stack=True),
        timeseries("Shards in flight", "Shards being processed now, by stage.",
                   targets((f"sum by (stage) (conceptfreq_shards_in_flight{{{NS}}})", "{{stage}}")), "short", width=8),
        timeseries("Shard end-to-end latency", "From a shard's announcement (ingest) to its counting, p50 and p99.",
                   targets(*[(f"histogram_quantile({q}, sum by (le) (rate(conceptfreq_shard_end_to_end_seconds_bucket{{{NS}}}{RATE})))",
                              f"p{int(q * 100)}") for q in (0.5, 0.99)]), "s", width=8),
        timeseries("Dead letters", "Messages sent to the dead-letter topic per second, by group and error type.",
                   targets((f"sum by (group, error_type) (rate(conceptfreq_dead_letters_total{{{NS}}}{RATE}))",
                            "{{group}}: {{error_type}}")), "short", width=8),
    ]


def grpc() -> list[dict]:
    return [
        timeseries("Requests/s by method", "gRPC calls served per second (health checks left out).",
                   targets((f"sum by (service, method) (rate(conceptfreq_grpc_requests_total{{{GRPC}}}{RATE}))",
                            "{{method}}")), "reqps", width=8),
        timeseries("Errors/s by method and code", "Calls that ended with a status other than OK. INVALID_ARGUMENT and "
                   "NOT_FOUND are the caller's; INTERNAL and UNAVAILABLE are ours.",
                   targets((f'sum by (method, code) (rate(conceptfreq_grpc_requests_total{{{GRPC}, code!="OK"}}{RATE}))',
                            "{{method}} {{code}}")), "reqps", stack=True, width=8),
        timeseries("Latency by method", "gRPC request latency, p50 and p99 by method.",
                   targets(*quantiles("conceptfreq_grpc_request_seconds", "service, method", GRPC)), "s", width=8),
    ]


def inference() -> list[dict]:
    return [
        timeseries("Inference call latency", "Time of one encode call from the tagger or the evaluator to its backend "
                   "(triton:// or torch://), p50 and p99 by backend and tower.",
                   targets(*[(f"histogram_quantile({q}, sum by (le, backend, tower) "
                              f"(rate(conceptfreq_inference_seconds_bucket{{{NS}}}{RATE})))",
                              f"p{int(q * 100)} {{{{backend}}}} {{{{tower}}}}") for q in (0.5, 0.99)]), "s", width=8),
        timeseries("Inference calls/s and retries", "Encode calls per second by tower, and transient backend failures "
                   "retried per second by status code.",
                   targets((f"sum by (backend, tower) (rate(conceptfreq_inference_seconds_count{{{NS}}}{RATE}))",
                            "{{backend}} {{tower}} calls"),
                           (f"sum by (backend, code) (rate(conceptfreq_inference_retries_total{{{NS}}}{RATE}))",
                            "{{backend}} retries {{code}}")), "reqps", width=8),
        timeseries("Zero-shot top-1 accuracy", "Overall top-1 accuracy of each evaluation, as far as it got: the "
                   "y axis of the paper's log-linear trends, per model and downstream dataset.",
                   targets((f"max by (model, pretrained, eval_dataset) (conceptfreq_eval_top1_accuracy{{{NS}}})",
                            "{{model}} {{pretrained}} on {{eval_dataset}}")), "percent", width=8),
    ]


def triton() -> list[dict]:
    return [
        timeseries("Inference requests/s", "Successful and failed requests per second, by model.",
                   targets((f"sum by (model) (rate(nv_inference_request_success{{{NS}}}{RATE}))", "{{model}} ok"),
                           (f"sum by (model) (rate(nv_inference_request_failure{{{NS}}}{RATE}))", "{{model}} failed")),
                   "reqps", width=8),
        timeseries("Inferences/s and batch size", "Items inferred per second (images or captions), and the mean batch "
                   "Triton's dynamic batcher formed: small batches on a busy GPU mean the taggers send too little.",
                   targets((f"sum by (model) (rate(nv_inference_count{{{NS}}}{RATE}))", "{{model}} items/s"),
                           (f"sum by (model) (rate(nv_inference_count{{{NS}}}{RATE}))\n/\n"
                            f"sum by (model) (rate(nv_inference_exec_count{{{NS}}}{RATE}))", "{{model}} batch")),
                   "short", width=8),
        timeseries("Compute and queue time per request", "Mean time a request spends computing and waiting in Triton's "
                   "queue. Queue time rising with compute time flat means the GPUs are saturated.",
                   targets((per_request("nv_inference_compute_infer_duration_us", "nv_inference_request_success", " / 1000"),
                            "{{model}} compute"),
                           (per_request("nv_inference_queue_duration_us", "nv_inference_request_success", " / 1000"),
                            "{{model}} queue")), "ms", width=8),
        timeseries("GPU utilization", "Share of time each GPU was busy (Triton's nv_gpu_utilization, 0-1).",
                   targets((f"avg by (gpu_uuid) (nv_gpu_utilization{{{NS}}})", "{{gpu_uuid}}")), "percentunit"),
        timeseries("GPU memory used", "Memory in use on each GPU.",
                   targets((f"sum by (gpu_uuid) (nv_gpu_memory_used_bytes{{{NS}}})", "{{gpu_uuid}}")), "bytes"),
    ]


def variable(name: str, label: str, query: str) -> dict:
    return {
        "name": name, "label": label, "type": "query", "datasource": DATASOURCE,
        "definition": query, "query": {"query": query, "refId": f"{name}-variable"},
        # `.*` rather than the list of values: it also matches series without the label (one machine).
        "includeAll": True, "allValue": ".*", "multi": True, "refresh": 2, "sort": 1, "hide": 0, "regex": "",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": [],
    }


def layout(rows: list[tuple[str, list[dict]]]) -> list[dict]:
    """Rows of panels, each row packed left to right on Grafana's 24-column grid."""
    panels, y, next_id = [], 0, 1
    for title, row_panels in rows:
        panels.append({"type": "row", "title": title, "collapsed": False, "id": next_id, "panels": [],
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
        next_id, y, x, row_height = next_id + 1, y + 1, 0, 0
        for panel in row_panels:
            width, height = panel.pop("_size")
            if x + width > 24:
                x, y, row_height = 0, y + row_height, 0
            panel["id"] = next_id
            panel["gridPos"] = {"h": height, "w": width, "x": x, "y": y}
            next_id, x, row_height = next_id + 1, x + width, max(row_height, height)
            panels.append(panel)
        y += row_height
    return panels


def dashboard() -> dict:
    return {
        "uid": "conceptfreq",
        "title": "conceptfreq",
        "description": "Pipeline throughput, shards, consumer lag, gRPC and Triton of conceptfreq.",
        "tags": ["conceptfreq", "kafka", "triton"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "version": 1,
        "links": [],
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1, "regex": ""},
            variable("namespace", "Namespace", "label_values(conceptfreq_samples_total, namespace)"),
            variable("dataset", "Dataset", 'label_values(conceptfreq_samples_total{namespace=~"$namespace"}, dataset)'),
        ]},
        "panels": layout([
            ("Overview", overview()),
            ("Pipeline", pipeline()),
            ("gRPC", grpc()),
            ("Inference and evaluation", inference()),
            ("Triton Inference Server", triton()),
        ]),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a written copy differs from this file's dashboard")
    args = parser.parse_args(argv)
    text = render()
    stale = [path for path in OUTPUTS if not path.exists() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(REPO)} is stale: run python deploy/grafana/dashboard.py", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
