"""`conceptfreq evaluate`: zero-shot performance of a model on an eval set, per class and per concept.

    conceptfreq evaluate --model ViT-B-32 --pretrained laion400m_e32 --data imagenet-val/ --prompts ensemble
    conceptfreq evaluate ... --via kafka --bus kafka://kafka:9092    # split into eval shards for the evaluator services
    conceptfreq evaluate ... --task retrieval --data coco-test/       # recall@k per concept (local only)
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from conceptfreq.adapters.bus import open_bus
from conceptfreq.adapters.store import open_store
from conceptfreq.core.prompts import PROMPT_MODES, TEMPLATE_SETS
from conceptfreq.core.vocabulary import load
from conceptfreq.errors import UserError
from conceptfreq.adapters.shards import EVAL_FORMATS
from conceptfreq.commands.options import add_eval_topic
from conceptfreq.evaluator.plan import CLASSIFICATION, FROM_VOCABULARY, RETRIEVAL, plan
from conceptfreq.evaluator.retrieval import run_retrieval
from conceptfreq.evaluator.run import Evaluator, InferenceConfig, follow, run_local, submit
from conceptfreq.commands.options import add_bus, add_inference, add_store, add_vocab, env, pretrained, store_url


def register(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="zero-shot accuracy per class/concept of a model on an eval set")
    parser.add_argument("--data", required=True, metavar="PATH|URL",
                        help="eval set: an ImageFolder tree, webdataset tars (clip_benchmark layout), parquet, or a CSV manifest")
    parser.add_argument("--name", default=None, help="the name results are filed under (default: from --data)")
    parser.add_argument("--task", choices=[CLASSIFICATION, RETRIEVAL], default=CLASSIFICATION)
    parser.add_argument("--format", choices=sorted(EVAL_FORMATS), default=None, help="eval set format (default: detected)")
    add_inference(parser)
    parser.add_argument("--device", default=None, help="torch:// device: auto, cpu, cuda, cuda:N (default auto)")
    parser.add_argument("--prompts", choices=list(PROMPT_MODES), default="ensemble",
                        help="class: the bare name; simple: 'a photo of a {}.'; ensemble (default): averaged templates")
    parser.add_argument("--template-set", choices=sorted(TEMPLATE_SETS), default=None,
                        help="ensemble templates (default: the eval set's zeroshot_classification_templates.txt, else openai_imagenet)")
    parser.add_argument("--templates", default=None, metavar="FILE", help="extra ensemble templates, one per line, {} for the name")
    parser.add_argument("--classnames", default=None, metavar="FILE|vocab",
                        help="class names, one per line in label order (or FOLDER<TAB>name lines for ImageFolder); "
                             f"'{FROM_VOCABULARY}': every concept of the vocabulary (default: the eval set's own)")
    parser.add_argument("--split", default=None, help="wds/parquet subfolder (default test)")
    parser.add_argument("--label-column", default=None, help="parquet/CSV label column (default label)")
    parser.add_argument("--image-column", default=None, help="parquet/CSV image column (default: detected)")
    parser.add_argument("--caption-column", default=None, help="parquet/CSV caption column (retrieval)")
    parser.add_argument("--shard-size", type=int, default=None, help="ImageFolder/CSV images per eval shard (default 1000)")
    add_vocab(parser)
    add_store(parser)
    parser.add_argument("--allow-unmapped", action="store_true", help="evaluate even if some classes map to no concept")
    parser.add_argument("--force", action="store_true", help="evaluate shards again even if they are done")
    parser.add_argument("--batch-size", type=int, default=None, help="images per forward pass (default: the backend's)")
    parser.add_argument("--workers", type=int, default=2, help="image decoding threads (default 2)")
    parser.add_argument("--cache-dir", default=env("CACHE_DIR"), help="text-embedding cache (default ~/.cache/conceptfreq)")
    parser.add_argument("--via", choices=["local", "kafka"], default="local",
                        help="local (default): here; kafka: publish eval shards for `conceptfreq serve evaluator` and follow")
    add_bus(parser)
    add_eval_topic(parser)
    parser.add_argument("--timeout", type=float, default=None, help="--via kafka: stop following after this many seconds")
    parser.add_argument("--top", type=int, default=10, help="worst classes to print (default 10)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _lines(path: str | None, what: str) -> list[str]:
    if not path:
        return []
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{what} file {path!r} not found")
    return [line.strip() for line in file.read_text(encoding="utf-8-sig").splitlines() if line.strip() and not line.startswith("#")]


def run(args) -> int:
    vocabulary = load(args.vocab)
    classnames = FROM_VOCABULARY if args.classnames == FROM_VOCABULARY else (_lines(args.classnames, "class names") or None)
    spec, mapping = plan(args.data, model=args.model, pretrained=pretrained(args), precision=args.precision, vocabulary=vocabulary,
                         task=args.task, format=args.format, prompts=args.prompts, extra_templates=_lines(args.templates, "templates"),
                         template_set=args.template_set, classnames=classnames, eval_dataset=args.name,
                         allow_unmapped=args.allow_unmapped,
                         data_options={"split": args.split, "label_column": args.label_column, "image_column": args.image_column,
                                       "caption_column": args.caption_column, "shard_size": args.shard_size})
    for note in mapping.report() if mapping else []:
        print(f"note: {note}", file=sys.stderr)
    if args.via == "kafka" and args.task == RETRIEVAL:
        raise UserError("retrieval ranks over the whole set at once: run it locally (without --via kafka)")
    if args.via == "kafka" and not args.bus.startswith("kafka://"):
        raise UserError(f"--via kafka needs a kafka:// bus (--bus or CONCEPTFREQ_BUS), not {args.bus!r}")
    store = open_store(store_url(args))
    evaluator = Evaluator(store, InferenceConfig(args.inference, args.batch_size, args.workers, args.cache_dir,
                                                 {"device": args.device} if args.device else {}))
    try:
        store.save_vocabulary(vocabulary)
        if args.task == RETRIEVAL:
            result = run_retrieval(evaluator, spec, vocabulary, progress=not args.no_progress)
            print(json.dumps(result.to_json(), indent=2) if args.json else result.text(args.top))
            return 0
        if args.via == "kafka":
            bus = open_bus(args.bus)
            try:
                sent = submit(evaluator.results, spec, bus, args.topic_eval_shards, partitions=args.partitions, force=args.force)
            finally:
                bus.close()
            print(f"evaluation {spec.evaluation_id}: {sent} of {len(spec.shards)} shards published on {args.topic_eval_shards}",
                  file=sys.stderr)
            progress = follow(evaluator.results, spec, timeout_s=args.timeout, progress=not args.no_progress)
            seconds, images = None, None
        else:
            summary = run_local(evaluator, spec, force=args.force, progress=not args.no_progress)
            progress, seconds, images = summary.progress, summary.seconds, summary.images
        result = evaluator.results.summary(spec)
        failures = progress.failures()
        if args.json:
            print(json.dumps(_json(spec, progress, result, seconds, images, mapping), indent=2))
        else:
            print(_text(spec, progress, result, seconds, images, args.top))
        return 1 if failures or not progress.finished else 0
    finally:
        evaluator.close()
        store.close()


def _pct(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def _json(spec, progress, result, seconds, images, mapping) -> dict:
    return {
        "evaluation_id": spec.evaluation_id, "model": spec.model, "pretrained": spec.pretrained_label, "model_ids": progress.model_ids,
        "precision": spec.precision, "prompts": spec.prompts.mode, "templates": len(spec.prompts.templates),
        "template_source": spec.prompts.source, "eval_dataset": spec.eval_dataset, "data": spec.data,
        "vocabulary_version": spec.vocabulary_version, "shards": len(spec.shards), "shards_done": progress.done,
        "failed": [{"shard": s, "reason": r} for s, r in progress.failures()], "samples": result.samples,
        "skipped": progress.skipped, "top1": _pct(result.top1), "top5": _pct(result.top5),
        "mean_per_class_recall": _pct(result.mean_per_class_recall),
        "seconds": round(seconds, 3) if seconds is not None else None,
        "images_per_second": round(images / seconds, 1) if seconds and images else None,
        "unmapped": mapping.unmapped if mapping else [],
        "empty_classes": [c.name for c in result.classes if not c.total],
        "classes": [{"class": c.name, "concept_id": c.concept_id, "correct_top1": c.correct_top1, "correct_top5": c.correct_top5,
                     "total": c.total, "accuracy": _pct(c.accuracy), "top5_accuracy": _pct(c.top5_accuracy)}
                    for c in result.classes],
    }


def _text(spec, progress, result, seconds, images, top: int) -> str:
    lines = [f"{spec.model} ({spec.pretrained_label}, {spec.precision}) on {spec.eval_dataset}, {spec.prompts.mode} prompts "
             f"({len(spec.prompts.templates)} templates): evaluation {spec.evaluation_id}",
             f"  {progress.done}/{len(spec.shards)} shards done, {progress.failed} failed; {result.samples:,} samples"
             + (f" in {seconds:.1f}s ({images / seconds:,.1f} images/s)" if seconds and images else "")]
    if progress.skipped:
        lines.append("  skipped: " + ", ".join(f"{reason} {n:,}" for reason, n in sorted(progress.skipped.items())))
    lines.append(f"  top-1 {result.top1:.2f}%  top-5 {result.top5:.2f}%  mean per-class recall {result.mean_per_class_recall:.2f}%")
    empty = [c.name for c in result.classes if not c.total]
    if empty and progress.finished:
        lines.append(f"  {len(empty)} classes had no usable samples: {', '.join(empty[:10])}{' ...' if len(empty) > 10 else ''}")
    worst = result.worst_first()[:top]
    if worst:
        lines.append(f"  worst {len(worst)} classes:")
        lines.extend(f"    {c.accuracy:6.2f}%  {c.correct_top1:>6,}/{c.total:<6,}  {c.name}" for c in worst)
    for shard, reason in progress.failures():
        lines.append(f"  FAILED {shard}: {reason}")
    return "\n".join(lines)
