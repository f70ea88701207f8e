"""A controlled world: webdataset shards of image-caption pairs whose true concepts are known,
and a balanced held-out set to measure zero-shot accuracy per concept on.

- Concept i (0-based) is drawn with probability proportional to 1 / (i + 1) ** zipf: a Zipf law
  over the world's vocabulary, whose order is itself a random sample of the source vocabulary.
- Each image has 1-3 slots, each drawn independently from that law; a concept drawn twice is shown
  twice and captioned in the plural ("two kites"). Because slots are i.i.d., the recorded slot
  draws follow the Zipf law exactly, which the tests check with a goodness-of-fit test.
- With probability `misalignment` a caption disagrees with its image, as web alt-text does: a shown
  concept is omitted, an absent one is named, or one is swapped for an absent one.

Layout of DIR:
  shards/world-NNNNN.tar   KEY.jpg + KEY.txt (the caption); nothing else: the pipeline sees what a crawl gives
  manifest.jsonl           per sample: key, shard, slots, image concepts, caption concepts, misalignment kind
  world.json               the spec, the concepts with their visual identities, per-concept true counts
  vocab.txt                the world's vocabulary (`--vocab`), name|alias lines in concept-id order
  eval/NAME/*.jpg          the held-out set (ImageFolder: one folder per concept, spaces as underscores),
                           eval_per_concept images each, with zeroshot_classification_templates.txt beside

Every file depends only on the spec: the same seed gives byte-identical shards.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from conceptfreq.core.vocabulary import Vocabulary
from conceptfreq.errors import UserError
from conceptfreq.world import concepts as world_concepts
from conceptfreq.world.captions import CaptionWriter
from conceptfreq.world.render import Identity, identities, render

SLOT_WEIGHTS = (0.5, 0.3, 0.2)  # an image shows 1, 2 or 3 concept slots
MISALIGNMENT_KINDS = ("omit", "add", "swap")
JPEG_QUALITY = 90
FORMAT_VERSION = 1


@dataclass(frozen=True)
class WorldSpec:
    concepts: int = 40
    samples: int = 20000
    zipf: float = 1.3
    image_size: int = 64
    misalignment: float = 0.1
    seed: int = 0
    shard_size: int = 1000
    eval_per_concept: int = 20

    def validate(self) -> "WorldSpec":
        checks = [
            (2 <= self.concepts <= 400, f"--concepts must be between 2 and 400, got {self.concepts}"),
            (self.samples >= 1, f"--samples must be at least 1, got {self.samples}"),
            (0 <= self.zipf <= 5, f"--zipf must be between 0 and 5, got {self.zipf}"),
            (16 <= self.image_size <= 512, f"--image-size must be between 16 and 512, got {self.image_size}"),
            (0 <= self.misalignment <= 1, f"--misalignment must be between 0 and 1, got {self.misalignment}"),
            (self.shard_size >= 1, f"--shard-size must be at least 1, got {self.shard_size}"),
            (self.eval_per_concept >= 1, f"--eval-per-concept must be at least 1, got {self.eval_per_concept}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        return self

    @property
    def shards(self) -> int:
        return (self.samples + self.shard_size - 1) // self.shard_size

    def digest(self) -> str:
        """Names the world's content: the spec and the generator's format version."""
        return hashlib.sha256(json.dumps([FORMAT_VERSION, asdict(self)], sort_keys=True).encode()).hexdigest()[:16]


def zipf_probabilities(n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return weights / weights.sum()


@dataclass(frozen=True)
class WorldSample:
    key: str
    shard: int
    slots: tuple[int, ...]             # concept drawn per slot (an image's instances)
    image: tuple[int, ...]             # concepts shown, sorted
    caption_concepts: tuple[int, ...]  # concepts the caption names, sorted
    misaligned: str | None             # None, or one of MISALIGNMENT_KINDS
    caption: str

    def to_json(self) -> dict:
        return {"key": self.key, "shard": self.shard, "slots": list(self.slots), "image": list(self.image),
                "caption_concepts": list(self.caption_concepts), "misaligned": self.misaligned, "caption": self.caption}


class World:
    """A spec made concrete: its vocabulary, the concepts' identities and the caption writer."""

    def __init__(self, spec: WorldSpec, vocabulary: Vocabulary | None = None):
        self.spec = spec.validate()
        try:
            self.vocabulary = world_concepts.choose(spec.concepts, spec.seed, vocabulary)
            self.identities: list[Identity] = identities(spec.concepts, np.random.default_rng([spec.seed, 3]))
        except ValueError as error:
            raise UserError(str(error)) from None
        self.probabilities = zipf_probabilities(spec.concepts, spec.zipf)
        self.captions = CaptionWriter(self.vocabulary)

    def _absent(self, rng: np.random.Generator, shown: set[int]) -> int:
        while True:
            concept = int(rng.choice(len(self.probabilities), p=self.probabilities))
            if concept not in shown:
                return concept

    def sample(self, rng: np.random.Generator, shard: int, index: int) -> WorldSample:
        """What one pair shows and says; its pixels come from `image`, on a separate random stream."""
        n_slots = int(rng.choice(len(SLOT_WEIGHTS), p=SLOT_WEIGHTS)) + 1
        slots = tuple(int(c) for c in rng.choice(len(self.probabilities), size=n_slots, p=self.probabilities))
        copies = Counter(slots)
        named = [(concept, copies[concept]) for concept in rng.permutation(sorted(copies)).tolist()]
        kind = None
        if rng.random() < self.spec.misalignment and len(copies) < len(self.probabilities):
            kind = MISALIGNMENT_KINDS[int(rng.integers(len(MISALIGNMENT_KINDS)))]
            if kind == "add" and len(named) == 3:
                kind = "swap"  # captions name at most three concepts
            if kind == "omit":
                named.pop(int(rng.integers(len(named))))
            elif kind == "add":
                named.insert(int(rng.integers(len(named) + 1)), (self._absent(rng, set(copies)), 1))
            else:
                named[int(rng.integers(len(named)))] = (self._absent(rng, set(copies)), 1)
        caption = self.captions.caption(named, rng)
        return WorldSample(f"{shard:05d}{index:05d}", shard, slots, tuple(sorted(copies)),
                           tuple(sorted(c for c, _ in named)), kind, caption)

    def image(self, sample: WorldSample, rng: np.random.Generator) -> np.ndarray:
        return render([self.identities[c] for c in sample.slots], rng, self.spec.image_size)

    def shard_samples(self, shard: int) -> Iterator[WorldSample]:
        """The shard's samples without pixels (cheap): what the manifest holds."""
        # Each shard's content depends only on (seed, shard), not on how many shards there are.
        rng = np.random.default_rng([self.spec.seed, 1, shard])
        start = shard * self.spec.shard_size
        for index in range(min(self.spec.shard_size, self.spec.samples - start)):
            yield self.sample(rng, shard, index)

    def shard_pairs(self, shard: int) -> Iterator[tuple[WorldSample, np.ndarray]]:
        pixels = np.random.default_rng([self.spec.seed, 4, shard])
        for sample in self.shard_samples(shard):
            yield sample, self.image(sample, pixels)

    def eval_images(self, concept: int) -> Iterator[np.ndarray]:
        rng = np.random.default_rng([self.spec.seed, 2, concept])
        for _ in range(self.spec.eval_per_concept):
            yield render([self.identities[concept]], rng, self.spec.image_size)


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def shard_paths(out: Path, spec: WorldSpec) -> list[str]:
    return [str(out / "shards" / f"world-{shard:05d}.tar") for shard in range(spec.shards)]


def generate(spec: WorldSpec, out_dir, *, progress: bool = True, vocabulary: Vocabulary | None = None) -> dict:
    """Write the world to out_dir; returns the summary that world.json holds."""
    from tqdm import tqdm
    from webdataset import TarWriter

    world = World(spec, vocabulary)
    out = Path(out_dir)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    slot_counts = np.zeros(spec.concepts, np.int64)
    image_counts = np.zeros(spec.concepts, np.int64)
    caption_counts = np.zeros(spec.concepts, np.int64)
    matched_counts = np.zeros(spec.concepts, np.int64)
    misaligned = Counter()
    paths = shard_paths(out, spec)
    bar = tqdm(total=spec.samples + spec.concepts * spec.eval_per_concept, unit="img", disable=not progress,
               dynamic_ncols=True, desc="synth", mininterval=1.0)
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as manifest:
        for shard, path in enumerate(paths):
            # A fixed mtime makes the archive bytes, not just their content, reproducible.
            with TarWriter(path, mtime=0) as sink:
                for sample, pixels in world.shard_pairs(shard):
                    sink.write({"__key__": sample.key, "jpg": jpeg(pixels), "txt": sample.caption})
                    manifest.write(json.dumps(sample.to_json()) + "\n")
                    np.add.at(slot_counts, list(sample.slots), 1)
                    image_counts[list(sample.image)] += 1
                    caption_counts[list(sample.caption_concepts)] += 1
                    matched_counts[sorted(set(sample.image) & set(sample.caption_concepts))] += 1
                    misaligned[sample.misaligned or "aligned"] += 1
                    bar.update(1)
    write_eval_set(world, out / "eval", bar)
    bar.close()
    world_concepts.write_vocabulary(world.vocabulary, out / "vocab.txt")
    summary = {
        "format_version": FORMAT_VERSION, "spec": asdict(spec), "digest": spec.digest(),
        "vocabulary_version": world.vocabulary.version, "shards": [Path(p).name for p in paths],
        "misalignment": {k: int(v) for k, v in sorted(misaligned.items())},
        "concepts": [{**concept.to_json(), "identity": identity.to_json(), "probability": float(p),
                      "slots": int(slots), "image": int(image), "caption": int(caption), "matched": int(matched)}
                     for concept, identity, p, slots, image, caption, matched
                     in zip(world.vocabulary, world.identities, world.probabilities, slot_counts, image_counts,
                            caption_counts, matched_counts)],
    }
    (out / "world.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def write_eval_set(world: World, root: Path, bar=None) -> None:
    from conceptfreq.adapters.shards.evalsets import TEMPLATES_FILE

    root.mkdir(parents=True, exist_ok=True)
    for concept in world.vocabulary:
        folder = root / eval_folder(concept.name)
        folder.mkdir(exist_ok=True)
        for index, pixels in enumerate(world.eval_images(concept.id)):
            (folder / f"{index:04d}.jpg").write_bytes(jpeg(pixels))
            if bar is not None:
                bar.update(1)
    (root / TEMPLATES_FILE).write_text("".join(f"{t}\n" for t in world.captions.eval_templates), encoding="utf-8")


def eval_folder(name: str) -> str:
    """ImageFolder's convention: the class name with underscores for spaces (read back as spaces)."""
    return name.replace(" ", "_")


def read_manifest(world_dir) -> Iterator[dict]:
    with open(Path(world_dir) / "manifest.jsonl", encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


def read_summary(world_dir) -> dict:
    path = Path(world_dir) / "world.json"
    if not path.is_file():
        raise UserError(f"{world_dir} is not a world (no world.json): make one with `conceptfreq synth --out {world_dir}`")
    return json.loads(path.read_text(encoding="utf-8"))
