"""`conceptfreq count`: text frequencies of every concept over a dataset's shards, on this machine."""

from __future__ import annotations

import json
import os

from conceptfreq.adapters.shards import expand_shards
from conceptfreq.adapters.store import open_store
from conceptfreq.core.matching import DEFAULT_METHOD, MATCHERS
from conceptfreq.core.vocabulary import load
from conceptfreq.errors import UserError
from conceptfreq.pipeline.run import CountSummary, count_shards
from conceptfreq.commands.options import add_caption_source, add_dataset, add_store, add_vocab, store_url


def register(subparsers) -> None:
    parser = subparsers.add_parser("count", help="count concepts in the captions of a dataset's shards (local run)")
    add_dataset(parser)
    parser.add_argument("--shards", required=True, metavar="PATTERN",
                        help="shard paths or URLs with braces/globs, e.g. 'data/cc3m-{00000..00331}.tar' (.tar, .parquet, .tsv)")
    add_vocab(parser)
    add_store(parser)
    parser.add_argument("--workers", type=int, default=1, help="parser processes (default 1)")
    parser.add_argument("--method", choices=sorted(MATCHERS), default=DEFAULT_METHOD,
                        help=f"caption matching method: phrase, phrase+pos (decides verbs, adjectives and senses), "
                             f"bag (the paper's); default {DEFAULT_METHOD}")
    add_caption_source(parser)
    parser.add_argument("--skip-done", action="store_true", help="leave shards already done with this vocabulary as they are")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    vocabulary = load(args.vocab)
    shards = expand_shards(args.shards)
    if not shards:
        raise UserError(f"--shards {args.shards!r} names no shard")
    store = open_store(store_url(args))
    try:
        summary = count_shards(store, args.dataset, shards, vocabulary, method=args.method, workers=min(args.workers, os.cpu_count() or 1, len(shards)),
                               caption_column=args.caption_column, captions_from=args.captions_from, skip_done=args.skip_done,
                               progress=not args.no_progress)
    finally:
        store.close()
    print(json.dumps(_summary_json(args.dataset, vocabulary.version, summary), indent=2) if args.json else _summary_text(args.dataset, vocabulary.version, summary))
    return 1 if summary.failures else 0


def _summary_json(dataset: str, version: str, s: CountSummary) -> dict:
    return {"dataset": dataset, "vocabulary_version": version, "shards": s.shards, "done": s.done, "already_done": s.already_done,
            "failed": [{"shard": shard, "reason": reason} for shard, reason in s.failures], "samples": s.samples,
            "samples_with_hits": s.samples_with_hits, "skipped": s.skipped, "notes": s.notes, "seconds": round(s.seconds, 3),
            "samples_per_second": round(s.rate, 1)}


def _summary_text(dataset: str, version: str, s: CountSummary) -> str:
    lines = [f"{dataset} (vocabulary {version}): {s.done}/{s.shards} shards done"
             + (f", {s.already_done} already done" if s.already_done else "") + f", {len(s.failures)} failed",
             f"  {s.samples:,} samples in {s.seconds:.1f}s ({s.rate:,.0f}/s); {s.samples_with_hits:,} mention a concept"]
    if s.skipped:
        lines.append("  skipped: " + ", ".join(f"{reason} {n:,}" for reason, n in sorted(s.skipped.items())))
    if s.notes:
        lines.append("  noted: " + ", ".join(f"{reason} {n:,}" for reason, n in sorted(s.notes.items())))
    for shard, reason in s.failures:
        lines.append(f"  FAILED {shard}: {reason}")
    return "\n".join(lines)
