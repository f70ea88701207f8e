"""`make demo`: conceptfreq end to end on the embedded default (chDB), in ./demo-output.

It writes a few sample webdataset shards (plus one corrupt shard, to show how failures are
reported), counts them, lists the most and least frequent concepts, and queries a few by name.
When the CC-3M validation captions are beside the repository (../shared/data), it counts those
real captions too."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from conceptfreq.core.vocabulary import default
from conceptfreq.synthetic import brace_pattern, write_bad_shards, write_shards

OUT = Path("demo-output")
STORE = f"chdb://{(OUT / 'store').resolve()}"


def step(*args: str, allow_failure: bool = False) -> None:
    command = ["conceptfreq", *args]
    print(f"\n$ {shlex.join(command)}", flush=True)
    status = subprocess.call([sys.executable, "-m", "conceptfreq.cli", *args])
    if status and not allow_failure:
        raise SystemExit(f"demo step failed with exit status {status}")


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    vocabulary = default()
    # A long-tailed slice of real downstream class names, so top and --rarest have something to show.
    names = [c.name for c in vocabulary][:: max(1, len(vocabulary) // 300)]
    shards = write_shards(OUT / "shards", n_shards=6, samples_per_shard=5000, concept_names=names, seed=7, name="sample")
    print(f"wrote {len(shards)} sample shards of 5,000 captions to {OUT / 'shards'} (vocabulary {vocabulary.version}, {len(vocabulary)} concepts)")

    step("count", "--dataset", "sample", "--shards", brace_pattern(shards), "--store", STORE, "--workers", "2")
    step("top", "--dataset", "sample", "--k", "10", "--store", STORE)
    step("top", "--dataset", "sample", "--k", "5", "--rarest", "--store", STORE)
    step("query", "--dataset", "sample", "--store", STORE, *names[:3])

    bad = write_bad_shards(OUT / "bad")
    print("\nA corrupt shard is marked failed with its reason; the run goes on and exits non-zero:")
    step("count", "--dataset", "sample-with-bad", "--shards", str(bad["truncated_tar"]), "--store", STORE, "--no-progress",
         allow_failure=True)

    cc3m = Path(__file__).resolve().parents[3] / "shared" / "data" / "cc3m_val_captions.tsv"
    if cc3m.exists():
        print(f"\nReal captions: the CC-3M validation split ({cc3m}).")
        step("count", "--dataset", "cc3m-val", "--shards", str(cc3m), "--store", STORE)
        step("top", "--dataset", "cc3m-val", "--k", "10", "--store", STORE)
        step("query", "--dataset", "cc3m-val", "--store", STORE, "great white shark", "tench", "t-shirt", "goose")
    print(f"\ndone: the store is {STORE}; try `conceptfreq query --store {STORE} --dataset sample ...`")


if __name__ == "__main__":
    main()
