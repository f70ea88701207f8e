"""Tagging rules: which of an image's stored top-k concepts are hits. A rule is data: a registered
name plus parameters (TAGGING_RULES), with one stable string form that is recorded with the counts:
`softmax:p=0.5`, `cosine:t=0.3`, `topk:k=3`, `per-concept:default=none,score=cosine,sha256=1a2b3c4d5e6f`.
Why hits come from the top-k, and why the default is `softmax:p=0.5`: see core/tagging.py."""

from __future__ import annotations

import hashlib
import json
import math
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

import numpy as np

from conceptfreq.errors import UserError

if TYPE_CHECKING:
    from conceptfreq.core.tagging import TopScores

DEFAULT_RULE = "softmax:p=0.5"


class RuleError(UserError):
    """A tagging rule that cannot be parsed or applied; the message says what to fix."""


def _number(value: float) -> str:
    """The shortest text that reads back as the same float: rule strings must be stable."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _float_param(params: Mapping[str, str], name: str, rule: str, low: float, high: float) -> float:
    if name not in params:
        raise RuleError(f"rule {rule!r} needs {name}=NUMBER")
    try:
        value = float(params[name])
    except ValueError:
        raise RuleError(f"rule {rule!r}: {name}={params[name]!r} is not a number") from None
    if not (low <= value <= high) or math.isnan(value):
        raise RuleError(f"rule {rule!r}: {name} must be between {_number(low)} and {_number(high)}, got {params[name]}")
    return value


def _no_extra(params: Mapping[str, str], allowed: Iterable[str], rule: str) -> None:
    extra = sorted(set(params) - set(allowed))
    if extra:
        raise RuleError(f"rule {rule!r} has unknown parameters {', '.join(extra)} (it takes {', '.join(sorted(allowed))})")


class Rule:
    """A tagging rule: `mask(top)` says which stored concepts of each image are hits."""

    name: str = ""

    def params(self) -> dict[str, str]:
        raise NotImplementedError

    def mask(self, top: TopScores) -> np.ndarray:
        """(n, k) bool: the hits among each image's stored concepts."""
        raise NotImplementedError

    def truncated(self, top: TopScores) -> np.ndarray:
        """(n,) bool: images that may have hits beyond their stored top-k."""
        return np.zeros(len(top), bool)

    def exact_within(self, k: int) -> bool:
        """Whether top-k scores always hold every hit of this rule."""
        return False

    def to_json(self) -> dict:
        return {"rule": self.name, "params": self.params()}

    def __str__(self) -> str:
        params = self.params()
        return self.name + (":" + ",".join(f"{key}={params[key]}" for key in sorted(params)) if params else "")

    def __repr__(self) -> str:
        return f"Rule({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Rule) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class SoftmaxRule(Rule):
    """Hit when the concept's softmax probability over the whole vocabulary is at least p."""

    name = "softmax"

    def __init__(self, p: float):
        self.p = float(p)

    @classmethod
    def from_params(cls, params: Mapping[str, str], text: str) -> "SoftmaxRule":
        _no_extra(params, {"p"}, text)
        return cls(_float_param(params, "p", text, 1e-6, 1.0))

    def params(self) -> dict[str, str]:
        return {"p": _number(self.p)}

    def mask(self, top: TopScores) -> np.ndarray:
        return top.probabilities() >= np.float32(self.p)

    def exact_within(self, k: int) -> bool:
        return math.floor(1 / self.p) <= k

    def truncated(self, top: TopScores) -> np.ndarray:
        return np.zeros(len(top), bool) if self.exact_within(top.k) else _cut_off(top, top.probabilities(), self.p)


class CosineRule(Rule):
    """Hit when the cosine similarity is at least t (one global threshold)."""

    name = "cosine"

    def __init__(self, t: float):
        self.t = float(t)

    @classmethod
    def from_params(cls, params: Mapping[str, str], text: str) -> "CosineRule":
        _no_extra(params, {"t"}, text)
        return cls(_float_param(params, "t", text, -1.0, 1.0))

    def params(self) -> dict[str, str]:
        return {"t": _number(self.t)}

    def mask(self, top: TopScores) -> np.ndarray:
        return top.cosines >= np.float32(self.t)

    def truncated(self, top: TopScores) -> np.ndarray:
        return _cut_off(top, top.cosines, self.t)


class TopKRule(Rule):
    """The k best concepts of every image are hits, whatever their scores."""

    name = "topk"

    def __init__(self, k: int):
        self.k = int(k)

    @classmethod
    def from_params(cls, params: Mapping[str, str], text: str) -> "TopKRule":
        _no_extra(params, {"k"}, text)
        value = _float_param(params, "k", text, 1, 1_000_000)
        if value != int(value):
            raise RuleError(f"rule {text!r}: k must be a whole number")
        return cls(int(value))

    def params(self) -> dict[str, str]:
        return {"k": str(self.k)}

    def mask(self, top: TopScores) -> np.ndarray:
        mask = np.zeros(top.cosines.shape, bool)
        mask[:, :min(self.k, top.k)] = True
        return mask & np.isfinite(top.cosines)

    def exact_within(self, k: int) -> bool:
        return self.k <= k

    def truncated(self, top: TopScores) -> np.ndarray:
        return np.full(len(top), self.k > top.k and top.vocabulary_size > top.k)


SCORE_KINDS = ("cosine", "p")


class PerConceptRule(Rule):
    """Hit when a concept's score reaches its own threshold (calibrated per concept, from a file).
    `score` says which score the thresholds are on (cosine or softmax p); concepts without a
    threshold use `default` (None: never a hit). The rule string names the thresholds by a hash of
    their content; the thresholds themselves travel in to_json and are recorded with the rule."""

    name = "per-concept"

    def __init__(self, thresholds: Mapping[int, float], score: str = "cosine", default: float | None = None):
        if score not in SCORE_KINDS:
            raise RuleError(f"per-concept thresholds are on one of {', '.join(SCORE_KINDS)}, not {score!r}")
        self.thresholds = {int(c): float(t) for c, t in thresholds.items()}
        self.score = score
        self.default = None if default is None else float(default)
        size = max(self.thresholds, default=-1) + 1
        self._table = np.full(size, np.inf if self.default is None else self.default, np.float32)
        for concept, threshold in self.thresholds.items():
            self._table[concept] = threshold

    @property
    def digest(self) -> str:
        text = json.dumps(sorted(self.thresholds.items()), separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def params(self) -> dict[str, str]:
        return {"score": self.score, "default": "none" if self.default is None else _number(self.default), "sha256": self.digest}

    def to_json(self) -> dict:
        return {**super().to_json(), "thresholds": {str(c): t for c, t in sorted(self.thresholds.items())}}

    def _limits(self, ids: np.ndarray) -> np.ndarray:
        fallback = np.float32(np.inf if self.default is None else self.default)
        if not len(self._table):
            return np.full(ids.shape, fallback, np.float32)
        inside = ids < len(self._table)
        return np.where(inside, self._table[np.minimum(ids, len(self._table) - 1)], fallback)

    def _scores(self, top: TopScores) -> np.ndarray:
        return top.cosines if self.score == "cosine" else top.probabilities()

    def mask(self, top: TopScores) -> np.ndarray:
        return self._scores(top) >= self._limits(top.concept_ids)

    def truncated(self, top: TopScores) -> np.ndarray:
        lowest = min([*self.thresholds.values(), *([] if self.default is None else [self.default])], default=np.inf)
        return _cut_off(top, self._scores(top), lowest)


def _cut_off(top: TopScores, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Images whose last stored score still reaches the threshold, while concepts were left out."""
    if top.vocabulary_size <= top.k or not top.k:
        return np.zeros(len(top), bool)
    return scores[:, -1] >= np.float32(threshold)


# name -> how to build the rule from its string parameters.
TAGGING_RULES: dict[str, Callable[[Mapping[str, str], str], Rule]] = {
    "softmax": SoftmaxRule.from_params,
    "cosine": CosineRule.from_params,
    "topk": TopKRule.from_params,
    "per-concept": lambda params, text: _per_concept_needs_file(text),
}


def _per_concept_needs_file(text: str) -> Rule:
    raise RuleError(f"rule {text!r}: per-concept thresholds come from a file (retag --thresholds FILE, "
                    "tagger --thresholds FILE), or from a rule already recorded in the store")


def split_rule(text: str) -> tuple[str, dict[str, str]]:
    """`name:key=value,key=value` -> (name, {key: value})."""
    name, _, rest = text.strip().partition(":")
    params: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise RuleError(f"rule {text!r}: parameters are key=value, separated by commas")
        params[key.strip()] = value.strip()
    return name.strip(), params


def parse_rule(text: str) -> Rule:
    """A rule from its string form; the names are those of TAGGING_RULES."""
    name, params = split_rule(text)
    builder = TAGGING_RULES.get(name)
    if builder is None:
        raise RuleError(f"unknown tagging rule {name!r}: choose one of {', '.join(TAGGING_RULES)} "
                        f"(e.g. {DEFAULT_RULE}, cosine:t=0.3, topk:k=3)")
    return builder(params, text)


def rule_from_json(body: Mapping) -> Rule:
    """The rule recorded by Rule.to_json (per-concept thresholds included)."""
    if body.get("rule") == PerConceptRule.name:
        params = body.get("params", {})
        default = params.get("default", "none")
        return PerConceptRule({int(c): float(t) for c, t in body.get("thresholds", {}).items()},
                              score=params.get("score", "cosine"), default=None if default == "none" else float(default))
    params = body.get("params", {})
    return parse_rule(str(body.get("rule", "")) + (":" + ",".join(f"{k}={v}" for k, v in params.items()) if params else ""))


def parse_thresholds(text: str, resolve: Callable[[str], int | None], *, source: str = "thresholds") -> dict[int, float]:
    """Per-concept thresholds from a file's text: JSON `{concept: threshold}` or lines/CSV rows of
    `concept,threshold` (`#` comments, an optional header). A concept is an id or a name/alias
    that `resolve` maps to an id; names it cannot resolve are an error that lists them."""
    stripped = text.strip()
    pairs: list[tuple[str, str]] = []
    if stripped.startswith("{"):
        try:
            pairs = [(str(k), str(v)) for k, v in json.loads(stripped).items()]
        except ValueError as error:
            raise RuleError(f"{source}: not valid JSON ({error})") from None
    else:
        for number, line in enumerate(stripped.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            concept, sep, value = line.rpartition("," if "," in line else "\t")
            if not sep:
                raise RuleError(f"{source}:{number}: expected `concept,threshold`, got {line!r}")
            pairs.append((concept.strip().strip('"'), value.strip()))
    thresholds: dict[int, float] = {}
    unknown = []
    for index, (concept, value) in enumerate(pairs):
        try:
            threshold = float(value)
        except ValueError:
            if index == 0:
                continue  # a header row
            raise RuleError(f"{source}: threshold {value!r} of {concept!r} is not a number") from None
        concept_id = int(concept) if concept.isdigit() else resolve(concept)
        if concept_id is None:
            unknown.append(concept)
            continue
        thresholds[concept_id] = threshold
    if unknown:
        raise RuleError(f"{source}: not in the vocabulary: {', '.join(map(repr, unknown[:10]))}"
                        + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""))
    if not thresholds:
        raise RuleError(f"{source}: no thresholds found")
    return thresholds


