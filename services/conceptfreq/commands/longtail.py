"""`conceptfreq longtail`: the k rarest concepts across pretraining datasets, to build a long-tail test
set like "Let It Wag!"; with --out, writes the class list, the counts and the predicted accuracies.

    conceptfreq longtail --datasets cc3m,cc12m --k 300 --kind matched --out longtail/
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conceptfreq.commands.report_options import add_json, add_source, csv_list, open_source, print_json, read_names


def register(subparsers) -> None:
    parser = subparsers.add_parser("longtail", help="rank the rarest concepts across datasets (long-tail benchmark builder)",
                                   description=__doc__.split("\n\n")[0])
    add_source(parser)
    parser.add_argument("--datasets", metavar="A,B", help="pretraining datasets (default: all)")
    parser.add_argument("--k", type=int, default=300, help="how many concepts (default 300)")
    parser.add_argument("--kind", "--count", dest="count", default="matched",
                        help="count to rank by: text, image, matched (default) or a paper method")
    parser.add_argument("--rule", metavar="NAME", help="the rule of the counts, when a kind has several")
    parser.add_argument("--tie-break", metavar="A,B", help="counts that order equally rare concepts "
                        "(default: the other kinds, text first; 'none' to switch off)")
    parser.add_argument("--normalize", default="max",
                        help="per-dataset normalization: max (the paper's, default) or samples (needs dataset sizes)")
    parser.add_argument("--combine", default="geomean", help="how datasets combine: geomean (default), max or mean")
    parser.add_argument("--downstream", metavar="A,B", help="only classes of these downstream sets (default: the paper's 18)")
    parser.add_argument("--concepts", metavar="FILE", help="only these concepts (one name per line)")
    parser.add_argument("--min-evaluations", type=int, default=0, metavar="N",
                        help="only concepts with zero-shot results from at least N models")
    parser.add_argument("--model", help="predict each concept's accuracy with this model's trend in each dataset")
    parser.add_argument("--prompts", default="ensemble", help="prompts of the evaluations used (default ensemble)")
    parser.add_argument("--let-it-wag", metavar="FILE", help="reference list to report the overlap with "
                        "(default with --paper-artifacts: its let_it_wag_class_list.txt)")
    parser.add_argument("--out", metavar="DIR", help="write class_list.txt, counts.csv and long_tail.json there")
    add_json(parser)
    parser.set_defaults(func=run)


def _options(args):
    from conceptfreq.reporter import analysis

    tie_break = None if args.tie_break is None else [t for t in csv_list(args.tie_break) or [] if t != "none"]
    return analysis.LongTailOptions(csv_list(args.datasets), args.k, args.count, args.rule, args.normalize, args.combine,
                                    csv_list(args.downstream), read_names(args.concepts), args.min_evaluations, args.model,
                                    args.prompts, read_names(args.let_it_wag), tie_break)


def write(result: dict, out: str | Path) -> list[Path]:
    from conceptfreq.core.trends import jsonable

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    datasets = result["datasets"]
    (out / "class_list.txt").write_text("".join(c["name"] + "\n" for c in result["concepts"]), encoding="utf-8")
    with (out / "counts.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        predicted = any("predicted" in c for c in result["concepts"])
        writer.writerow(["rank", "concept", "score", *datasets, *(f"predicted_accuracy_{d}" for d in datasets if predicted)])
        for rank, concept in enumerate(result["concepts"], 1):
            row = [rank, concept["name"], f"{concept['score']:.6g}", *(concept["counts"][d] for d in datasets)]
            if predicted:
                row += [f"{concept.get('predicted', {}).get(d, {}).get('accuracy', float('nan')):.2f}" for d in datasets]
            writer.writerow(row)
    (out / "long_tail.json").write_text(json.dumps(jsonable(result), indent=2), encoding="utf-8")
    return [out / "class_list.txt", out / "counts.csv", out / "long_tail.json"]


def run(args) -> int:
    from conceptfreq.reporter import analysis

    with open_source(args) as source:
        result = analysis.long_tail(source, _options(args))
    files = write(result, args.out) if args.out else []
    if args.json:
        print_json({**result, "files": [str(f) for f in files]})
        return 0
    for rank, concept in enumerate(result["concepts"], 1):
        counts = ", ".join(f"{d} {n}" for d, n in concept["counts"].items())
        print(f"{rank:4d}  {concept['name']}  ({counts})")
    overlap = result.get("reference_overlap")
    if overlap:
        print(f"overlap with the reference list: {overlap['overlap']} of {overlap['k']} "
              f"({overlap['reference_in_candidates']} of its {overlap['reference_size']} concepts are in this vocabulary)")
    if files:
        print(f"wrote {', '.join(str(f) for f in files)}")
    return 0
