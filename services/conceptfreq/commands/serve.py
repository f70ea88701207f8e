"""`conceptfreq serve SERVICE`: run one of the long-lived services (also `python -m conceptfreq.SERVICE`).

Each service's flags are defined here, and become its typed configuration (pipeline/config.py)
before its `run` sees them; every flag has a CONCEPTFREQ_* environment fallback."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable

from conceptfreq.commands.options import (add_bus, add_eval_topic, add_inference, add_server, add_store, add_tagging, add_vocab,
                                          config_from, env)
from conceptfreq.core.matching import DEFAULT_METHOD, MATCHERS
from conceptfreq.pipeline import config


def _query(parser: argparse.ArgumentParser, port: int) -> None:
    add_store(parser)
    add_server(parser, port)
    parser.add_argument("--max-staleness", dest="max_staleness_s", type=float, default=float(env("QUERY_MAX_STALENESS", "1.0")),
                        metavar="SECONDS", help="how often the in-memory totals look for newer counts; answers are at most this "
                                                "much older than the last counted shard (env CONCEPTFREQ_QUERY_MAX_STALENESS; default 1)")


def _reporter(parser: argparse.ArgumentParser, port: int) -> None:
    add_store(parser)
    parser.add_argument("--paper-artifacts", default=env("PAPER_ARTIFACTS"), metavar="DIR",
                        help="serve the paper's artifacts instead of the store (env CONCEPTFREQ_PAPER_ARTIFACTS)")
    add_server(parser, port)


def _worker(parser: argparse.ArgumentParser, port: int, name: str, vocab_help: str | None = None) -> None:
    """What every bus worker takes: the bus, the store, its server and its consumer group."""
    add_bus(parser)
    add_store(parser)
    if vocab_help:
        add_vocab(parser, vocab_help)
    add_server(parser, port)
    parser.add_argument("--group", default=env(f"{name.upper()}_GROUP", name),
                        help=f"consumer group (env CONCEPTFREQ_{name.upper()}_GROUP; default {name})")


def _parser(parser: argparse.ArgumentParser, port: int) -> None:
    _worker(parser, port, "parser", "; used by gRPC requests without vocabulary_version (shard events name their own)")
    parser.add_argument("--method", choices=sorted(MATCHERS), default=env("PARSER_METHOD", DEFAULT_METHOD),
                        help=f"caption matching method (env CONCEPTFREQ_PARSER_METHOD; default {DEFAULT_METHOD})")


def _counter(parser: argparse.ArgumentParser, port: int) -> None:
    _worker(parser, port, "counter")
    parser.add_argument("--batch-seconds", type=float, default=float(env("COUNTER_BATCH_SECONDS", "1.0")),
                        help="longest wait before a batch of results is folded into the totals and committed "
                             "(env CONCEPTFREQ_COUNTER_BATCH_SECONDS; default 1.0)")


def _tagger(parser: argparse.ArgumentParser, port: int) -> None:
    _worker(parser, port, "tagger", "; used by gRPC requests without vocabulary_version (shard events name their own)")
    add_tagging(parser)


def _evaluator(parser: argparse.ArgumentParser, port: int) -> None:
    _worker(parser, port, "evaluator", "; used by StartEvaluation requests without vocabulary_version")
    add_eval_topic(parser)
    add_inference(parser, model_flags=False)
    parser.add_argument("--batch-size", type=int, default=int(env("EVALUATOR_BATCH_SIZE", "0")) or None,
                        help="images per forward pass (env CONCEPTFREQ_EVALUATOR_BATCH_SIZE; default: the backend's)")
    parser.add_argument("--workers", type=int, default=int(env("EVALUATOR_WORKERS", "4")),
                        help="image decoding threads (env CONCEPTFREQ_EVALUATOR_WORKERS; default 4)")
    parser.add_argument("--cache-dir", default=env("CACHE_DIR"),
                        help="text-embedding cache (env CONCEPTFREQ_CACHE_DIR; default ~/.cache/conceptfreq)")


# name -> (module with DEFAULT_PORT and run(config), its flags, its configuration)
SERVICES: dict[str, tuple[str, Callable[[argparse.ArgumentParser, int], None], type]] = {
    "query": ("conceptfreq.query.main", _query, config.QueryServiceConfig),
    "parser": ("conceptfreq.parser.main", _parser, config.ParserServiceConfig),
    "counter": ("conceptfreq.counter.main", _counter, config.CounterServiceConfig),
    "tagger": ("conceptfreq.tagger.main", _tagger, config.TaggerServiceConfig),
    "reporter": ("conceptfreq.reporter.main", _reporter, config.ReporterServiceConfig),
    "evaluator": ("conceptfreq.evaluator.main", _evaluator, config.EvaluatorServiceConfig),
}


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="run a service: " + ", ".join(SERVICES))
    services = parser.add_subparsers(dest="service", required=True, metavar="SERVICE")
    for name, (module_name, add_flags, config_class) in SERVICES.items():
        module = importlib.import_module(module_name)
        sub = services.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        add_flags(sub, module.DEFAULT_PORT)
        sub.set_defaults(func=lambda args, run=module.run, cls=config_class: run(config_from(cls, args)))


def main_for(name: str) -> None:
    """Entry point of `python -m conceptfreq.NAME`."""
    from conceptfreq.cli import main

    # Logging is set up by main, as for `conceptfreq serve NAME` (cli.configure_logging).
    sys.exit(main(["serve", name, *sys.argv[1:]]))
