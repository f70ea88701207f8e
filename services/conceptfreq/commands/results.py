"""`conceptfreq results`: a model's zero-shot results on an eval set, per class and concept, worst first.

Classification results come from zero_shot_results (what `evaluate` and the evaluator services
wrote, and what `import-paper` imported); `--format paper` prints them in the paper's
zero_shot_evaluations JSON layout. `--task retrieval` shows recall@k per concept.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict

from conceptfreq.adapters.store import open_store
from conceptfreq.core.evaluation import model_key
from conceptfreq.errors import NotFoundError
from conceptfreq.evaluator.results import EvalStore
from conceptfreq.commands.options import add_store, store_url


def register(subparsers) -> None:
    parser = subparsers.add_parser("results", help="per-class/per-concept zero-shot results of a model, worst first")
    parser.add_argument("--model", required=True, help="open_clip model name, e.g. ViT-B-32")
    parser.add_argument("--data", required=True, metavar="NAME", help="eval set name, as `evaluate --name` filed it")
    parser.add_argument("--pretrained", default="", help="weights label (tag or checkpoint stem); default: all")
    parser.add_argument("--prompts", default="", help="class | simple | ensemble; default: all")
    parser.add_argument("--task", choices=["classification", "retrieval"], default="classification")
    parser.add_argument("--limit", type=int, default=0, help="rows to print per group (default: all)")
    parser.add_argument("--format", choices=["table", "json", "paper"], default="table",
                        help="paper: the paper's {backbone..._pretrained...: {full, classwise}} JSON")
    add_store(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    store = open_store(store_url(args), read_only=True)
    try:
        results = EvalStore(store)
        if args.task == "retrieval":
            return _retrieval(args, results)
        rows = results.results(args.model, args.data, args.pretrained, args.prompts)
    finally:
        store.close()
    if not rows:
        raise NotFoundError(f"no results for model {args.model!r} on {args.data!r}"
                            + (f" with pretrained {args.pretrained!r}" if args.pretrained else "")
                            + (f" and {args.prompts} prompts" if args.prompts else "") + ": run `conceptfreq evaluate` first")
    groups: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for r in rows:
        groups[(r.pretrained, r.prompts)].append((r.class_name, r.concept_id, r.correct, r.total, r.accuracy, r.source))
    if args.format == "paper":
        out = {}
        for (pretrained, prompts), items in groups.items():
            out.setdefault(prompts, {}).update(_paper(args.model, pretrained, items))
        print(json.dumps(out[next(iter(out))] if len(out) == 1 else out, indent=2))
        return 0
    ordered = {key: sorted(items, key=lambda r: (r[4], r[0])) for key, items in sorted(groups.items())}
    if args.format == "json":
        print(json.dumps([{"model": args.model, "pretrained": p, "prompts": pr, "eval_dataset": args.data,
                           "classes": [{"class": n, "concept_id": c, "correct": k, "total": t, "accuracy": a, "source": s}
                                       for n, c, k, t, a, s in items[:args.limit or None]]}
                          for (p, pr), items in ordered.items()], indent=2))
        return 0
    for (pretrained, prompts), items in ordered.items():
        print(f"{args.model} ({pretrained}) on {args.data}, {prompts} prompts: {len(items)} classes, "
              f"top-1 {_full(items):.2f}% (worst first)")
        print(f"  {'accuracy':>9}  {'correct/total':>15}  concept_id  class")
        for name, concept, correct, total, accuracy, _ in items[:args.limit or None]:
            counts = f"{correct:,}/{total:,}" if total else "-"
            print(f"  {accuracy:8.2f}%  {counts:>15}  {concept:>10}  {name}")
    return 0


def _full(items) -> float:
    """Top-1 over samples where the test-set sizes are known (evaluator rows); else the class mean."""
    total = sum(t for _, _, _, t, _, _ in items)
    if total and all(t for _, _, _, t, _, _ in items):
        return 100.0 * sum(k for _, _, k, _, _, _ in items) / total
    return sum(a for *_, a, _ in items) / len(items) if items else math.nan


def _paper(model: str, pretrained: str, items) -> dict:
    return {model_key(model, pretrained): {"full": round(_full(items), 2),
                                           "classwise": {name: round(accuracy, 2) for name, _, _, _, accuracy, _ in items}}}


def _retrieval(args, results: EvalStore) -> int:
    rows = results.retrieval(args.model, args.data, args.pretrained)
    if not rows:
        raise NotFoundError(f"no retrieval results for model {args.model!r} on {args.data!r}: run `conceptfreq evaluate --task retrieval`")
    table: dict[tuple[str, int], dict] = {}
    for r in rows:
        row = table.setdefault((r.pretrained, r.concept_id), {"pretrained": r.pretrained, "concept_id": r.concept_id, "concept": r.concept})
        row[f"{r.direction}_n"] = r.total
        row[f"{r.direction}_r@{r.k}"] = r.recall
    ordered = sorted(table.values(), key=lambda r: (r["pretrained"], r.get("t2i_r@1", math.inf), r["concept"]))[:args.limit or None]
    if args.format == "json":
        print(json.dumps(ordered, indent=2))
        return 0
    print(f"{args.model} retrieval on {args.data}, recall@k per concept in percent (worst text->image R@1 first)")
    print(f"  {'t2i R@1':>8} {'R@5':>7} {'R@10':>7} {'n':>6} | {'i2t R@1':>8} {'R@5':>7} {'R@10':>7} {'n':>6}  concept")
    for row in ordered:
        cells = [f"{row.get(f'{d}_r@{k}', math.nan):{8 if k == 1 else 7}.2f}" for d in ("t2i",) for k in (1, 5, 10)]
        cells2 = [f"{row.get(f'{d}_r@{k}', math.nan):{8 if k == 1 else 7}.2f}" for d in ("i2t",) for k in (1, 5, 10)]
        print(f"  {' '.join(cells)} {row.get('t2i_n', 0):>6} | {' '.join(cells2)} {row.get('i2t_n', 0):>6}  {row['concept']}")
    return 0
