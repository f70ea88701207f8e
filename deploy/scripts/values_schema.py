"""Write helm/conceptfreq/values.schema.json from values.yaml, so that Helm rejects a values file
with an unknown key or a value of the wrong type instead of rendering it silently.

    python deploy/scripts/values_schema.py           # rewrite the schema
    python deploy/scripts/values_schema.py --check   # exit 1 if it is stale (tests/deploy does this)

Every key of values.yaml gets a schema from its default (its type; objects closed with
additionalProperties: false). What a default cannot say is below: maps of free keys (labels,
env, Kubernetes objects such as resources or affinity), the items of lists, and enums.
The `## @param` line of each key is its description.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "conceptfreq"
SERVICES = ("parser", "tagger", "counter", "evaluator", "query", "reporter")

STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# Keys whose value is a Kubernetes object or a map of free keys (by the key's last name).
FREE = {
    "commonLabels": STRING_MAP, "commonAnnotations": STRING_MAP, "podAnnotations": STRING_MAP, "podLabels": STRING_MAP,
    "annotations": STRING_MAP, "labels": STRING_MAP, "additionalRuleLabels": STRING_MAP, "nodeSelector": STRING_MAP,
    "env": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
    "clientOptions": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
    "resources": {"type": "object", "additionalProperties": False,
                  "properties": {"requests": {"type": "object"}, "limits": {"type": "object"}, "claims": {"type": "array"}}},
    "initResources": {"type": "object", "additionalProperties": False,
                      "properties": {"requests": {"type": "object"}, "limits": {"type": "object"}}},
    "podSecurityContext": {"type": "object"}, "containerSecurityContext": {"type": "object"}, "affinity": {"type": "object"},
}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
PEERS = {"type": "array", "items": {"type": "object", "additionalProperties": False, "properties": {
    "namespaceSelector": {"type": "object"}, "podSelector": {"type": "object"}, "ipBlock": {"type": "object"}}}}
OBJECTS = {"type": "array", "items": {"type": "object"}}
# Schemas by full path ("*" matches any one key), for what the default cannot show.
BY_PATH = {
    "image.pullPolicy": {"type": "string", "enum": ["Always", "IfNotPresent", "Never"]},
    "triton.image.pullPolicy": {"type": "string", "enum": ["Always", "IfNotPresent", "Never"]},
    "image.pullSecrets": {"type": "array", "items": {"type": "string"}},
    "image.digest": {"type": "string", "pattern": "^(sha256:[0-9a-f]{64})?$"},
    "triton.image.digest": {"type": "string", "pattern": "^(sha256:[0-9a-f]{64})?$"},
    "inference.precision": {"type": "string", "enum": ["fp32", "fp16", "bf16"]},
    "kafka.sasl.mechanism": {"type": "string", "enum": ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]},
    "triton.modelRepository.source": {"type": "string", "enum": ["generate", "image", "pvc"]},
    "triton.extraModels": {"type": "array", "items": {"type": "object", "additionalProperties": False, "required": ["model"],
                                                       "properties": {"model": {"type": "string"}, "pretrained": {"type": "string"},
                                                                      "precision": {"type": "string", "enum": ["fp32", "fp16", "bf16"]},
                                                                      "instances": {"type": "integer", "minimum": 1},
                                                                      "maxBatchSize": {"type": "integer", "minimum": 1}}}},
    "triton.extraArgs": {"type": "array", "items": {"type": "string"}},
    "triton.env": STRING_MAP,
    "triton.tolerations": OBJECTS,
    "tls.certManager.issuerRef.kind": {"type": "string", "enum": ["Issuer", "ClusterIssuer"]},
    "networkPolicy.clients": PEERS, "networkPolicy.prometheus": PEERS, "networkPolicy.dns": PEERS,
    "networkPolicy.kafka.peers": PEERS, "networkPolicy.clickhouse.peers": PEERS,
    "networkPolicy.kafka.ports": {"type": "array", "items": PORT}, "networkPolicy.clickhouse.ports": {"type": "array", "items": PORT},
    "networkPolicy.shardEgress": OBJECTS, "networkPolicy.tritonEgress": OBJECTS,
    "networkPolicy.extraEgress": OBJECTS, "networkPolicy.extraIngress": OBJECTS,
    "metrics.serviceMonitor.relabelings": OBJECTS, "metrics.serviceMonitor.metricRelabelings": OBJECTS,
    "metricsPort": PORT, "tls.healthPort": PORT,
    "*.grpcPort": PORT, "triton.ports.*": PORT,
    "*.service.type": {"type": "string", "enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
    "triton.service.type": {"type": "string", "enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
    "*.probes": {"type": "object"},  # a service's overrides of the shared `probes`
    "*.extraEnv": OBJECTS, "*.tolerations": OBJECTS, "*.topologySpreadConstraints": OBJECTS,
    "*.autoscaling.metrics": OBJECTS,
    "*.replicaCount": {"type": "integer", "minimum": 0},
}


def descriptions(text: str) -> dict[str, str]:
    return dict(re.findall(r"^\s*## @param (\S+) (.+)$", text, flags=re.M))


def _lookup(path: str) -> dict | None:
    if path in BY_PATH:
        return BY_PATH[path]
    head, _, rest = path.partition(".")
    if head in SERVICES and f"*.{rest}" in BY_PATH:
        return BY_PATH[f"*.{rest}"]
    parent, _, last = path.rpartition(".")
    if f"{parent}.*" in BY_PATH:
        return BY_PATH[f"{parent}.*"]
    return None


def schema_of(value, path: str, docs: dict[str, str]) -> dict:
    known = _lookup(path)
    last = path.rpartition(".")[2]
    if known is not None:
        schema = dict(known)
    elif last in FREE and not (last == "probes" and "." not in path):
        schema = dict(FREE[last])
    elif isinstance(value, dict):
        schema = {"type": "object", "additionalProperties": False,
                  "properties": {key: schema_of(item, f"{path}.{key}" if path else key, docs) for key, item in value.items()}}
    elif isinstance(value, bool):
        schema = {"type": "boolean"}
    elif isinstance(value, int):
        schema = {"type": "integer", "minimum": 0}
    elif isinstance(value, float):
        schema = {"type": "number"}
    elif isinstance(value, str):
        schema = {"type": "string"}
    elif isinstance(value, list):
        schema = {"type": "array"}
    else:
        raise SystemExit(f"values.yaml: {path} has a default ({value!r}) whose type has no schema; add it to BY_PATH")
    if path in docs:
        schema = {"description": docs[path], **schema}
    return schema


def build() -> dict:
    text = (CHART / "values.yaml").read_text()
    root = schema_of(yaml.safe_load(text), "", descriptions(text))
    return {"$schema": "http://json-schema.org/draft-07/schema#", "title": "conceptfreq chart values", **root}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if values.schema.json is not what values.yaml gives")
    args = parser.parse_args(argv)
    text = json.dumps(build(), indent=2) + "\n"
    target = CHART / "values.schema.json"
    if args.check:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is stale: run python deploy/scripts/values_schema.py", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
