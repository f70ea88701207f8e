"""`conceptfreq retag`: change the image tagging rule of a dataset from its stored scores (no GPU)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conceptfreq.adapters.store import open_store
from conceptfreq.errors import NotFoundError, UserError
from conceptfreq.commands.options import add_dataset, add_store, store_url


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "retag", help="re-threshold image hits, image and matched counts from the stored top-k scores (no GPU, no shard reads)",
        description="Recompute image hits, image counts and matched counts under a new tagging rule from the scores the "
                    "tagger stored. The rule becomes the dataset's active rule; counts under earlier rules stay "
                    "queryable (`conceptfreq query --rule RULE`).")
    add_dataset(parser)
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--threshold", type=float, metavar="T",
                        help="the active rule's kind with a new threshold: softmax p, or cosine t (e.g. 0.3)")
    choice.add_argument("--rule", metavar="RULE", help="a rule: softmax:p=0.5 | cosine:t=0.3 | topk:k=3")
    choice.add_argument("--thresholds", metavar="FILE",
                        help="per-concept thresholds: JSON {concept: threshold} or `concept,threshold` lines (names or ids)")
    choice.add_argument("--list", action="store_true", help="list the dataset's recorded rules, the active one first")
    parser.add_argument("--score", choices=["cosine", "p"], default="cosine",
                        help="with --thresholds: what the thresholds apply to (default cosine)")
    parser.add_argument("--default", type=float, default=None, metavar="T",
                        help="with --thresholds: the threshold of concepts the file does not list (default: never a hit)")
    parser.add_argument("--vocabulary-version", default=None, help="the vocabulary of the counts (default: the latest)")
    add_store(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def requested_rule(args, store, vocabulary):
    """The rule asked for: --rule, --threshold (on the active rule's kind) or --thresholds."""
    from conceptfreq.core.tagging import DEFAULT_RULE, PerConceptRule, parse_rule, parse_thresholds

    if args.rule:
        return parse_rule(args.rule)
    if args.thresholds:
        path = Path(args.thresholds)
        if not path.is_file():
            raise UserError(f"no thresholds file at {path}")
        return PerConceptRule(parse_thresholds(path.read_text(encoding="utf-8"), _concept_id(vocabulary), source=str(path)),
                              score=args.score, default=args.default)
    if args.threshold is None:
        raise UserError("say what to retag to: --threshold T, --rule RULE or --thresholds FILE")
    # The active tagging rule, which image counts are read under (core/rules.py), else the tagger's default.
    current = parse_rule(store.rule_facts(args.dataset, vocabulary.version).active_tagging_rule or DEFAULT_RULE)
    parameter = {"softmax": "p", "cosine": "t"}.get(current.name)
    if parameter is None:
        raise UserError(f"the active rule ({current}) has no single threshold: give a whole --rule instead")
    return parse_rule(f"{current.name}:{parameter}={args.threshold}")


def _concept_id(vocabulary):
    def concept_id(name: str) -> int | None:
        concept = vocabulary.get(name)
        return concept.id if concept else None
    return concept_id


def run(args) -> int:
    from conceptfreq.query.frequencies import FrequencyQueries
    from conceptfreq.tagger.retag import Retag

    store = open_store(store_url(args))
    try:
        vocabulary = FrequencyQueries(store).vocabulary(args.dataset, args.vocabulary_version)
        if args.list:
            rules = store.tagging_rules(args.dataset, vocabulary.version)
            print(json.dumps({"dataset": args.dataset, "rules": rules}, indent=2) if args.json else
                  "\n".join(f"{'*' if i == 0 else ' '} {rule}" for i, rule in enumerate(rules)) or "no tagging rules recorded")
            return 0
        rule = requested_rule(args, store, vocabulary)
        if not store.visible_image_attempts(args.dataset, vocabulary.version):
            raise NotFoundError(f"dataset {args.dataset!r} has no tagged images in {store.location}: run the tagger first "
                                "(`conceptfreq serve tagger`, or ingest with the image stage)")
        report = Retag(store, args.dataset, vocabulary.version, rule).run()
    finally:
        store.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(f"{report.dataset}: rule {report.rule} is now active (was {report.previous or 'none'}); "
              f"{report.retagged:,} of {report.shards:,} shards retagged, {report.images:,} images, "
              f"{report.hits:,} with hits, in {report.seconds:.1f}s")
    if report.inexact_k or report.truncated:
        print(f"warning: {report.truncated:,} images may have more hits than their stored top-{','.join(map(str, report.inexact_k)) or 'k'} "
              "scores hold; a lower threshold than the stored scores support undercounts (see docs/tagging.md)", file=sys.stderr)
    return 0
