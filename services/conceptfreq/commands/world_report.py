"""`conceptfreq world-report`: the pipeline's counts and trend on a world, against its ground truth.

    conceptfreq world-report --world world/ --dataset world --model conceptfreq-world --pretrained world \\
        --eval-dataset world-eval --plot trend-truth.png

Prints the precision and recall of the text, image and matched counts over (sample, concept) pairs,
and the per-concept trend (slope per 10x data with its bootstrap interval, Pearson, the paper's
binned Pearson) fitted once on the true and once on each measured frequency.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conceptfreq.commands.options import add_store, store_url


def register(subparsers) -> None:
    parser = subparsers.add_parser("world-report", help="a world's counts and trend against its ground truth",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", required=True, metavar="DIR", help="the directory `conceptfreq synth` wrote")
    parser.add_argument("--dataset", required=True, metavar="NAME", help="the dataset name the world's shards were ingested as")
    parser.add_argument("--model", required=True, metavar="NAME", help="the evaluated model, e.g. conceptfreq-world")
    parser.add_argument("--pretrained", required=True, metavar="LABEL",
                        help="its weights label as the results are filed (a checkpoint's file stem)")
    parser.add_argument("--eval-dataset", required=True, metavar="NAME", help="the held-out set's name (evaluate --name)")
    parser.add_argument("--prompts", default="ensemble", help="zero-shot prompts of the results (default ensemble)")
    parser.add_argument("--rule", default=None, help="image tagging rule to score (default: the dataset's active rule)")
    add_store(parser)
    parser.add_argument("--plot", metavar="PNG", help="write accuracy against true and measured frequency to PNG")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def _ci(fit: dict) -> str:
    low, high = fit.get("slope_ci") or (float("nan"), float("nan"))
    return f"[{low:+.1f}, {high:+.1f}]"


def run(args) -> int:
    from conceptfreq.adapters.store import open_store
    from conceptfreq.core.vocabulary import load
    from conceptfreq.world import truth

    from conceptfreq.world.generate import read_summary

    read_summary(args.world)  # a clear error when DIR is not a world, before reading its vocabulary
    vocabulary = load(str(Path(args.world) / "vocab.txt"))
    summary = truth.check_world(args.world, vocabulary.version)
    names = [c["name"] for c in summary["concepts"]]
    store = open_store(store_url(args))
    try:
        text, image, rule = truth.measured_hits(store, args.dataset, vocabulary.version, args.rule)
        quality, counts = truth.count_quality(args.world, text, image)
        accuracy = truth.accuracies(store, args.dataset, args.model, args.pretrained, args.eval_dataset, names, args.prompts)
    finally:
        store.close()
    comparisons = truth.compare_trends(names, accuracy, counts, seed=args.seed)
    plot = truth.plot(Path(args.plot), names, accuracy, counts, comparisons) if args.plot else None
    if args.json:
        json.dump({"world": summary["digest"], "dataset": args.dataset, "model": args.model, "pretrained": args.pretrained,
                   "image_rule": rule, "counts": [q.to_json() for q in quality],
                   "trends": [{"frequency": c.frequency, "per_concept": c.fit, "binned": c.binned} for c in comparisons],
                   "concepts": [{"name": n, "accuracy": round(float(a), 2), **{k: int(v[i]) for k, v in counts.items()}}
                                for i, (n, a) in enumerate(zip(names, accuracy))],
                   "plot": str(plot) if plot else None}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    spec = summary["spec"]
    print(f"world {summary['digest']}: {spec['samples']:,} pairs, {spec['concepts']} concepts, Zipf {spec['zipf']}, "
          f"misalignment {spec['misalignment']}; image hits under {rule}")
    print("\ncounts against ground truth, over (sample, concept) pairs:")
    print(f"  {'kind':<8} {'true':>8} {'measured':>9} {'precision':>10} {'recall':>7} {'count Spearman':>15}")
    for q in quality:
        print(f"  {q.kind:<8} {q.true_pairs:>8,} {q.measured_pairs:>9,} {q.precision:>10.3f} {q.recall:>7.3f} {q.spearman:>15.3f}")
    print(f"\nzero-shot accuracy of {args.model}/{args.pretrained} on {args.eval_dataset} ({len(names)} concepts, "
          f"mean {accuracy.mean():.1f}%) against log10 frequency:")
    print(f"  {'frequency':<17} {'points per 10x':>15} {'95% CI':>15} {'Pearson':>8} {'p':>9} {'Spearman':>9} {'binned r':>9}")
    for c in comparisons:
        fit = c.fit
        print(f"  {c.frequency:<17} {fit['slope_per_decade']:>+15.2f} {_ci(fit):>15} {fit['pearson']:>8.3f} "
              f"{fit['ols_slope_p_value']:>9.2g} {fit['spearman']:>9.3f} {c.binned['pearson']:>9.3f}")
    if plot:
        print(f"\nwrote {plot}")
    return 0
