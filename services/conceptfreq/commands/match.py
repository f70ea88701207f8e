"""`conceptfreq match`: one JSON array of matched concept names per input caption, in input order."""

from __future__ import annotations

import json
import sys
from itertools import islice

from conceptfreq.core.matching import DEFAULT_METHOD, MATCHERS, make_matcher
from conceptfreq.core.vocabulary import load
from conceptfreq.errors import UserError
from conceptfreq.commands.options import add_vocab

BATCH = 8192


def register(subparsers) -> None:
    parser = subparsers.add_parser("match", help="find concepts in captions (stdin or a file), one JSON array per line")
    add_vocab(parser)
    parser.add_argument("--method", choices=sorted(MATCHERS), default=DEFAULT_METHOD,
                        help="phrase: whole-word phrases with inflections; phrase+pos: phrase, with part of speech and "
                             f"sense decided from context; bag: the paper's lemma bag (default {DEFAULT_METHOD})")
    parser.add_argument("--input", metavar="FILE", help="captions, one per line; for a .tsv file the first column (default: stdin)")
    parser.set_defaults(func=run)


def _captions(stream, first_column: bool):
    for line in stream:
        line = line.rstrip("\r\n")
        yield line.split("\t", 1)[0] if first_column else line


def run(args) -> int:
    vocabulary = load(args.vocab)
    matcher = make_matcher(vocabulary, args.method)
    names = {c.id: c.name for c in vocabulary}
    if args.input:
        try:
            stream = open(args.input, encoding="utf-8", errors="replace", newline="")
        except OSError as error:
            raise UserError(f"cannot read --input {args.input!r}: {error.strerror}") from None
    else:
        stream = open(sys.stdin.fileno(), encoding="utf-8", errors="replace", newline="", closefd=False)
    captions = _captions(stream, first_column=bool(args.input and args.input.endswith(".tsv")))
    out = sys.stdout
    with stream:
        while batch := list(islice(captions, BATCH)):
            for concepts in matcher.match(batch).per_caption():
                out.write(json.dumps([names[c] for c in concepts], ensure_ascii=False))
                out.write("\n")
    out.flush()
    return 0
