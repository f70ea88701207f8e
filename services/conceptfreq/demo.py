"""`make demo`: conceptfreq end to end on the embedded default (chDB, in-process bus, torch://), in
./demo-output. Every step is printed as the `conceptfreq` command it runs, so it can be copied.

1. Text counts: sample webdataset shards are counted; `top` and `query` read the counts; a corrupt
   shard shows how failures are reported.
2. Images: sample shards with images go through `ingest --stages text,image` (parser, tagger and
   counter in one process, with the tiny test model), then `query` and `status`.
3. `retag` changes the tagging threshold from the stored scores, with no model and no shard reads.
4. With the reference data beside the repository (../shared/data, not in a clone): the real CC-3M
   validation captions, the paper's correlation and an HTML report from its published artifacts,
   and a long-tail list."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from conceptfreq.core.vocabulary import default
from conceptfreq.synthetic import brace_pattern, write_bad_shards, write_shards

OUT = Path("demo-output")
STORE = f"chdb://{(OUT / 'store').resolve()}"
SHARED_DATA = Path(os.environ.get("CONCEPTFREQ_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
# Few concepts, so that the random model's image tags land on concepts the captions also name and
# the matched counts are not all zero.
IMAGE_CONCEPTS = ["dog", "cat", "tiger", "airplane", "bicycle", "guitar", "pizza", "volcano", "lighthouse", "umbrella",
                  "penguin", "castle"]


def step(*args: str, allow_failure: bool = False) -> None:
    command = ["conceptfreq", *args]
    print(f"\n$ {shlex.join(command)}", flush=True)
    status = subprocess.call([sys.executable, "-m", "conceptfreq.cli", *args])
    if status and not allow_failure:
        raise SystemExit(f"demo step failed with exit status {status}")


def section(title: str, *lines: str) -> None:
    print(f"\n\n=== {title}", *lines, sep="\n", flush=True)


def text_counts() -> None:
    vocabulary = default()
    # A long-tailed slice of real downstream class names, so top and --rarest have something to show.
    names = [c.name for c in vocabulary][:: max(1, len(vocabulary) // 300)]
    shards = write_shards(OUT / "shards", n_shards=6, samples_per_shard=5000, concept_names=names, seed=7, name="sample")
    section("1. Text counts", f"wrote {len(shards)} sample shards of 5,000 captions to {OUT / 'shards'} "
                              f"(vocabulary {vocabulary.version}, {len(vocabulary)} concepts)")
    step("count", "--dataset", "sample", "--shards", brace_pattern(shards), "--store", STORE, "--workers", "2")
    step("top", "--dataset", "sample", "--k", "10", "--store", STORE)
    step("top", "--dataset", "sample", "--k", "5", "--rarest", "--store", STORE)
    step("query", "--dataset", "sample", "--store", STORE, *names[:3])

    bad = write_bad_shards(OUT / "bad")
    print("\nA corrupt shard is marked failed with its reason; the run goes on and exits non-zero:")
    step("count", "--dataset", "sample-with-bad", "--shards", str(bad["truncated_tar"]), "--store", STORE, "--no-progress",
         allow_failure=True)


def images_and_matched() -> None:
    from conceptfreq.adapters.inference.models import TINY_MODEL, tiny_checkpoint

    shards = write_shards(OUT / "images", n_shards=4, samples_per_shard=100, concept_names=IMAGE_CONCEPTS, with_images=True,
                          seed=5, name="images")
    vocab = OUT / "image-vocab.txt"
    vocab.write_text("\n".join(IMAGE_CONCEPTS) + "\n", encoding="utf-8")
    checkpoint = tiny_checkpoint(OUT / "model")
    section("2. Images: text, image and matched counts",
            f"wrote {len(shards)} shards of 100 captioned images to {OUT / 'images'}, a {len(IMAGE_CONCEPTS)}-concept vocabulary "
            f"to {vocab}, and the tiny test model to {checkpoint}.",
            "The tiny model has RANDOM weights: its image tags are not meaningful. The point here is the mechanics;",
            "a real model is e.g. `--model ViT-B-32 --pretrained laion400m_e32` (downloads the weights).",
            "On the in-process bus, ingest runs the parser, the tagger (torch://, in process) and the counter itself:")
    step("ingest", "--dataset", "sample-images", "--shards", brace_pattern(shards), "--vocab", str(vocab), "--stages", "text,image",
         "--inference", "torch://", "--model", TINY_MODEL, "--pretrained", str(checkpoint), "--cache-dir", str(OUT / "cache"),
         "--store", STORE)
    print("\nText (captions), image (the tagger) and matched (both, per sample), side by side:")
    step("query", "--dataset", "sample-images", "--store", STORE, *IMAGE_CONCEPTS[:6])
    print("\nShards by state and stage, and the misalignment degree (pairs whose caption and image share no concept):")
    step("status", "--dataset", "sample-images", "--store", STORE)

    section("3. Re-thresholding without a model",
            "The tagger stored each image's top concept scores, so a new threshold is a query over the store:",
            "no model, no GPU, no shard reads. The earlier rule stays queryable (`query --rule softmax:p=0.5`).")
    step("retag", "--dataset", "sample-images", "--threshold", "0.2", "--store", STORE)
    step("query", "--dataset", "sample-images", "--store", STORE, *IMAGE_CONCEPTS[:6])


def real_data() -> bool:
    """The steps that need ../shared/data; False when it is absent (a fresh clone)."""
    captions, artifacts = SHARED_DATA / "cc3m_val_captions.tsv", SHARED_DATA / "paper_artifacts"
    section("4. Real data", f"reference data: {SHARED_DATA}")
    if not captions.exists() and not artifacts.is_dir():
        print(f"skipped: no reference data at {SHARED_DATA} (it sits beside the repository, not in a clone; "
              "set CONCEPTFREQ_SHARED_DATA to point elsewhere)")
        return False
    if captions.exists():
        print(f"\nReal captions: the CC-3M validation split ({captions}).")
        step("count", "--dataset", "cc3m-val", "--shards", str(captions), "--store", STORE)
        step("top", "--dataset", "cc3m-val", "--k", "10", "--store", STORE)
        step("query", "--dataset", "cc3m-val", "--store", STORE, "great white shark", "tench", "t-shirt", "goose")
    else:
        print(f"\nskipped the CC-3M captions: no {captions}")
    if not artifacts.is_dir():
        print(f"\nskipped the paper's artifacts: no {artifacts}")
        return False
    paper = os.path.relpath(artifacts)
    fit = ["--paper-artifacts", paper, "--pretrain", "cc3m", "--model", "RN50", "--count", "integrated", "--prompts", "ensemble",
           "--method", "binned"]
    print("\nThe paper's own counts and zero-shot results: accuracy against log frequency, binned as in the paper "
          "(its Pearson correlation for RN50 on CC-3M is 0.96):")
    step("report", *fit, "--json")
    report = OUT / "report" / "report.html"
    step("report", *fit, "--html", str(report))
    print("\nThe rarest concepts across CC-3M and CC-12M, for a long-tail test set like the paper's \"Let It Wag!\" "
          "(concepts neither dataset shows tie at 0):")
    step("longtail", "--paper-artifacts", paper, "--datasets", "cc3m,cc12m", "--k", "10")
    return True


def next_steps(report_written: bool) -> None:
    section("Next",
            *([f"- open {(OUT / 'report' / 'report.html').resolve()}: the trend, the long tail and the cross-dataset view"]
              if report_written else []),
            f"- the store is {STORE}; every command above takes it with --store (or env CONCEPTFREQ_STORE)",
            f"- conceptfreq query --store {STORE} --dataset sample-images --rule softmax:p=0.5 tiger   (the rule before retag)",
            f"- conceptfreq retag --store {STORE} --dataset sample-images --list   (every recorded rule)",
            "- real image tags: --model ViT-B-32 --pretrained laion400m_e32, on a GPU with --inference torch://cuda",
            "- the same pipeline on a cluster (Kafka, ClickHouse, Triton, Helm): docs/pipeline.md, docs/tagging.md, docs/deploy.md")


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    text_counts()
    images_and_matched()
    next_steps(real_data())


if __name__ == "__main__":
    main()
