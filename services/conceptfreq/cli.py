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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI, or with `command` (a module name of COMMANDS) only that subcommand: each
    command module imports what it runs, and `conceptfreq match` should not wait for the store
    client, gRPC or fsspec that other commands import."""
    parser = argparse.ArgumentParser(prog="conceptfreq", description="Concept frequencies of multimodal pretraining data.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS if command is None else [command]:
        importlib.import_module(f"conceptfreq.commands.{name}").register(subparsers)
    return parser


def named_command(argv: list[str]) -> str | None:
    """The command module the arguments name (`import-paper` -> import_paper), or None (no command,
    or an unknown one: the whole parser then says which exist)."""
    for arg in argv:
        if not arg.startswith("-"):
            name = arg.replace("-", "_")
            return name if name in COMMANDS else None
    return None


SERVICE_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(command: str, verbose: bool) -> None:
    """Services (`serve`, `python -m conceptfreq.NAME`, the image's entrypoint) log per-shard lines at
    INFO with timestamps, however they were started: they run for days, and those lines are what an
    incident needs. One-shot commands print warnings only; a dependency they give up on ends in one
    line (main), so the client libraries' per-attempt noise is kept for -v."""
    if command == "serve":
        logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=SERVICE_LOG_FORMAT, force=True)
        return
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        for noisy in ("kafka", "clickhouse_driver", "conceptfreq.adapters.bus.retry"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(named_command(argv))
    args = parser.parse_args(argv)
    configure_logging(args.command, args.verbose)
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
