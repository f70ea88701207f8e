"""`conceptfreq query`: the text, image and matched counts of named concepts."""

from __future__ import annotations

import json
import sys

from conceptfreq.adapters.store import open_store
from conceptfreq.query.frequencies import Answer, FrequencyQueries
from conceptfreq.commands.options import add_dataset, add_store, store_url


def register(subparsers) -> None:
    parser = subparsers.add_parser("query", help="print the counts of concepts in a dataset")
    add_dataset(parser)
    parser.add_argument("concepts", nargs="+", metavar="CONCEPT", help="concept names or aliases (quote multi-word names)")
    parser.add_argument("--vocabulary-version", help="the vocabulary the counts were made with (default: the latest)")
    parser.add_argument("--rule", default=None, metavar="RULE",
                        help="tagging rule of the image and matched counts, e.g. softmax:p=0.5 (default: the dataset's "
                             "active rule, the latest set by the tagger or `retag`)")
    add_store(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def print_answer(answer: Answer, as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer.to_json(), indent=2, ensure_ascii=False))
        return
    width = max([len(r.name) for r in answer.rows] + [7])
    rule = f"; image and matched under {answer.image_rule}" if answer.image_rule else ""
    print(f"{answer.dataset}: {answer.samples:,} samples, vocabulary {answer.vocabulary_version}{rule}")
    print(f"{'concept':<{width}}  {'text':>10}  {'image':>10}  {'matched':>10}  {'text/1M':>9}")
    for r in answer.rows:
        per_million = r.text / answer.samples * 1e6 if answer.samples else 0.0
        print(f"{r.name:<{width}}  {r.text:>10,}  {r.image:>10,}  {r.matched:>10,}  {per_million:>9.1f}")


def run(args) -> int:
    store = open_store(store_url(args))
    try:
        queries = FrequencyQueries(store)
        answer = queries.frequencies(args.dataset, args.concepts, args.vocabulary_version, rule=args.rule)
        print_answer(answer, args.json)
        if answer.unknown:
            vocabulary = queries.vocabulary(args.dataset, answer.vocabulary_version)
            print(FrequencyQueries.unknown_message(vocabulary, answer.unknown), file=sys.stderr)
            return 1
        return 0
    finally:
        store.close()
