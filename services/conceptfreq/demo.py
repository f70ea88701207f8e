"""`make demo`: the paper's finding reproduced end to end on one machine, in ./demo-output, on the
embedded default (chDB, in-process bus, torch://). Every step is printed as the `conceptfreq`
command it runs, so it can be copied.

The main act is a controlled world, where the ground truth is known:
1. `synth` makes image-caption shards with Zipf-distributed concepts, misaligned captions and a
   balanced held-out set;
2. `train-clip` trains a small CLIP on them (open_clip, CPU; cached in demo-output/cache for the
   next run);
3. `ingest` counts text, image (tagged by the trained model) and matched frequencies;
4. `evaluate` measures zero-shot accuracy per concept on the held-out set;
5. `report` fits the trend (the paper's binned Pearson, the slope per 10x data with its interval)
   and writes the HTML report;
6. `world-report` scores the counts against the truth and fits the trend on true frequencies too.

Extras: re-thresholding from stored scores, a corrupt shard's failure report, and, when the
reference data sits beside the repository (../shared/data, never in a clone), the paper's own
numbers from its published artifacts. Set CONCEPTFREQ_DEMO_SCALE=ci for a smaller, faster world.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

OUT = Path(os.environ.get("CONCEPTFREQ_DEMO_OUT", "demo-output"))
CACHE = OUT / "cache"
SHARED_DATA = Path(os.environ.get("CONCEPTFREQ_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
MODEL = "conceptfreq-world"
DATASET = "world"          # the checkpoint is named after it, so results file under the dataset's name
EVAL_NAME = "world-eval"


@dataclass(frozen=True)
class Scale:
    concepts: int
    samples: int
    zipf: float
    misalignment: float
    eval_per_concept: int
    steps: int
    batch_size: int
    rule: str


# The full demo, and a CI-sized one with the same story (tests/e2e/test_world_demo.py).
SCALES = {
    "full": Scale(concepts=40, samples=20000, zipf=1.3, misalignment=0.1, eval_per_concept=30, steps=250, batch_size=256,
                  rule="softmax:p=0.2"),
    "ci": Scale(concepts=30, samples=6000, zipf=1.3, misalignment=0.1, eval_per_concept=20, steps=150, batch_size=128,
                rule="softmax:p=0.2"),
}
TIMINGS: dict[str, float] = {}


def step(*args: str, allow_failure: bool = False, stage: str | None = None) -> None:
    command = ["conceptfreq", *args]
    print(f"\n$ {shlex.join(command)}", flush=True)
    started = time.monotonic()
    status = subprocess.call([sys.executable, "-m", "conceptfreq.cli", *args])
    if stage:
        TIMINGS[stage] = TIMINGS.get(stage, 0.0) + time.monotonic() - started
    if status and not allow_failure:
        raise SystemExit(f"demo step failed with exit status {status}")


def section(title: str, *lines: str) -> None:
    print(f"\n\n=== {title}", *lines, sep="\n", flush=True)


def _brace(paths: list[str]) -> str:
    from conceptfreq.synthetic import brace_pattern

    return brace_pattern(paths)


def world_story(scale: Scale, store: str) -> dict:
    from conceptfreq.world.generate import WorldSpec, shard_paths

    spec = WorldSpec(concepts=scale.concepts, samples=scale.samples, zipf=scale.zipf, misalignment=scale.misalignment,
                     seed=0, eval_per_concept=scale.eval_per_concept)
    world = OUT / "world"
    section("1. A controlled world",
            f"{spec.samples:,} image-caption pairs over {spec.concepts} concepts (names sampled from the default vocabulary),",
            f"concept frequencies Zipf with exponent {spec.zipf}, {spec.misalignment:.0%} of captions misaligned, and a balanced",
            f"held-out set of {spec.eval_per_concept} images per concept. Every pair's true concepts go to the manifest.")
    step("synth", "--concepts", str(spec.concepts), "--samples", str(spec.samples), "--zipf", str(spec.zipf), "--image-size", "64",
         "--misalignment", str(spec.misalignment), "--seed", str(spec.seed), "--eval-per-concept", str(spec.eval_per_concept),
         "--out", str(world), stage="synth")
    shards = _brace(shard_paths(world, spec))

    train = ["--config", "world", "--steps", str(scale.steps), "--batch-size", str(scale.batch_size), "--seed", "0"]
    key = hashlib.sha256(json.dumps([spec.digest(), train]).encode()).hexdigest()[:12]
    checkpoint = CACHE / f"clip-{key}" / f"{DATASET}.pt"
    section("2. A small CLIP trained in that world",
            f"open_clip's {MODEL} config (64 px, two transformer layers per tower) and ClipLoss, on the CPU.")
    if checkpoint.is_file():
        print(f"\n(cached: {checkpoint} was trained by an earlier run with the same world and settings; "
              f"delete {CACHE} to train again)\n$ {shlex.join(['conceptfreq', 'train-clip', '--shards', shards, *train, '--out', str(checkpoint)])}")
    else:
        step("train-clip", "--shards", shards, *train, "--out", str(checkpoint), stage="train")
    vocab = str(world / "vocab.txt")
    model = ["--model", MODEL, "--pretrained", str(checkpoint)]

    section("3. Counting: text, image and matched frequencies",
            "The parser matches the world's vocabulary in the captions; the tagger tags every image with the trained model",
            f"(rule {scale.rule}: every concept with at least that softmax probability); the counter intersects the two.")
    step("ingest", "--dataset", DATASET, "--shards", shards, "--vocab", vocab, "--stages", "text,image", "--inference", "torch://",
         *model, "--prompts", "simple", "--rule", scale.rule, "--cache-dir", str(OUT / "cache" / "embeddings"), "--store", store,
         stage="ingest")
    step("status", "--dataset", DATASET, "--store", store, stage="ingest")

    section("4. Zero-shot accuracy per concept, on the held-out set")
    step("evaluate", *model, "--data", str(world / "eval"), "--name", EVAL_NAME, "--vocab", vocab, "--store", store,
         "--top", "5", stage="evaluate")

    section("5. The trend: accuracy against log frequency",
            "binned: the paper's estimator (Pearson over bins of log frequency). per-concept: accuracy points per 10x data,",
            "with a 95% bootstrap interval over concepts, and how much more data +10 points takes.")
    fit = ["--dataset", DATASET, "--model", MODEL, "--count", "matched", "--store", store]
    step("report", *fit, "--method", "binned", stage="report")
    step("report", *fit, "--method", "per-concept", stage="report")
    step("report", *fit, "--method", "per-concept", "--html", str(OUT / "report" / "report.html"), stage="report")

    section("6. Against the ground truth",
            "Precision and recall of the counts over (sample, concept) pairs, and the same trend fitted on the true",
            "frequencies: the gap between the two is what counting error does to the finding.")
    summary = OUT / "world-report.json"
    step("world-report", "--world", str(world), "--dataset", DATASET, "--model", MODEL, "--pretrained", DATASET,
         "--eval-dataset", EVAL_NAME, "--store", store, "--plot", str(OUT / "report" / "trend-truth.png"), stage="report")
    with open(summary, "w", encoding="utf-8") as out:
        subprocess.run([sys.executable, "-m", "conceptfreq.cli", "world-report", "--world", str(world), "--dataset", DATASET,
                        "--model", MODEL, "--pretrained", DATASET, "--eval-dataset", EVAL_NAME, "--store", store, "--json"],
                       stdout=out, check=True)
    return json.loads(summary.read_text(encoding="utf-8"))


def extras(scale: Scale, store: str) -> None:
    from conceptfreq.synthetic import write_bad_shards

    section("7. Re-thresholding without a model",
            "The tagger stored each image's top concept scores, so a new threshold is a query over the store: no model,",
            "no shard reads. A higher threshold trades image recall for precision (compare with `world-report`).")
    step("retag", "--dataset", DATASET, "--threshold", "0.5", "--store", store, stage="extras")
    step("query", "--dataset", DATASET, "--store", store, "--rule", "softmax:p=0.5", *_top_names(3), stage="extras")
    step("retag", "--dataset", DATASET, "--rule", scale.rule, "--store", store, stage="extras")

    bad = write_bad_shards(OUT / "bad")
    section("8. A corrupt shard is marked failed with its reason; the run goes on and exits non-zero")
    step("count", "--dataset", "with-bad-shard", "--shards", str(bad["truncated_tar"]), "--store", store, "--no-progress",
         allow_failure=True, stage="extras")


def _top_names(n: int) -> list[str]:
    summary = json.loads((OUT / "world" / "world.json").read_text(encoding="utf-8"))
    return [c["name"] for c in summary["concepts"][:n]]


def paper_artifacts() -> bool:
    """The paper's own numbers, when its artifacts sit beside the repository (never in a clone)."""
    artifacts = SHARED_DATA / "paper_artifacts"
    section("9. The paper's own artifacts", f"reference data: {SHARED_DATA}")
    if not artifacts.is_dir():
        print(f"skipped: no {artifacts} (it sits beside the repository, not in a clone; set CONCEPTFREQ_SHARED_DATA)")
        return False
    paper = os.path.relpath(artifacts)
    print("The paper's counts and zero-shot results, binned as in the paper (its Pearson for RN50 on CC-3M is 0.96):")
    step("report", "--paper-artifacts", paper, "--pretrain", "cc3m", "--model", "RN50", "--count", "integrated",
         "--prompts", "ensemble", "--method", "binned", stage="extras")
    print("\nThe rarest concepts across CC-3M and CC-12M, for a long-tail test set like the paper's \"Let It Wag!\":")
    step("longtail", "--paper-artifacts", paper, "--datasets", "cc3m,cc12m", "--k", "10", stage="extras")
    return True


def summary_table(result: dict) -> str:
    trends = {t["frequency"]: t for t in result["trends"]}
    lines = ["", "=" * 100, "SUMMARY: zero-shot accuracy rises log-linearly with pretraining frequency", "=" * 100,
             f"{'frequency':<18} {'binned Pearson':>14} {'points per 10x':>15} {'95% CI':>16} {'p':>9} {'data for +10 points':>20}"]
    for name in ("true matched", "measured matched", "measured text", "measured image"):
        trend = trends[name]
        fit, binned = trend["per_concept"], trend["binned"]
        low, high = fit["slope_ci"]
        multiplier = (fit.get("exponential") or {}).get("multiplier")
        lines.append(f"{name:<18} {binned['pearson']:>14.3f} {fit['slope_per_decade']:>+15.1f} {f'[{low:+.1f}, {high:+.1f}]':>16} "
                     f"{fit['ols_slope_p_value']:>9.1e} {(f'{multiplier:.1f}x' if multiplier else '-'):>20}")
    lines += ["", f"{'counts vs truth':<18} {'precision':>10} {'recall':>8} {'count Spearman':>15}"]
    for row in result["counts"]:
        lines.append(f"{row['kind']:<18} {row['precision']:>10.3f} {row['recall']:>8.3f} {row['count_spearman']:>15.3f}")
    accuracy = [c["accuracy"] for c in result["concepts"]]
    lines += ["", f"{len(accuracy)} concepts, mean zero-shot accuracy {sum(accuracy) / len(accuracy):.1f}% "
              f"(chance {100 / len(accuracy):.1f}%); image tags under {result['image_rule']}",
              "stage wall times: " + ", ".join(f"{k} {v:.0f}s" for k, v in TIMINGS.items())]
    return "\n".join(lines)


def main() -> None:
    scale = SCALES[os.environ.get("CONCEPTFREQ_DEMO_SCALE", "full")]
    started = time.monotonic()
    OUT.mkdir(exist_ok=True)
    for child in OUT.iterdir():  # everything but the cache: each run starts clean, the trained model is kept
        if child != CACHE:
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    store = f"chdb://{(OUT / 'store').resolve()}"
    result = world_story(scale, store)
    extras(scale, store)
    paper_artifacts()
    TIMINGS["total"] = time.monotonic() - started
    print(summary_table(result))
    (OUT / "timings.json").write_text(json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}, indent=1) + "\n")
    section("Next",
            f"- open {(OUT / 'report' / 'report.html').resolve()}: the trend, per concept",
            f"- {(OUT / 'report' / 'trend-truth.png').resolve()}: accuracy against true and measured frequency",
            f"- the store is {store}; every command above takes it with --store (or env CONCEPTFREQ_STORE)",
            "- test a hypothesis: `conceptfreq synth --misalignment 0.4 ...`, then the same steps (docs in README)",
            "- the same pipeline on a cluster (Kafka, ClickHouse, Triton, Helm): docs/pipeline.md, docs/deploy.md")


if __name__ == "__main__":
    main()
