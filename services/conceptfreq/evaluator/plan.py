"""Planning an evaluation: which classes, which concepts, which prompts, which shards.

The plan (EvalSpec) is all an evaluator needs to handle any one of its shards, so the local run
and the Kafka-sharded run share it: it is stored with the evaluation, and eval-shard events carry
only its id (plus names, for people reading the topic).

The evaluation id is a hash of everything that decides the numbers (model, weights, precision,
templates, eval set and reader options, classes, vocabulary): running the same evaluation again
finds its finished shards, and anything different is a different evaluation.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

from conceptfreq.adapters.inference.repository import weights_label
from conceptfreq.core.evaluation import ClassMapping, map_classes
from conceptfreq.core.prompts import Prompts, make_prompts
from conceptfreq.core.text import phrase_key
from conceptfreq.core.vocabulary import Vocabulary
from conceptfreq.errors import UserError
from conceptfreq.adapters.shards import EvalSet, open_eval_set

CLASSIFICATION, RETRIEVAL = "classification", "retrieval"
FROM_VOCABULARY = "vocab"


@dataclass
class EvalSpec:
    evaluation_id: str
    task: str
    model: str
    pretrained: str | None        # as given: a tag, a checkpoint path, or None (seeded random)
    pretrained_label: str         # what results are filed under: the tag, the file stem, random-seed0
    precision: str
    prompts: Prompts
    data: str
    format: str
    data_options: dict
    eval_dataset: str
    classnames: list[str]
    concept_ids: list[int | None]
    vocabulary_version: str
    shards: list[str]
    created_at_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    # The dataset's own class names, when the classes evaluated are others (--classnames vocab):
    # an integer label then means the dataset's class, resolved by name.
    label_names: list[str] | None = None

    @property
    def prompt_mode(self) -> str:
        return self.prompts.mode

    def to_json(self) -> str:
        body = asdict(self)
        body["prompts"] = {"mode": self.prompts.mode, "templates": list(self.prompts.templates), "source": self.prompts.source}
        return json.dumps(body, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "EvalSpec":
        body = json.loads(text)
        prompts = body.pop("prompts")
        return cls(prompts=Prompts(prompts["mode"], tuple(prompts["templates"]), prompts.get("source", "")), **body)

    def open(self) -> EvalSet:
        return open_eval_set(self.data, self.format, **self.data_options)


class LabelIndex:
    """Dataset labels (int indices or str names) to class indices; None when a label fits no class.
    With `label_names`, an int label is the dataset's class of that index, looked up by name."""

    def __init__(self, classnames: Sequence[str], vocabulary: Vocabulary | None = None, label_names: Sequence[str] | None = None):
        self.n = len(classnames)
        self._label_names = list(label_names) if label_names is not None else None
        self._exact = {name: i for i, name in enumerate(classnames)}
        self._keys = {phrase_key(name): i for i, name in reversed(list(enumerate(classnames)))}
        self._vocabulary = vocabulary
        self._by_concept: dict[int, int] = {}
        if vocabulary is not None:
            for i, name in enumerate(classnames):
                concept = vocabulary.get(name)
                if concept is not None:
                    self._by_concept.setdefault(concept.id, i)

    def __call__(self, label) -> int | None:
        if label is None:
            return None
        if isinstance(label, int) and not isinstance(label, bool):
            if self._label_names is not None:
                return self(self._label_names[label]) if 0 <= label < len(self._label_names) else None
            return label if 0 <= label < self.n else None
        text = str(label).strip()
        if text in self._exact:
            return self._exact[text]
        if text.lstrip("-").isdigit():
            return self(int(text))
        index = self._keys.get(phrase_key(text))
        if index is None and self._vocabulary is not None:
            concept = self._vocabulary.get(text)
            index = self._by_concept.get(concept.id) if concept is not None else None
        return index


def _classnames(evalset: EvalSet, given: Sequence[str] | str | None, vocabulary: Vocabulary) -> list[str]:
    if given == FROM_VOCABULARY:
        return [concept.name for concept in vocabulary]
    if given:
        given = list(given)
        mapping = [line.split("\t", 1) if "\t" in line else None for line in given]
        folder_names = getattr(evalset, "folder_names", None)
        if folder_names and all(mapping):  # `folder<TAB>class name` lines, e.g. ImageNet's wnids
            by_folder = {k.strip(): v.strip() for k, v in mapping}
            missing = [f for f in folder_names if f not in by_folder]
            if missing:
                raise UserError(f"the class names file names no class for folders {', '.join(missing[:10])}")
            return [by_folder[f] for f in folder_names]
        if evalset.classnames is not None and len(given) != len(evalset.classnames):
            raise UserError(f"the class names file has {len(given)} names, but the eval set has {len(evalset.classnames)} classes")
        return given
    if evalset.classnames is not None:
        return list(evalset.classnames)
    raise UserError(f"the eval set {evalset.url!r} does not name its classes: pass --classnames FILE (one name per line, "
                    f"in label order) or --classnames {FROM_VOCABULARY} (every concept of the vocabulary)")


def evaluation_id(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()[:16]


def default_eval_dataset(url: str) -> str:
    name = posixpath.basename(url.rstrip("/").split("://", 1)[-1].split("{", 1)[0].rstrip("/")) or "eval"
    for suffix in (".csv", ".tsv", ".parquet", ".tar"):
        name = name.removesuffix(suffix)
    return name or "eval"


def plan(data: str, *, model: str, pretrained: str | None, precision: str, vocabulary: Vocabulary, task: str = CLASSIFICATION,
         format: str | None = None, data_options: dict | None = None, prompts: str = "ensemble",
         extra_templates: Sequence[str] = (), template_set: str | None = None, classnames: Sequence[str] | str | None = None,
         eval_dataset: str | None = None, allow_unmapped: bool = False) -> tuple[EvalSpec, ClassMapping | None]:
    """Open the eval set and settle everything an evaluator needs; UserError on anything unusable."""
    if task not in (CLASSIFICATION, RETRIEVAL):
        raise UserError(f"unknown task {task!r}: choose {CLASSIFICATION} or {RETRIEVAL}")
    data_options = {k: v for k, v in (data_options or {}).items() if v is not None}
    evalset = open_eval_set(data, format, **data_options)
    shards = evalset.shards()
    if not shards:
        raise UserError(f"the eval set {data!r} has no samples")
    label = weights_label(model, pretrained)
    names: list[str] = []
    mapping = None
    chosen_prompts = make_prompts(prompts, dataset_templates=evalset.templates, extra=extra_templates, template_set=template_set)
    if task == CLASSIFICATION:
        names = _classnames(evalset, classnames, vocabulary)
        _check_classes(evalset, names)
        mapping = map_classes(names, vocabulary)
        if mapping.unmapped and not allow_unmapped:
            raise UserError(f"{len(mapping.unmapped)} of {len(names)} classes map to no concept of vocabulary "
                            f"{vocabulary.name!r}: {', '.join(mapping.unmapped[:20])}{' ...' if len(mapping.unmapped) > 20 else ''}; "
                            "add them to the vocabulary (--vocab), or evaluate anyway with --allow-unmapped")
    name = eval_dataset or default_eval_dataset(data)
    ident = evaluation_id(task, model, label, precision, chosen_prompts.key, data, evalset.format, evalset.options,
                          name, names, vocabulary.version)
    label_names = list(evalset.classnames) if classnames == FROM_VOCABULARY and evalset.classnames else None
    spec = EvalSpec(ident, task, model, pretrained, label, precision, chosen_prompts, data, evalset.format, evalset.options,
                    name, names, mapping.concept_ids if mapping else [], vocabulary.version, shards, label_names=label_names)
    return spec, mapping


def _check_classes(evalset: EvalSet, names: list[str]) -> None:
    blank = [i for i, n in enumerate(names) if not phrase_key(n)]
    if blank:
        raise UserError(f"classes {', '.join(map(str, blank[:10]))} have empty names: every class needs a name")
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if phrase_key(n) in seen:
            raise UserError(f"classes {seen[phrase_key(n)]} and {i} are both named {n!r}: a zero-shot classifier cannot "
                            "tell them apart; give them distinct names (--classnames)")
        seen[phrase_key(n)] = i
    sizes = evalset.class_sizes()
    if sizes is not None:
        empty = [names[i] for i, size in sizes.items() if size == 0 and i < len(names)]
        if empty:
            raise UserError(f"{len(empty)} classes have no images: {', '.join(empty[:10])}; remove their folders")
