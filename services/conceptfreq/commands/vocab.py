"""`conceptfreq vocab`: look at a vocabulary before counting with it, and export it canonically.

    conceptfreq vocab show [--vocab FILE] [--json] [--limit N]
    conceptfreq vocab export [--vocab FILE]

Without --vocab both act on the packaged default vocabulary. `export` writes the canonical JSON
(ids, names, aliases, sources, provenance, version) that `--vocab` accepts back unchanged, so a
text or CSV vocabulary can be frozen with the ids its counts are stored under.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from conceptfreq.core import vocabulary as vocabularies
from conceptfreq.core.vocabulary import Vocabulary

_VOCAB_HELP = "vocabulary file (.txt: `name|alias` per line, .json or .csv); default: the packaged one"


def register(subparsers) -> None:
    parser = subparsers.add_parser("vocab", help="show or export a vocabulary", description=__doc__.split("\n\n")[0])
    actions = parser.add_subparsers(dest="vocab_action", required=True, metavar="ACTION")

    show = actions.add_parser("show", help="name, version, size and sources of a vocabulary")
    show.add_argument("--vocab", metavar="FILE", help=_VOCAB_HELP)
    show.add_argument("--json", action="store_true", help="print the summary as JSON")
    show.add_argument("--limit", type=int, default=10, metavar="N", help="how many concepts to list (default 10)")

    export = actions.add_parser("export", help="write the vocabulary as canonical JSON to stdout")
    export.add_argument("--vocab", metavar="FILE", help=_VOCAB_HELP)

    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    vocabulary = vocabularies.load(args.vocab)
    if args.vocab_action == "export":
        sys.stdout.write(vocabularies.dumps(vocabulary))
        return 0
    summary = summarize(vocabulary, limit=max(args.limit, 0))
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(format_summary(summary))
    return 0


def summarize(vocabulary: Vocabulary, limit: int = 10) -> dict:
    counts = Counter(source for concept in vocabulary for source in concept.sources)
    # The provenance lists datasets in id order; datasets it does not name follow in first-seen order.
    known = [d for d in vocabulary.provenance.get("datasets", []) if d in counts]
    sources = {d: counts[d] for d in [*known, *(d for d in counts if d not in known)]}
    lists = vocabulary.provenance.get("lists", [])
    return {
        "name": vocabulary.name,
        "version": vocabulary.version,
        "concepts": len(vocabulary),
        "aliases": sum(len(c.aliases) for c in vocabulary),
        "multi_source_concepts": sum(len(c.sources) > 1 for c in vocabulary),
        "sources": sources,
        "lists": [
            {k: entry.get(k) for k in ("dataset", "package", "version", "path", "sha256") if entry.get(k) is not None}
            for entry in lists
            if isinstance(entry, dict)
        ],
        "not_covered": vocabulary.provenance.get("not_covered", {}),
        "first": [c.to_json() for c in vocabulary.concepts[:limit]],
    }


def format_summary(summary: dict) -> str:
    lines = [
        f"vocabulary  {summary['name']}",
        f"version     {summary['version']}",
        f"concepts    {summary['concepts']} (aliases: {summary['aliases']}, "
        f"in more than one dataset: {summary['multi_source_concepts']})",
    ]
    if summary["sources"]:
        lines.append("sources     " + ", ".join(f"{name} {count}" for name, count in summary["sources"].items()))
    for entry in summary["lists"]:
        lines.append(
            f"  {entry.get('dataset', '?'):<13} {entry.get('package', '?')}=={entry.get('version', '?')} "
            f"{entry.get('path', '')}  sha256 {str(entry.get('sha256', ''))[:12]}"
        )
    for dataset, why in summary["not_covered"].items():
        lines.append(f"  {dataset:<13} not covered: {why}")
    if summary["first"]:
        lines.append(f"first {len(summary['first'])}:")
        for concept in summary["first"]:
            aliases = f"  (also: {', '.join(concept['aliases'])})" if concept["aliases"] else ""
            sources = f"  [{', '.join(concept['sources'])}]" if concept["sources"] else ""
            lines.append(f"  {concept['id']:>6}  {concept['name']}{aliases}{sources}")
    return "\n".join(lines)
