"""`conceptfreq predict`: the zero-shot accuracy a model's trend predicts for a concept or a frequency,
with a prediction interval (where one new concept at that frequency would land).

    conceptfreq predict --dataset cc3m --model RN50 --concept axolotl --frequency 1000 --frequency 1e5
"""

from __future__ import annotations

from conceptfreq.commands.report_options import add_fit, add_json, add_selection, add_source, fit_options, open_source, print_json, selection


def register(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="predict zero-shot accuracy from concept frequency",
                                   description=__doc__.split("\n\n")[0])
    add_source(parser)
    add_selection(parser)
    add_fit(parser, "logit")
    add_json(parser)
    parser.add_argument("--concept", action="append", default=[], metavar="NAME", help="a concept (repeatable); its count is looked up")
    parser.add_argument("--frequency", action="append", default=[], type=float, metavar="N", help="a frequency (repeatable)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from conceptfreq.reporter import analysis

    with open_source(args) as source:
        result = analysis.predict(source, selection(args, source), fit_options(args), concepts=args.concept,
                                  frequencies=args.frequency)
    if args.json:
        print_json(result)
        return 0
    percent = int(round(result["confidence_level"] * 100))
    for row in result["predictions"]:
        label = row["concept"] or "frequency"
        observed = f" (observed {row['observed_accuracy']:.1f}%)" if row["observed_accuracy"] is not None else ""
        print(f"{label} at {row['frequency']:,.0f} samples: {row['accuracy']:.1f}% "
              f"[{percent}% prediction interval {row['lower']:.1f}-{row['upper']:.1f}%]{observed}")
    return 0
