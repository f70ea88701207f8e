"""`conceptfreq query`: the text, image and matched counts of named concepts."""

from __future__ import annotations

import json
import sys

from conceptfreq.adapters.store import open_store
from conceptfreq.errors import UnavailableError, UserError
from conceptfreq.query.frequencies import Answer, ConceptRow, FrequencyQueries, describe_unknown
from conceptfreq.commands.options import add_dataset, add_store, env, store_url


def register(subparsers) -> None:
    parser = subparsers.add_parser("query", help="print the counts of concepts in a dataset")
    add_dataset(parser)
    parser.add_argument("concepts", nargs="+", metavar="CONCEPT", help="concept names or aliases (quote multi-word names)")
    parser.add_argument("--vocabulary-version", help="the vocabulary the counts were made with (default: the latest)")
    parser.add_argument("--rule", default=None, metavar="RULE",
                        help="tagging rule of the image and matched counts, e.g. softmax:p=0.5 (default: the dataset's "
                             "active rule, the latest set by the tagger or `retag`)")
    add_store(parser)
    parser.add_argument("--server", default=env("QUERY_SERVER"), metavar="HOST:PORT",
                        help="ask a running query service instead of reading the store (env CONCEPTFREQ_QUERY_SERVER)")
    parser.add_argument("--tls-ca", default=env("QUERY_TLS_CA", ""), metavar="FILE", help="with --server: the server's CA, for TLS")
    parser.add_argument("--token-file", default=env("QUERY_TOKEN_FILE", ""), metavar="FILE",
                        help="with --server: a file holding the bearer token the server requires")
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


def ask_server(args) -> Answer:
    """The same answer from a running query service (conceptfreq.client)."""
    import grpc

    from conceptfreq.client import FrequencyClient

    with FrequencyClient(args.server, ca_file=args.tls_ca, token_file=args.token_file) as client:
        try:
            r = client.frequencies(args.dataset, args.concepts, vocabulary_version=args.vocabulary_version or "",
                                   image_rule=args.rule or "")
        except grpc.RpcError as error:
            kind = UnavailableError if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) else UserError
            raise kind(f"{args.server}: {error.code().name}: {error.details()}") from None
    rows = [ConceptRow(f.concept_id, f.name, f.text, f.image, f.matched) for f in r.frequencies]
    return Answer(r.dataset, r.vocabulary_version, r.samples, rows, list(r.unknown), r.image_rule,
                  suggestions={u.name: list(u.suggestions) for u in r.unknown_concepts})


def run(args) -> int:
    if args.server:
        answer = ask_server(args)
    else:
        store = open_store(store_url(args), read_only=True)
        try:
            answer = FrequencyQueries(store).frequencies(args.dataset, args.concepts, args.vocabulary_version, rule=args.rule)
        finally:
            store.close()
    print_answer(answer, args.json)
    if answer.unknown:  # the answer carries the suggestions: the same line whichever way it was asked
        print(describe_unknown(answer.vocabulary_version, answer.unknown, answer.suggestions), file=sys.stderr)
        return 1
    return 0
