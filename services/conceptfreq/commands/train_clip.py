"""`conceptfreq train-clip`: train a small open_clip CLIP from scratch on image-caption shards (CPU).

    conceptfreq train-clip --shards 'world/shards/world-{00000..00019}.tar' --config world --steps 600 --out world.pt

The checkpoint loads by path wherever a model is named: `--model conceptfreq-world --pretrained world.pt`
(ingest's tagger, evaluate). A JSON record of the run (config, loss curve, speed) is written beside it.
"""

from __future__ import annotations

import json
import sys

from conceptfreq.world.train import CONFIG_ALIASES


def register(subparsers) -> None:
    parser = subparsers.add_parser("train-clip", help="train a small CLIP on image-caption shards (open_clip, CPU)",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", required=True, metavar="PATTERN", help="webdataset tars with KEY.jpg and KEY.txt/json")
    parser.add_argument("--config", default="world", metavar="NAME",
                        help="open_clip model config, or " + ", ".join(f"{k} ({v})" for k, v in CONFIG_ALIASES.items())
                             + "; default world")
    parser.add_argument("--steps", type=int, default=600, help="optimizer steps (default 600)")
    parser.add_argument("--batch-size", type=int, default=256, help="pairs per step (default 256)")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate, cosine schedule (default 2e-3)")
    parser.add_argument("--warmup", type=int, default=50, help="linear warm-up steps (default 50)")
    parser.add_argument("--weight-decay", type=float, default=0.1, help="AdamW weight decay (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="initialization and batch-order seed (default 0)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads, fixed so results repeat (default 1: on a small shared host more threads oversubscribe the cores and run slower)")
    parser.add_argument("--out", required=True, metavar="FILE.pt", help="checkpoint to write (a JSON record goes beside it)")
    parser.add_argument("--json", action="store_true", help="print the run record as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    from conceptfreq.adapters.shards import expand_shards
    from conceptfreq.world.train import TrainConfig, resolve_config, train

    config = TrainConfig(resolve_config(args.config), args.steps, args.batch_size, args.lr, args.weight_decay, args.warmup,
                         args.seed, args.threads)
    result = train(expand_shards(args.shards), args.out, config, progress=not args.no_progress)
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    first, last = result.losses[0][1], result.losses[-1][1]
    print(f"trained {config.model} on {result.pairs:,} pairs: {config.steps} steps of {config.batch_size} in {result.seconds:.0f}s "
          f"({result.steps_per_second:.2f} steps/s; reading took {result.load_seconds:.0f}s); loss {first:.3f} -> {last:.3f}, "
          f"logit scale {result.logit_scale:.0f}")
    print(f"  checkpoint {result.checkpoint}: use it as --model {config.model} --pretrained {result.checkpoint}")
    return 0
