"""Prompts for zero-shot text embeddings: which texts stand for a class (or a concept).

Modes (PROMPT_MODES), named as the paper names its results (`{downstream}_{mode}_results.json`):
- `class`: the bare class name;
- `simple`: "a photo of a {}.";
- `ensemble`: a set of templates (default open_clip's 80 OpenAI ImageNet templates, or the eval
  set's own `zeroshot_classification_templates.txt` when it ships one, as clip_benchmark's do),
  plus configurable extra templates. Each class's embeddings over the templates are averaged and
  renormalized, as in CLIP zero-shot (open_clip's build_zero_shot_classifier).

A template is a format string with one `{}` (or `{c}`) for the name. Prompts carry a `key`, a hash
of the exact template list, so cached embeddings are never reused across different templates.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from conceptfreq.errors import UserError

SIMPLE_TEMPLATE = "a photo of a {}."


@lru_cache(maxsize=None)
def _open_clip_templates(name: str) -> tuple[str, ...]:
    # open_clip keeps its templates as lambdas; calling one with "{}" gives back its format string.
    # Imported lazily: open_clip pulls in torch, which core must not need at import time.
    from open_clip import zero_shot_metadata

    return tuple(template("{}") for template in getattr(zero_shot_metadata, name))


TEMPLATE_SETS: dict[str, Callable[[], tuple[str, ...]]] = {
    "openai_imagenet": lambda: _open_clip_templates("OPENAI_IMAGENET_TEMPLATES"),   # 80, CLIP's paper
    "simple_imagenet": lambda: _open_clip_templates("SIMPLE_IMAGENET_TEMPLATES"),   # 7, CLIP's notebook subset
}
DEFAULT_TEMPLATE_SET = "openai_imagenet"


@dataclass(frozen=True)
class Prompts:
    mode: str                     # "class" | "simple" | "ensemble": what the results are filed under
    templates: tuple[str, ...]    # format strings, "{}" where the name goes
    source: str = ""              # where the templates came from, for the record

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps([self.mode, list(self.templates)]).encode()).hexdigest()[:16]

    def texts(self, names: Sequence[str]) -> list[str]:
        """Every prompt of every name, name-major: names[0]'s templates first."""
        return [template.format(name) for name in names for template in self.templates]


def _normalize_template(template: str) -> str:
    template = template.strip().replace("{c}", "{}")
    if template.count("{}") != 1 or template.replace("{}", "").count("{") or template.replace("{}", "").count("}"):
        raise UserError(f"template {template!r} must hold exactly one {{}} (or {{c}}) where the class name goes")
    return template


def _class(templates: Sequence[str], extra: Sequence[str]) -> tuple[tuple[str, ...], str]:
    return ("{}",), "bare name"


def _simple(templates: Sequence[str], extra: Sequence[str]) -> tuple[tuple[str, ...], str]:
    return (SIMPLE_TEMPLATE,), "simple"


def _ensemble(templates: Sequence[str], extra: Sequence[str]) -> tuple[tuple[str, ...], str]:
    if templates:
        return tuple(templates) + tuple(extra), "dataset" + (" + extra" if extra else "")
    return TEMPLATE_SETS[DEFAULT_TEMPLATE_SET]() + tuple(extra), DEFAULT_TEMPLATE_SET + (" + extra" if extra else "")


# mode -> (dataset templates, extra templates) -> (templates, source)
PROMPT_MODES: dict[str, Callable[[Sequence[str], Sequence[str]], tuple[tuple[str, ...], str]]] = {
    "class": _class,
    "simple": _simple,
    "ensemble": _ensemble,
}


def make_prompts(mode: str, *, dataset_templates: Sequence[str] = (), extra: Sequence[str] = (),
                 template_set: str | None = None) -> Prompts:
    """The prompts of a mode. `dataset_templates`: the eval set's own (ensemble only);
    `template_set`: a named set instead (TEMPLATE_SETS); `extra`: added to the ensemble."""
    if mode not in PROMPT_MODES:
        raise UserError(f"unknown prompt mode {mode!r}: choose one of {', '.join(PROMPT_MODES)}")
    if template_set is not None:
        if template_set not in TEMPLATE_SETS:
            raise UserError(f"unknown template set {template_set!r}: choose one of {', '.join(TEMPLATE_SETS)}")
        dataset_templates = TEMPLATE_SETS[template_set]()
    dataset_templates = [_normalize_template(t) for t in dataset_templates if t.strip()]
    extra = [_normalize_template(t) for t in extra if t.strip()]
    templates, source = PROMPT_MODES[mode](dataset_templates, extra)
    if template_set is not None and mode == "ensemble":
        source = template_set + (" + extra" if extra else "")
    return Prompts(mode, tuple(dict.fromkeys(templates)), source)


def average_prompts(embeddings: np.ndarray, n_templates: int) -> np.ndarray:
    """(C*T, D) L2-normalized prompt embeddings, name-major -> (C, D) class embeddings: the mean over
    each class's T templates, renormalized (CLIP zero-shot; open_clip's build_zero_shot_classifier)."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if n_templates < 1 or embeddings.shape[0] % n_templates:
        raise ValueError(f"{embeddings.shape[0]} embeddings are not a whole number of {n_templates}-template groups")
    means = embeddings.reshape(-1, n_templates, embeddings.shape[-1]).mean(axis=1)
    return (means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)).astype(np.float32)
