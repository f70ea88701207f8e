"""Flags shared by the reporting commands (report, predict, budget, longtail) and how they become a
source, a selection and fit options. `--paper-artifacts DIR` reads the paper's files directly;
without it the commands read the count store.

Building the CLI imports this module for every command, so it imports nothing heavy at the top
(scipy, statsmodels, matplotlib come with the reporter's modules, inside the functions that run);
the fit and prompt names are therefore checked by the core, with messages that list the choices.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from conceptfreq.errors import UserError
from conceptfreq.commands.options import add_store, env, store_url


def csv_list(text: str | None) -> list[str] | None:
    """`a,b , c` -> ['a', 'b', 'c']; empty -> None."""
    items = [item.strip() for item in (text or "").split(",") if item.strip()]
    return items or None


def add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--paper-artifacts", default=env("PAPER_ARTIFACTS"), metavar="DIR",
                        help="read the paper's published artifacts (search_counts/, zero_shot_evaluations/) instead of "
                             "the store (env CONCEPTFREQ_PAPER_ARTIFACTS)")
    add_store(parser)


@contextmanager
def open_source(args: argparse.Namespace) -> Iterator:
    """PaperArtifacts with --paper-artifacts, else a StoreSource over --store (closed afterwards)."""
    from conceptfreq.adapters.store import open_store
    from conceptfreq.reporter.paper import PaperArtifacts
    from conceptfreq.reporter.store_source import StoreSource

    if args.paper_artifacts:
        yield PaperArtifacts(args.paper_artifacts)
        return
    store = open_store(store_url(args), read_only=True)
    try:
        yield StoreSource(store)
    finally:
        store.close()


def add_selection(parser: argparse.ArgumentParser, *, models_help: str = "model, e.g. RN50 or ViT-B-16") -> None:
    parser.add_argument("--dataset", "--pretrain", dest="dataset", metavar="NAME",
                        help="pretraining dataset, e.g. cc3m (--pretrain is the same flag, in the paper's words); "
                             "optional when the source has only one")
    parser.add_argument("--model", metavar="NAME", help=models_help)
    parser.add_argument("--count", default="matched", metavar="KIND",
                        help="text, image or matched (default), or one of the paper's methods: integrated, lemmatized, "
                             "lowercased, rampp0.7, integrated_tlemmatized_i0.5, ...")
    parser.add_argument("--rule", metavar="NAME", help="the matching or tagging rule of the counts, when a kind has several")
    parser.add_argument("--prompts", default="ensemble", help="zero-shot prompts: ensemble (default), simple or class")
    parser.add_argument("--downstream", metavar="A,B", help="downstream sets to pool (default: the paper's 18 where present)")
    parser.add_argument("--pretrained", metavar="NAME", help="the models' pretraining tag, when it differs from --dataset")


def add_fit(parser: argparse.ArgumentParser, default_method: str) -> None:
    parser.add_argument("--method", default=default_method,
                        help=f"trend fit: binned (the paper's), per-concept or logit (stays within 0-100%%); "
                             f"default {default_method}")
    parser.add_argument("--level", type=float, default=0.95, help="confidence level of intervals (default 0.95)")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples of the slope (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0): same seed, same interval")
    parser.add_argument("--robust", default="huber", help="robust slope estimator: huber (default) or theil-sen")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def dataset(args: argparse.Namespace, source) -> str:
    if args.dataset:
        return args.dataset
    known = source.datasets()
    if len(known) == 1:
        return known[0]
    raise UserError(f"name the pretraining dataset with --dataset (or --pretrain): {', '.join(known) or 'none'} available")


def selection(args: argparse.Namespace, source, model: str | None = None):
    from conceptfreq.reporter.analysis import Selection

    model = model or args.model
    if not model:
        raise UserError("name the model with --model")
    return Selection(dataset(args, source), model, args.count, args.prompts, args.rule, csv_list(args.downstream),
                     args.pretrained).validate()


def fit_options(args: argparse.Namespace):
    from conceptfreq.reporter.analysis import FitOptions

    return FitOptions(args.method, args.level, args.bootstrap, args.seed, args.robust).validate()


def read_names(path: str | None) -> list[str] | None:
    """One name per line (quotes stripped, as in the Let It Wag! list); None when no path."""
    if not path:
        return None
    file = Path(path)
    if not file.is_file():
        raise UserError(f"name list {path!r} not found")
    return [line.strip().strip('"') for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]


def print_json(value) -> None:
    from conceptfreq.core.trends import jsonable

    # NaN and infinity (e.g. "no amount of data") are not JSON: they print as null.
    json.dump(jsonable(value), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")
