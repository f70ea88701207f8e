"""`conceptfreq budget`: how many samples of a concept a model's trend needs to reach a target accuracy,
and how many more than the dataset has now.

    conceptfreq budget --dataset cc3m --model RN50 --concept axolotl --target 60
"""

from __future__ import annotations

from conceptfreq.commands.report_options import add_fit, add_json, add_selection, add_source, fit_options, open_source, print_json, selection


def register(subparsers) -> None:
    parser = subparsers.add_parser("budget", help="samples needed for a target zero-shot accuracy",
                                   description=__doc__.split("\n\n")[0])
    add_source(parser)
    add_selection(parser)
    add_fit(parser, "logit")
    add_json(parser)
    parser.add_argument("--concept", metavar="NAME", help="the concept; its current count is looked up")
    parser.add_argument("--target", type=float, required=True, metavar="PERCENT", help="target accuracy in percent, e.g. 60")
    parser.add_argument("--current", type=float, metavar="N", help="current count (default: looked up for --concept)")
    parser.set_defaults(func=run)


def _count(value) -> str:
    return "beyond 10^15" if value is None else f"{value:,.0f}"


def run(args) -> int:
    from conceptfreq.reporter import analysis

    with open_source(args) as source:
        result = analysis.budget(source, selection(args, source), fit_options(args), concept=args.concept,
                                 target=args.target, current=args.current)
    if args.json:
        print_json(result)
        return 0
    name = result["concept"] or "a concept"
    if not result["reachable"]:
        print(f"{name}: {result['note']}")
        return 0
    low, high = result["interval"]
    print(f"{name}: {args.target:g}% needs about {_count(result['required_frequency'])} samples "
          f"(a new concept: {_count(low)} to {_count(high)})")
    if result.get("current_frequency") is not None:
        times = f", {result['multiplier']:.1f}x the data" if result.get("multiplier") else ""
        print(f"  now {_count(result['current_frequency'])}: {_count(result['additional_samples'])} more{times}")
    adjusted = result.get("concept_adjusted")
    if adjusted:
        print(f"  from where {name} stands now ({adjusted['observed_accuracy']:.1f}%): "
              f"{_count(adjusted['required_frequency'])} samples, {_count(adjusted['additional_samples'])} more")
    return 0
