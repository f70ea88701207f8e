"""Flags shared by several commands and services. Every flag has an environment variable, so the
same image is configured by flags on a laptop and by env in a Helm chart."""

from __future__ import annotations

import argparse
import os

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
                        help="vocabulary file (.txt name|alias lines, .json, .csv; env CONCEPTFREQ_VOCAB; "
                             "default: the packaged downstream-class vocabulary)" + help_suffix)


def add_dataset(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--dataset", required=required, metavar="NAME", help="dataset name, e.g. cc3m")


def add_server(parser: argparse.ArgumentParser, default_port: int) -> None:
    parser.add_argument("--host", default=env("GRPC_HOST", "0.0.0.0"), help="gRPC listen address (env CONCEPTFREQ_GRPC_HOST)")
    parser.add_argument("--port", type=int, default=int(env("GRPC_PORT", str(default_port))),
                        help=f"gRPC port (env CONCEPTFREQ_GRPC_PORT; default {default_port})")
    parser.add_argument("--metrics-port", type=int, default=int(env("METRICS_PORT", "9100")),
                        help="Prometheus /metrics port, 0 to disable (env CONCEPTFREQ_METRICS_PORT; default 9100)")
