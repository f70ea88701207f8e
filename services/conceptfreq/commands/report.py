"""`conceptfreq report`: how zero-shot accuracy scales with concept frequency, as JSON, text or HTML.

    conceptfreq report --paper-artifacts DIR --pretrain cc3m --model RN50 --count integrated \\
        --prompts ensemble --method binned --json
    conceptfreq report --dataset cc3m --model RN50 --count matched --method per-concept
    conceptfreq report --dataset cc3m --html out/report.html      # every model, PNGs beside it
"""

from __future__ import annotations

from conceptfreq.errors import NotFoundError
from conceptfreq.commands.report_options import (add_fit, add_json, add_selection, add_source, csv_list, dataset, fit_options,
                                          open_source, print_json, selection)


def register(subparsers) -> None:
    parser = subparsers.add_parser("report", help="fit the scaling trend of accuracy against concept frequency",
                                   description=__doc__.split("\n\n")[0])
    add_source(parser)
    add_selection(parser, models_help="model, or several comma-separated (default: every model with results)")
    add_fit(parser, "binned")
    add_json(parser)
    parser.add_argument("--html", metavar="PATH", help="write the HTML report to PATH (.html) and its PNG figures beside it")
    parser.add_argument("--longtail-datasets", metavar="A,B", help="datasets of the report's long-tail views (default: all)")
    parser.add_argument("--k", type=int, default=300, help="rarest concepts listed in the HTML report (default 300)")
    parser.set_defaults(func=run)


def _line(fit: dict) -> str:
    selection = fit["selection"]
    text = (f"{selection['model']} on {selection['dataset']} ({selection['count']}, {selection['prompts']} prompts, "
            f"{fit['method']}): Pearson {fit['pearson']:.3f} (p={fit['p_value']:.2g}), {fit['n_concepts']} concepts, "
            f"{fit['slope_per_decade']:+.2f} {fit['slope_unit']}")
    if fit.get("slope_ci"):
        low, high = fit["slope_ci"]
        text += f" [{low:+.2f}, {high:+.2f}]"
    multiplier = (fit.get("exponential") or {}).get("multiplier")
    if multiplier:
        text += f"; {multiplier:.1f}x the data per +10 points"
    return text


def run(args) -> int:
    # Heavy (scipy, statsmodels, matplotlib): imported here, not when the CLI is built.
    from conceptfreq.reporter import analysis
    from conceptfreq.reporter.report import build_report

    with open_source(args) as source:
        if args.html:
            long_tail = analysis.LongTailOptions(csv_list(args.longtail_datasets), args.k, args.count, args.rule,
                                                 prompts=args.prompts)
            report = build_report(source, dataset(args, source), csv_list(args.model), args.count, args.prompts,
                                  fit_options(args), rule=args.rule, downstream=csv_list(args.downstream), long_tail=long_tail)
            files = report.write(args.html)
            if args.json:
                print_json({**report.data, "files": [str(f) for f in files]})
            else:
                print(f"wrote {files[0]} and {len(files) - 1} figures beside it")
            return 0
        models = csv_list(args.model) or source.models(dataset(args, source), args.prompts)
        if not models:
            raise NotFoundError(f"no model has {args.prompts} zero-shot results for {dataset(args, source)!r}")
        options = fit_options(args)
        fits = [analysis.fit_trend(source, selection(args, source, model), options) for model in models]
    if args.json:
        print_json(fits[0] if len(fits) == 1 else {"fits": fits})
    else:
        print("\n".join(_line(f) for f in fits))
    return 0
