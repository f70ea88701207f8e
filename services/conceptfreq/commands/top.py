"""`conceptfreq top`: the most (or least) frequent concepts of a dataset."""

from __future__ import annotations

from conceptfreq.adapters.store import open_store
from conceptfreq.commands.query import print_answer
from conceptfreq.core.counting import KINDS
from conceptfreq.query.frequencies import FrequencyQueries
from conceptfreq.commands.options import add_dataset, add_store, store_url


def register(subparsers) -> None:
    parser = subparsers.add_parser("top", help="list the most (or, with --rarest, least) frequent concepts")
    add_dataset(parser)
    parser.add_argument("--k", type=int, default=20, help="how many concepts (default 20)")
    parser.add_argument("--rarest", action="store_true", help="least frequent first (concepts never seen count as 0)")
    parser.add_argument("--kind", choices=KINDS, default="text", help="which count to rank by (default text)")
    parser.add_argument("--vocabulary-version", help="the vocabulary the counts were made with (default: the latest)")
    add_store(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    store = open_store(store_url(args), read_only=True)
    try:
        print_answer(FrequencyQueries(store).top(args.dataset, args.k, args.rarest, args.kind, args.vocabulary_version), args.json)
        return 0
    finally:
        store.close()
