"""`conceptfreq synth`: a controlled world of image-caption shards with known concepts.

    conceptfreq synth --concepts 40 --samples 20000 --zipf 1.3 --image-size 64 --misalignment 0.1 --seed 0 --out world/

Writes webdataset shards (KEY.jpg + KEY.txt), the ground truth per sample (manifest.jsonl), the
world's vocabulary (vocab.txt) and a balanced held-out ImageFolder set (eval/); see
conceptfreq.world.generate for the layout.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from conceptfreq.errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser("synth", help="generate a controlled world: shards, ground truth and a held-out set",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--concepts", type=int, default=40, metavar="N", help="concepts in the world (default 40)")
    parser.add_argument("--samples", type=int, default=20000, metavar="M", help="image-caption pairs (default 20000)")
    parser.add_argument("--zipf", type=float, default=1.3, metavar="S", help="Zipf exponent of concept frequencies (default 1.3)")
    parser.add_argument("--image-size", type=int, default=64, metavar="PX", help="image side in pixels (default 64)")
    parser.add_argument("--misalignment", type=float, default=0.1, metavar="P",
                        help="fraction of captions that disagree with their image (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives identical shards (default 0)")
    parser.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default 1000)")
    parser.add_argument("--eval-per-concept", type=int, default=20, help="held-out images per concept (default 20)")
    parser.add_argument("--vocab", default=None, metavar="FILE",
                        help="vocabulary to sample concept names from (default: the packaged one)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (must be empty or absent)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    from conceptfreq.core.vocabulary import load
    from conceptfreq.world.generate import WorldSpec, generate

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {args.out} exists and is not an empty directory: pick a new one")
    spec = WorldSpec(args.concepts, args.samples, args.zipf, args.image_size, args.misalignment, args.seed, args.shard_size,
                     args.eval_per_concept).validate()
    started = time.monotonic()
    summary = generate(spec, out, progress=not args.no_progress, vocabulary=load(args.vocab) if args.vocab else None)
    seconds = time.monotonic() - started
    if args.json:
        json.dump({**summary, "seconds": round(seconds, 2)}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    concepts = summary["concepts"]
    aligned = summary["misalignment"].get("aligned", 0)
    print(f"world {summary['digest']}: {spec.samples:,} pairs in {spec.shards} shards, {spec.concepts} concepts "
          f"(Zipf {spec.zipf}), {spec.concepts * spec.eval_per_concept:,} held-out images, in {seconds:.1f}s")
    print(f"  shown per concept: {concepts[0]['image']:,} ({concepts[0]['name']}) down to {concepts[-1]['image']:,} "
          f"({concepts[-1]['name']}); misaligned captions {1 - aligned / spec.samples:.1%}")
    print(f"  shards {out / 'shards'}/world-{{00000..{spec.shards - 1:05d}}}.tar, vocabulary {out / 'vocab.txt'}, "
          f"held-out set {out / 'eval'}, truth {out / 'manifest.jsonl'}")
    return 0
