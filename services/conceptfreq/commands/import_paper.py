"""`conceptfreq import-paper`: load the paper's published counts and zero-shot results into the store,
so every report, query and long-tail view runs on them like on counts of your own."""

from __future__ import annotations

import sys

from conceptfreq.commands.options import add_store, store_url
from conceptfreq.commands.report_options import add_json, csv_list, print_json


def register(subparsers) -> None:
    parser = subparsers.add_parser("import-paper", help="import the paper's artifacts (counts, zero-shot results) into the store",
                                   description=__doc__)
    parser.add_argument("--artifacts", required=True, metavar="DIR",
                        help="the artifacts directory (search_counts/, zero_shot_evaluations/, let_it_wag/)")
    add_store(parser)
    parser.add_argument("--pretrain", metavar="A,B", help="only these pretraining sets, e.g. cc3m,cc12m (default: all)")
    parser.add_argument("--methods", metavar="A,B", help="only these count methods, e.g. integrated,lemmatized (default: all)")
    parser.add_argument("--prompts", metavar="A,B", help="only these prompt sets, e.g. ensemble (default: all)")
    add_json(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from conceptfreq.adapters.store import open_store
    from conceptfreq.reporter.importer import import_paper
    from conceptfreq.reporter.paper import PaperArtifacts

    artifacts = PaperArtifacts(args.artifacts)
    store = open_store(store_url(args))
    try:
        progress = None if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
        summary = import_paper(store, artifacts, datasets=csv_list(args.pretrain), methods=csv_list(args.methods),
                               prompts=csv_list(args.prompts), progress=progress)
    finally:
        store.close()
    if args.json:
        print_json(summary)
    else:
        print(f"imported {summary['count_files']} count files of {', '.join(summary['datasets']) or 'no dataset'} "
              f"and {summary['evaluation_rows']} per-class results of {len(summary['models'])} models into {store.location}")
    return 0
