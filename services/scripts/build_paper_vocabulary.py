"""Build the packaged `paper` vocabulary: every concept named in the paper's published count files.

Usage, from the repository root:

    .venv/bin/python services/scripts/build_paper_vocabulary.py [--artifacts ../shared/data/paper_artifacts] [--check]

The paper ("No 'Zero-Shot' Without Exponential Data", Udandarao et al., 2024; artifacts under the
MIT licence) counts the class names of its downstream datasets, and of the COCO and Flickr
retrieval concepts, in `search_counts/{dataset}_{pretrain}_{method}_search_counts.json`. This
script reads the names of every such file, keeps them exactly as the paper writes them (`Cassins_Vireo`,
`2012 Tesla Model S Sedan`), so that counts join the paper's accuracy files without renaming, and
records each file's sha256. Names that differ only in case or punctuation across datasets
(`chihuahua`, `Chihuahua`) are one concept; `names_by_dataset` in the provenance keeps each
dataset's own spelling.

Each concept that is also in the default vocabulary (by name, alias or plural; Stanford Cars with the
year moved from the front to the back, as the default writes it) records that concept's id in
`same_as_default`, and takes its WordNet senses, so the phrase+pos matcher treats both alike.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

from conceptfreq.core import vocabulary as vocabularies
from conceptfreq.core.text import phrase_key
from conceptfreq.core.vocabulary import Concept, Vocabulary, dumps

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "services" / "conceptfreq" / "data" / "paper_vocabulary.json"
DEFAULT_ARTIFACTS = REPO.parent / "shared" / "data" / "paper_artifacts"
_FILE = re.compile(r"^(?P<dataset>.+?)_(?P<pretrain>cc3m|cc12m|[a-z0-9]+)_(?P<method>.+)_search_counts\.json$")
_YEAR_FIRST = re.compile(r"^(?P<year>(19|20)\d\d) (?P<rest>.+)$")


def read_counts(artifacts: Path) -> tuple[dict[str, list[str]], list[dict]]:
    """{dataset: names in first-seen order} over every count file, and the files read."""
    directory = artifacts / "search_counts"
    paths = sorted(directory.glob("*_search_counts.json"))
    if not paths:
        raise SystemExit(f"no *_search_counts.json under {directory}: pass --artifacts DIR (the paper's artifacts)")
    names: dict[str, dict[str, None]] = {}
    files = []
    for path in paths:
        match = _FILE.match(path.name)
        if not match:
            raise SystemExit(f"unexpected count file name {path.name!r}")
        data = path.read_bytes()
        counts = json.loads(data)
        dataset = match["dataset"]
        seen = names.setdefault(dataset, {})
        for name in counts:
            seen.setdefault(name, None)
        files.append({"path": f"search_counts/{path.name}", "dataset": dataset, "names": len(counts),
                      "sha256": hashlib.sha256(data).hexdigest()})
    return {dataset: list(order) for dataset, order in names.items()}, files


def default_match(default: Vocabulary, name: str) -> Concept | None:
    concept = default.get(name)
    if concept is None:
        year_first = _YEAR_FIRST.match(" ".join(name.split()))
        if year_first:  # Stanford Cars: the paper writes "2012 Tesla Model S Sedan", the default "... Sedan 2012"
            concept = default.get(f"{year_first['rest']} {year_first['year']}")
    return concept


def build(artifacts: Path) -> Vocabulary:
    by_dataset, files = read_counts(artifacts)
    default = vocabularies.default()
    concepts: list[dict] = []
    index: dict[str, int] = {}
    names_by_dataset: dict[str, dict[str, int]] = {}
    empty: dict[str, int] = {}
    for dataset in sorted(by_dataset):
        for name in by_dataset[dataset]:
            key = phrase_key(name)
            if not key:
                empty[dataset] = empty.get(dataset, 0) + 1
                continue
            if key not in index:
                index[key] = len(concepts)
                concepts.append({"name": name, "sources": []})
            entry = concepts[index[key]]
            if dataset not in entry["sources"]:
                entry["sources"].append(dataset)
            names_by_dataset.setdefault(dataset, {})[name] = index[key]
    built, same_as = [], {}
    for number, entry in enumerate(concepts):
        match = default_match(default, entry["name"])
        if match is not None:
            same_as[str(number)] = match.id
        built.append(Concept(id=number, name=entry["name"], sources=tuple(entry["sources"]),
                             senses=match.senses if match is not None else ()))
    not_in_default = {d: sum(default_match(default, n) is None for n in names if phrase_key(n))
                      for d, names in sorted(by_dataset.items())}
    provenance = {
        "description": "Every concept named in the count files published with 'No Zero-Shot Without Exponential Data' "
                       "(Udandarao et al., 2024), with the paper's exact names.",
        "built_by": "services/scripts/build_paper_vocabulary.py",
        "names": "as_written",
        "licence": "MIT (the paper's artifacts, LICENSE beside search_counts/)",
        "datasets": sorted(by_dataset),
        "files": files,
        "dropped": {"empty_names": empty} if empty else {},
        "default_vocabulary_version": default.version,
        "same_as_default": same_as,
        "not_in_default": not_in_default,
        "names_by_dataset": names_by_dataset,
    }
    return Vocabulary(tuple(built), name="paper", provenance=provenance)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", type=Path, default=DEFAULT_ARTIFACTS, help="the paper's artifacts folder")
    parser.add_argument("--check", action="store_true", help="exit 1 if the packaged file is not what this script writes")
    args = parser.parse_args(argv)
    text = dumps(build(args.artifacts))
    if args.check:
        same = OUTPUT.is_file() and text == OUTPUT.read_text(encoding="utf-8")
        print(f"{OUTPUT.name}: {'up to date' if same else 'differs from what build_paper_vocabulary.py writes'}")
        return 0 if same else 1
    OUTPUT.write_text(text, encoding="utf-8")
    vocabulary = vocabularies.parse_json(text, name="paper")
    mapped = len(vocabulary.provenance["same_as_default"])
    print(f"{OUTPUT.name}: {len(vocabulary)} concepts, {mapped} the same as a default concept; version {vocabulary.version}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
