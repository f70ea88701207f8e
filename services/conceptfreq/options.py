"""Flags shared by several commands and services. Every flag has an environment variable, so the
same image is configured by flags on a laptop and by env in a Helm chart."""

from __future__ import annotations

import argparse
import os

from conceptfreq.adapters.bus import DEFAULT_BUS_URL, Topics
from conceptfreq.adapters.store import default_store_url


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"CONCEPTFREQ_{name}", default)


def add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=None, metavar="URL",
                        help="count store: clickhouse://host:9000/db or chdb:///dir "
                             "(env CONCEPTFREQ_STORE; default: embedded chDB under ~/.local/share/conceptfreq)")


def store_url(args: argparse.Namespace) -> str:
    return args.store or default_store_url()


def add_vocab(parser: argparse.ArgumentParser, help_suffix: str = "") -> None:
    parser.add_argument("--vocab", default=env("VOCAB"), metavar="FILE",
                        help="vocabulary file (.txt name|alias lines, .json, .csv), or `paper` for the paper's full concept set "
                             "(env CONCEPTFREQ_VOCAB; default: the packaged downstream-class vocabulary)" + help_suffix)


def add_dataset(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--dataset", required=required, metavar="NAME", help="dataset name, e.g. cc3m")


def add_server(parser: argparse.ArgumentParser, default_port: int) -> None:
    parser.add_argument("--host", default=env("GRPC_HOST", "0.0.0.0"), help="gRPC listen address (env CONCEPTFREQ_GRPC_HOST)")
    parser.add_argument("--port", type=int, default=int(env("GRPC_PORT", str(default_port))),
                        help=f"gRPC port (env CONCEPTFREQ_GRPC_PORT; default {default_port})")
    parser.add_argument("--metrics-port", type=int, default=int(env("METRICS_PORT", "9100")),
                        help="Prometheus /metrics port, 0 to disable (env CONCEPTFREQ_METRICS_PORT; default 9100)")


def add_bus(parser: argparse.ArgumentParser) -> None:
    defaults = Topics()
    parser.add_argument("--bus", default=env("BUS", DEFAULT_BUS_URL), metavar="URL",
                        help="event bus: kafka://host:9092[,host:9092][?session_timeout_ms=...] or inproc:// "
                             f"(env CONCEPTFREQ_BUS; default {DEFAULT_BUS_URL}, in-process)")
    parser.add_argument("--topic-shards", default=env("TOPIC_SHARDS", defaults.shards), metavar="NAME",
                        help=f"topic of ShardEvents (env CONCEPTFREQ_TOPIC_SHARDS; default {defaults.shards})")
    parser.add_argument("--topic-results", default=env("TOPIC_RESULTS", defaults.results), metavar="NAME",
                        help=f"topic of StageResults (env CONCEPTFREQ_TOPIC_RESULTS; default {defaults.results})")
    parser.add_argument("--topic-dead-letter", default=env("TOPIC_DEAD_LETTER", defaults.dead_letter), metavar="NAME",
                        help=f"topic of DeadLetters (env CONCEPTFREQ_TOPIC_DEAD_LETTER; default {defaults.dead_letter})")
    parser.add_argument("--partitions", type=int, default=int(env("PARTITIONS", str(defaults.partitions))), metavar="N",
                        help="partitions of topics this command creates; caps the consumers sharing a topic "
                             f"(env CONCEPTFREQ_PARTITIONS; default {defaults.partitions})")


def topics(args: argparse.Namespace) -> Topics:
    return Topics(args.topic_shards, args.topic_results, args.topic_dead_letter, args.partitions)


def add_inference(parser: argparse.ArgumentParser, model_flags: bool = True) -> None:
    """--inference URL, and (model_flags) --model, --pretrained, --precision: which open_clip model
    embeds images and texts, and where it runs (see conceptfreq.adapters.inference)."""
    from conceptfreq.adapters.inference import DEFAULT_INFERENCE_URL

    parser.add_argument("--inference", default=env("INFERENCE", DEFAULT_INFERENCE_URL), metavar="URL",
                        help="inference backend: torch://[cpu|cuda|cuda:N] (in process) or triton://host:8001 "
                             f"(env CONCEPTFREQ_INFERENCE; default {DEFAULT_INFERENCE_URL})")
    if model_flags:
        parser.add_argument("--model", default=env("MODEL", "ViT-B-32"), metavar="NAME",
                            help="open_clip model, e.g. ViT-B-32, RN50, ViT-L-14 (env CONCEPTFREQ_MODEL; default ViT-B-32)")
        parser.add_argument("--pretrained", default=env("PRETRAINED"), metavar="TAG|FILE",
                            help="weights: an open_clip tag (e.g. laion400m_e32), a checkpoint file, or 'random' for "
                                 "seeded random weights (env CONCEPTFREQ_PRETRAINED)")
        parser.add_argument("--precision", default=env("PRECISION", "fp32"), choices=["fp32", "fp16", "bf16"],
                            help="compute precision (env CONCEPTFREQ_PRECISION; default fp32)")


def pretrained(args: argparse.Namespace) -> str | None:
    """--pretrained with 'random' (or nothing) meaning seeded random weights."""
    value = (getattr(args, "pretrained", None) or "").strip()
    return None if value in ("", "random") else value
