"""`conceptfreq serve SERVICE`: run one of the long-lived services (also `python -m conceptfreq.SERVICE`)."""

from __future__ import annotations

import importlib
import logging
import sys

# Each module exposes add_arguments(parser) and run(args); flags all have CONCEPTFREQ_* env fallbacks.
SERVICES = {
    "query": "conceptfreq.query.main",
    "parser": "conceptfreq.parser.main",
    "counter": "conceptfreq.counter.main",
    "tagger": "conceptfreq.tagger.main",
    "reporter": "conceptfreq.reporter.main",
    "evaluator": "conceptfreq.evaluator.main",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="run a service: " + ", ".join(SERVICES))
    services = parser.add_subparsers(dest="service", required=True, metavar="SERVICE")
    for name, module_name in SERVICES.items():
        module = importlib.import_module(module_name)
        sub = services.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(sub)
        sub.set_defaults(func=module.run)


def main_for(name: str) -> None:
    """Entry point of `python -m conceptfreq.NAME`."""
    from conceptfreq.cli import main

    # Services run for days: timestamps make per-shard log lines usable in an incident.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(main(["serve", name, *sys.argv[1:]]))
