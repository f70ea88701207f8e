"""What a world makes measurable that no real dataset can: how close the pipeline's counts are to
the truth, and how counting error moves the scaling trend.

- **Count quality.** For each kind (text: the caption names it; image: the image shows it;
  matched: both), precision and recall over (sample, concept) pairs of the hits the pipeline stored
  against the world's manifest, plus the rank agreement (Spearman) of per-concept counts.
- **The trend on true and on measured frequencies.** The same per-concept zero-shot accuracies
  fitted against the true counts and against each measured count: if counting error bent the trend,
  the two slopes differ.

Reads the store only through its public readers (per-shard text hits, image attempts and hits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conceptfreq.errors import NotFoundError, UserError
from conceptfreq.world.generate import read_manifest, read_summary

KINDS = ("text", "image", "matched")
_SHARD_INDEX = re.compile(r"world-(\d+)\.tar$")


@dataclass
class CountQuality:
    kind: str
    true_pairs: int
    measured_pairs: int
    correct_pairs: int
    spearman: float

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.measured_pairs if self.measured_pairs else float("nan")

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else float("nan")

    def to_json(self) -> dict:
        return {"kind": self.kind, "true_pairs": self.true_pairs, "measured_pairs": self.measured_pairs,
                "correct_pairs": self.correct_pairs, "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "count_spearman": round(self.spearman, 4)}


def measured_hits(store, dataset: str, vocabulary_version: str, rule: str | None = None) -> tuple[dict, dict, str]:
    """({sample key: text concept ids}, {sample key: image concept ids}, image rule) from the store."""
    shards = sorted({s.shard for s in store.shard_states(dataset, vocabulary_version)})
    if not shards:
        raise NotFoundError(f"dataset {dataset!r} has no shards under vocabulary {vocabulary_version} in {store.location}: "
                            "ingest the world's shards with its vocab.txt first")
    rule = rule or store.active_rule(dataset, vocabulary_version)
    text, image = {}, {}
    attempts = store.visible_image_attempts(dataset, vocabulary_version)
    for shard in shards:
        text.update({k: set(v) for k, v in store.text_hits(dataset, vocabulary_version, shard).items()})
        attempt = attempts.get(shard)
        if attempt is not None:
            hits = store.image_hits(dataset, vocabulary_version, shard, attempt.attempt_id).get(rule, {})
            image.update({k: set(v) for k, v in hits.items()})
    return text, image, rule or ""


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import stats

    return float(stats.spearmanr(a, b).statistic) if np.ptp(a) and np.ptp(b) else float("nan")


def count_quality(world_dir, text: dict, image: dict) -> tuple[list[CountQuality], dict[str, np.ndarray]]:
    """Per-kind quality, and per-concept counts: {"true_text", "measured_text", ...} -> (n_concepts,) arrays."""
    summary = read_summary(world_dir)
    n = len(summary["concepts"])
    counts = {f"{side}_{kind}": np.zeros(n, np.int64) for side in ("true", "measured") for kind in KINDS}
    totals = {kind: [0, 0, 0] for kind in KINDS}   # true, measured, correct
    for sample in read_manifest(world_dir):
        key = sample["key"]
        true_text, true_image = set(sample["caption_concepts"]), set(sample["image"])
        got_text, got_image = text.get(key, set()), image.get(key, set())
        pairs = {"text": (true_text, got_text), "image": (true_image, got_image),
                 "matched": (true_text & true_image, got_text & got_image)}
        for kind, (truth, measured) in pairs.items():
            totals[kind][0] += len(truth)
            totals[kind][1] += len(measured)
            totals[kind][2] += len(truth & measured)
            counts[f"true_{kind}"][list(truth)] += 1
            counts[f"measured_{kind}"][[c for c in measured if c < n]] += 1
    quality = [CountQuality(kind, *totals[kind], _spearman(counts[f"true_{kind}"], counts[f"measured_{kind}"])) for kind in KINDS]
    return quality, counts


@dataclass
class TrendComparison:
    frequency: str          # e.g. "true matched", "measured matched"
    fit: dict               # TrendFit.to_json() of the per-concept fit
    binned: dict            # of the binned (paper's) fit


def accuracies(store, dataset: str, model: str, pretrained: str, eval_dataset: str, names: list[str],
               prompts: str = "ensemble") -> np.ndarray:
    """Per-concept top-1 accuracy (percent) from the store's zero-shot results, in `names` order."""
    from conceptfreq.reporter.store_source import StoreSource

    data, _ = StoreSource(store).trend_data(dataset, model, "text", prompts, downstream=[eval_dataset], pretrained=pretrained)
    by_name = dict(zip(data.names, data.accuracy))
    missing = [n for n in names if n not in by_name]
    if missing:
        raise NotFoundError(f"no {prompts} zero-shot result of {model}/{pretrained} on {eval_dataset!r} for "
                            f"{len(missing)} concepts ({', '.join(missing[:3])}...): run `conceptfreq evaluate` first")
    return np.array([by_name[n] for n in names], dtype=float)


def compare_trends(names: list[str], accuracy: np.ndarray, counts: dict[str, np.ndarray], *, seed: int = 0) -> list[TrendComparison]:
    from conceptfreq.core.trends import TrendData, fit_binned, fit_per_concept

    out = []
    for key in ("true_image", "true_matched", "measured_text", "measured_image", "measured_matched"):
        data = TrendData(tuple(names), counts[key], accuracy)
        out.append(TrendComparison(key.replace("_", " "), fit_per_concept(data, seed=seed).to_json(), fit_binned(data).to_json()))
    return out


def plot(path: Path, names: list[str], accuracy: np.ndarray, counts: dict[str, np.ndarray], comparisons: list[TrendComparison]) -> Path:
    """Accuracy against the true matched frequency beside the measured one, each with its fit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fits = {c.frequency: c.fit for c in comparisons}
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True)
    for axis, key, colour in zip(axes, ("true_matched", "measured_matched"), ("tab:blue", "tab:orange")):
        label = key.replace("_", " ")
        fit = fits[label]
        x = np.maximum(counts[key], 1)
        axis.scatter(x, accuracy, s=22, color=colour, alpha=0.8, edgecolor="none")
        grid = np.logspace(np.log10(x.min()), np.log10(x.max()), 50)
        axis.plot(grid, fit["intercept"] + fit["slope_per_decade"] * np.log10(grid), color="black", lw=1.5)
        low, high = fit["slope_ci"] or (float("nan"), float("nan"))
        axis.set_xscale("log")
        axis.set_xlabel(f"{label} frequency (pretraining samples)")
        axis.set_title(f"{label}: {fit['slope_per_decade']:+.1f} points per 10x [{low:+.1f}, {high:+.1f}]\n"
                       f"Pearson {fit['pearson']:.2f}, Spearman {fit['spearman']:.2f}, n={fit['n_concepts']}", fontsize=10)
        axis.grid(True, which="both", alpha=0.25)
    axes[0].set_ylabel("zero-shot top-1 accuracy (%)")
    figure.suptitle("Zero-shot accuracy against pretraining frequency of each concept (controlled world)", fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def check_world(world_dir, vocabulary_version: str) -> dict:
    summary = read_summary(world_dir)
    if summary["vocabulary_version"] != vocabulary_version:
        raise UserError(f"{Path(world_dir) / 'vocab.txt'} (version {vocabulary_version}) is not the vocabulary the world "
                        f"was made with ({summary['vocabulary_version']}): generate the world again")
    return summary
