"""Reading the published artifacts of "No 'Zero-Shot' Without Exponential Data".

Layout (see ../shared/data/README.md):
- `search_counts/{downstream}_{pretrain}_{method}_search_counts.json`: `{class name: count}`
- `zero_shot_evaluations/{downstream}_{prompts}_results.json`:
  `{"backbone{MODEL}_pretrained{PRETRAIN}": {"full": top1, "classwise": {class: accuracy %}}}`
- `let_it_wag/let_it_wag_class_list.txt`, and `misalignment_metrics/{pretrain}_misalignment_degree.json` when present.

This module knows the paper's names and quirks; everything it returns is plain data for core/.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from conceptfreq.core.counting import IMAGE, MATCHED, PAPER_RULES, TEXT
from conceptfreq.core.text import phrase_key
from conceptfreq.core.trends import TrendData
from conceptfreq.errors import NotFoundError, UserError

# The 18 classification sets the paper pools for its trend (imagenet-r and the captioning sets are not in it).
PAPER_DOWNSTREAM = ("imagenet", "cifar10", "cifar100", "caltech101", "caltech256", "sun397", "birdsnap", "country211",
                    "cub", "dtd", "eurosat", "fgvcaircraft", "flowers102", "food101", "imagenet-sketch", "oxfordpets",
                    "stanfordcars", "ucf101")
PROMPTS = ("class", "simple", "ensemble")

# Count methods of the artifacts and the kind each one is; a method name is also the store's `rule`.
METHOD_KINDS = (
    (re.compile(r"^lemmatized$"), TEXT),
    (re.compile(r"^lowercased$"), TEXT),
    (re.compile(r"^rampp\d+(\.\d+)?$"), IMAGE),
    (re.compile(r"^integrated_tlemmatized_i\d+(\.\d+)?$"), MATCHED),
)
# Short names, and the count the paper reports for each kind.
METHOD_ALIASES = {"integrated": PAPER_RULES[MATCHED], **PAPER_RULES}
# Evaluation class names that the count files spell differently.
CLASS_ALIASES = {"cifar10": {"plane": "airplane"}}

_COUNT_FILE = re.compile(r"^(?P<downstream>[^_]+)_(?P<pretrain>[^_]+)_(?P<method>.+)_search_counts\.json$")
_RESULT_FILE = re.compile(r"^(?P<downstream>[^_]+)_(?P<prompts>[^_]+)_results\.json$")
_MODEL_KEY = re.compile(r"^backbone(?P<model>.+?)_pretrained(?P<pretrained>.+)$")


def method_kind(method: str) -> str:
    for pattern, kind in METHOD_KINDS:
        if pattern.match(method):
            return kind
    raise UserError(f"unknown count method {method!r}: use integrated, lemmatized, lowercased, rampp<t> "
                    "or integrated_tlemmatized_i<t>")


def resolve_method(count: str) -> str:
    method = METHOD_ALIASES.get(count, count)
    method_kind(method)
    return method


def parse_model_key(key: str) -> tuple[str, str]:
    match = _MODEL_KEY.match(key)
    if not match:
        raise UserError(f"unexpected model key {key!r}: expected backbone<MODEL>_pretrained<DATASET>")
    return match["model"], match["pretrained"]


@dataclass(frozen=True)
class CountFile:
    downstream: str
    pretrain: str
    method: str
    path: Path

    @property
    def kind(self) -> str:
        return method_kind(self.method)

    @property
    def shard(self) -> str:
        """The pseudo-shard name this file is imported as."""
        return f"paper:{self.downstream}_{self.pretrain}_{self.method}"


class PaperArtifacts:
    """A read-only view of one artifacts directory; it is also a report source (see reporter/sources.py)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        if not (self.root / "search_counts").is_dir() or not (self.root / "zero_shot_evaluations").is_dir():
            raise UserError(f"{str(self.root)!r} is not a paper artifacts directory: "
                            "it needs search_counts/ and zero_shot_evaluations/")
        self._json_cache: dict[Path, dict] = {}

    def __repr__(self) -> str:
        return f"PaperArtifacts({str(self.root)!r})"

    def _json(self, path: Path) -> dict:
        if path not in self._json_cache:
            try:
                self._json_cache[path] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise UserError(f"cannot read paper artifact {path}: {error}") from error
        return self._json_cache[path]

    @cached_property
    def count_files(self) -> list[CountFile]:
        files = []
        for path in sorted((self.root / "search_counts").glob("*_search_counts.json")):
            match = _COUNT_FILE.match(path.name)
            if match:
                files.append(CountFile(match["downstream"], match["pretrain"], match["method"], path))
        return files

    @cached_property
    def result_files(self) -> dict[tuple[str, str], Path]:
        """(downstream, prompts) -> path."""
        out = {}
        for path in sorted((self.root / "zero_shot_evaluations").glob("*_results.json")):
            match = _RESULT_FILE.match(path.name)
            if match:
                out[(match["downstream"], match["prompts"])] = path
        return out

    # --- what is there -------------------------------------------------------------------------

    def datasets(self) -> list[str]:
        """Pretraining sets with counts."""
        return sorted({f.pretrain for f in self.count_files})

    def methods(self, pretrain: str) -> list[str]:
        return sorted({f.method for f in self.count_files if f.pretrain == pretrain})

    def counts(self, downstream: str, pretrain: str, method: str) -> dict[str, int] | None:
        path = self.root / "search_counts" / f"{downstream}_{pretrain}_{method}_search_counts.json"
        return {k: int(v) for k, v in self._json(path).items()} if path.is_file() else None

    def evaluations(self, downstream: str, prompts: str) -> dict[tuple[str, str], dict[str, float]]:
        """{(model, pretrained): {class name as in the count files: accuracy %}}."""
        path = self.result_files.get((downstream, prompts))
        if path is None:
            return {}
        aliases = CLASS_ALIASES.get(downstream, {})
        out = {}
        for key, result in self._json(path).items():
            classwise = result.get("classwise", {}) if isinstance(result, dict) else {}
            out[parse_model_key(key)] = {aliases.get(c, c): float(a) for c, a in classwise.items()}
        return out

    def models(self, pretrain: str, prompts: str = "ensemble") -> list[str]:
        found = set()
        for (downstream, p) in self.result_files:
            if p == prompts:
                found.update(m for m, pt in self.evaluations(downstream, p) if pt == pretrain)
        return sorted(found)

    # --- report source -------------------------------------------------------------------------

    def _check(self, pretrain: str, prompts: str) -> None:
        if pretrain not in self.datasets():
            raise NotFoundError(f"no counts for pretraining set {pretrain!r} in {self.root}: "
                                f"available: {', '.join(self.datasets()) or 'none'}")
        if prompts not in PROMPTS:
            raise UserError(f"unknown prompts {prompts!r}: choose one of {', '.join(PROMPTS)}")

    def trend_data(self, dataset: str, model: str, count: str = "integrated", prompts: str = "ensemble",
                   downstream: list[str] | None = None, rule: str | None = None, **_) -> tuple[TrendData, dict]:
        """The paper's pooling: for each downstream set, its classes in sorted order, with count and accuracy.
        `rule` (a method name, as the store calls it) overrides `count`."""
        self._check(dataset, prompts)
        method = resolve_method(rule or count)
        chosen = list(downstream or PAPER_DOWNSTREAM)
        rows: list[tuple[str, str, int, float]] = []
        missing_counts, missing_eval, unmatched = [], [], 0
        for ds in chosen:
            counts = self.counts(ds, dataset, method)
            if counts is None:
                missing_counts.append(ds)
                continue
            results = self.evaluations(ds, prompts).get((model, dataset))
            if results is None:
                missing_eval.append(ds)
                continue
            # Exact names first (the paper's join); then any spelling (`bell_pepper` is `bell pepper`).
            by_key = {phrase_key(c): a for c, a in results.items()}
            for name in sorted(counts):
                accuracy = results[name] if name in results else by_key.get(phrase_key(name))
                if accuracy is None:
                    unmatched += 1
                else:
                    rows.append((name, ds, counts[name], accuracy))
        if len(missing_counts) == len(chosen):
            raise NotFoundError(f"no {method} counts for {dataset!r} in the downstream sets {', '.join(chosen)}: "
                                f"methods available: {', '.join(self.methods(dataset))}")
        if len(missing_counts) + len(missing_eval) == len(chosen):
            raise NotFoundError(f"no {prompts} evaluations of model {model!r} pretrained on {dataset!r}: "
                                f"models available: {', '.join(self.models(dataset, prompts)) or 'none'}")
        names, groups, freqs, accs = (list(column) for column in zip(*rows)) if rows else ([], [], [], [])
        info = {"source": "paper-artifacts", "dataset": dataset, "model": model, "prompts": prompts, "count": method,
                "kind": method_kind(method), "downstream": [d for d in chosen if d not in missing_counts + missing_eval],
                "missing_counts": missing_counts, "missing_evaluations": missing_eval, "unmatched_classes": unmatched}
        return TrendData(tuple(names), freqs, accs, tuple(groups)), info

    def concept_counts(self, dataset: str, count: str = "integrated", downstream: list[str] | None = None,
                       rule: str | None = None, **_) -> dict[str, int]:
        """{class name: count} pooled over downstream sets (the largest count where a name repeats)."""
        method = resolve_method(rule or count)
        pooled: dict[str, int] = {}
        for ds in downstream or PAPER_DOWNSTREAM:
            for name, n in (self.counts(ds, dataset, method) or {}).items():
                pooled[name] = max(n, pooled.get(name, 0))
        if not pooled:
            raise NotFoundError(f"no {method} counts for pretraining set {dataset!r} in {self.root}")
        return pooled

    def evaluated_concepts(self, prompts: str = "ensemble", downstream: list[str] | None = None) -> dict[str, int]:
        """{class name: how many (model, pretrained) pairs evaluated it}, whichever downstream set it came from."""
        evaluators: dict[str, set[tuple[str, str]]] = {}
        for ds in downstream or PAPER_DOWNSTREAM:
            for model, classwise in self.evaluations(ds, prompts).items():
                for name in classwise:
                    evaluators.setdefault(name, set()).add(model)
        return {name: len(models) for name, models in evaluators.items()}

    def sources(self, downstream: list[str]) -> set[str]:
        """Class names of the given downstream sets (a vocabulary-subset filter)."""
        names: set[str] = set()
        for f in self.count_files:
            if f.downstream in downstream:
                names.update(self._json(f.path))
        return names

    def let_it_wag(self) -> list[str] | None:
        path = self.root / "let_it_wag" / "let_it_wag_class_list.txt"
        if not path.is_file():
            return None
        return [line.strip().strip('"') for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def misalignment(self, dataset: str) -> dict | None:
        path = self.root / "misalignment_metrics" / f"{dataset}_misalignment_degree.json"
        return self._json(path) if path.is_file() else None

    def dataset_size(self, dataset: str) -> int | None:
        return None  # the artifacts do not state corpus sizes
