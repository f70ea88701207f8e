"""The `conceptfreq` command. Each subcommand lives in conceptfreq/commands/NAME.py and exposes
`register(subparsers)`; errors that users can fix exit with one line, not a traceback."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from conceptfreq.errors import UnavailableError, UserError

# Order here is the order in `conceptfreq --help`.
COMMANDS = ["match", "count", "query", "top", "vocab", "serve", "migrate", "ingest", "status", "retry", "report", "import_paper", "longtail", "predict", "budget", "evaluate", "results", "retag", "export_triton", "synth", "train_clip", "world_report"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="conceptfreq", description="Concept frequencies of multimodal pretraining data.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"conceptfreq.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"conceptfreq {args.command}: {error}", file=sys.stderr)
        return 2
    except UnavailableError as error:
        print(f"conceptfreq {args.command}: {error}", file=sys.stderr)
        return 3
    except BrokenPipeError:  # `conceptfreq top | head`: the reader left; not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
