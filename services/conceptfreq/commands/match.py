"""`conceptfreq match`: one JSON array of matched concept names per input caption, in input order.

The input is read in large binary blocks and goes to the matcher as bytes (PhraseMatcher.match_lines),
and each block's output is assembled from every concept's JSON text encoded once: per caption
there is no str, no list and no json.dumps call, so the command runs at close to the matcher's
own rate. Lines end at `\\n`, `\\r\\n` or `\\r` and undecodable bytes read as U+FFFD, as Python's
text files read them.
"""

from __future__ import annotations

import json
import re
import sys

import numpy as np

from conceptfreq.adapters.matcher_cache import cached_matcher
from conceptfreq.core.matching import DEFAULT_METHOD, MATCHERS
from conceptfreq.core.vocabulary import Vocabulary, load
from conceptfreq.errors import UserError
from conceptfreq.commands.options import add_vocab, env

# Bytes read at a time: about 150,000 captions, enough to make the per-block costs vanish.
READ_BLOCK = 8 << 20
_AFTER_TAB = re.compile(rb"\t[^\n]*")


def register(subparsers) -> None:
    parser = subparsers.add_parser("match", help="find concepts in captions (stdin or a file), one JSON array per line")
    add_vocab(parser)
    parser.add_argument("--method", choices=sorted(MATCHERS), default=DEFAULT_METHOD,
                        help="phrase: whole-word phrases with inflections; phrase+pos: phrase, with part of speech and "
                             f"sense decided from context; bag: the paper's lemma bag (default {DEFAULT_METHOD})")
    parser.add_argument("--input", metavar="FILE", help="captions, one per line; for a .tsv file the first column (default: stdin)")
    parser.add_argument("--no-cache", action="store_true", default=env("NO_MATCHER_CACHE", "") not in ("", "0"),
                        help="build the matcher from the vocabulary instead of reading or writing the compiled-matcher "
                             "cache (env CONCEPTFREQ_NO_MATCHER_CACHE=1)")
    parser.set_defaults(func=run)


def run(args) -> int:
    vocabulary = load(args.vocab)
    matcher = cached_matcher(vocabulary, args.method, use_cache=not args.no_cache)
    if args.input:
        try:
            stream = open(args.input, "rb")
        except OSError as error:
            raise UserError(f"cannot read --input {args.input!r}: {error.strerror}") from None
    else:
        stream = open(sys.stdin.fileno(), "rb", closefd=False)
    first_column = bool(args.input and args.input.endswith(".tsv"))
    out = sys.stdout
    out.flush()
    table = OutputTable(vocabulary, out.encoding or "utf-8", out.errors or "strict")
    with stream:
        for lines in read_lines(stream):
            if first_column:
                lines = _AFTER_TAB.sub(b"", lines)
            out.buffer.write(table.render(matcher.match_lines(lines)))
    out.buffer.flush()
    return 0


def read_lines(stream, block: int = READ_BLOCK):
    """Blocks of whole lines from a binary stream, each as the lines' bytes joined by `\\n` (no
    terminator after the last); a line may end with `\\n`, `\\r\\n` or `\\r`."""
    carry = b""
    while chunk := stream.read(block):
        data = carry + chunk if carry else chunk
        # The last line end; a `\r` as the very last byte may be the first half of `\r\n`.
        cut = max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1))
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1 :]
        yield _unix_lines(data[: cut + 1])[:-1]
    if carry:
        lines = _unix_lines(carry)
        yield lines[:-1] if lines.endswith(b"\n") else lines


def _unix_lines(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n") if b"\r" in data else data


class OutputTable:
    """Every output piece, encoded once: `[]` for a caption without concepts, and per concept its
    name's JSON string opening the array (`["name"`) or following another (`, "name"`)."""

    EMPTY, CLOSE = 0, 1

    def __init__(self, vocabulary: Vocabulary, encoding: str, errors: str):
        n_ids = max(c.id for c in vocabulary) + 1
        names = [b""] * n_ids
        for concept in vocabulary:
            try:
                names[concept.id] = json.dumps(concept.name, ensure_ascii=False).encode(encoding, errors)
            except UnicodeEncodeError:  # an output encoding without the name's letters: JSON's \u escapes
                names[concept.id] = json.dumps(concept.name).encode(encoding, errors)
        self.n_ids = n_ids
        pieces = ["[]\n".encode(encoding), "]\n".encode(encoding),
                  *(b"[" + n for n in names), *(", ".encode(encoding) + n for n in names)]
        self._lengths = np.array([len(p) for p in pieces], np.int64)
        self._starts = np.cumsum(self._lengths) - self._lengths
        self._bytes = np.frombuffer(b"".join(pieces), np.uint8)

    def render(self, hits) -> bytes:
        """One line per caption of `hits` (sorted by caption, then concept, as Hits are)."""
        counts = np.bincount(hits.caption, minlength=hits.n_captions)
        # A caption takes one piece per concept and one to close, or the one piece `[]`.
        ends = np.cumsum(counts + 1)
        pieces = np.empty(int(ends[-1]) if ends.size else 0, np.int64)
        pieces[ends - 1] = np.where(counts == 0, self.EMPTY, self.CLOSE)
        if hits.caption.size:
            first_hit = np.cumsum(counts) - counts
            rank = np.arange(hits.caption.size) - first_hit[hits.caption]
            pieces[ends[hits.caption] - counts[hits.caption] - 1 + rank] = np.where(rank == 0, 2, 2 + self.n_ids) + hits.concept
        # The pieces' bytes gathered by one numpy index: a third of the time of b"".join over the pieces.
        lengths = self._lengths[pieces]
        offsets = np.cumsum(lengths) - lengths
        index = np.repeat(self._starts[pieces] - offsets, lengths) + np.arange(int(lengths.sum()))
        return self._bytes[index].tobytes()
