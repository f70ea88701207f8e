"""The report's figures as PNG bytes. Each figure carries its own title, axis labels, legend and key
numbers, so it still reads when lifted out of the report.

Figures are drawn on `matplotlib.figure.Figure` with the Agg canvas, never through pyplot: no global
state, so the gRPC service can render from several threads.
"""

from __future__ import annotations

import io
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from conceptfreq.core.trends import TrendData, TrendFit

DPI = 110
POINT_COLOR, BIN_COLOR, LINE_COLOR = "#7f8c99", "#c0392b", "#1f5fa8"
PALETTE = ["#1f5fa8", "#2e8b57", "#c0392b", "#8e44ad", "#d68910", "#17a589", "#5d6d7e"]


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def trend_png(data: TrendData, binned: TrendFit | None, line: TrendFit | None, title: str) -> bytes:
    """Accuracy against frequency: concepts, bin means, fitted line with its bands, on a log x-axis."""
    figure = Figure(figsize=(7.5, 5))
    ax = figure.add_subplot()
    frequency = np.maximum(data.frequency, 1.0)
    ax.scatter(frequency, data.accuracy, s=6, alpha=0.25, color=POINT_COLOR, linewidths=0, label=f"concepts (n={len(data)})")
    if binned is not None:
        bins = [b for b in binned.details["bins"] if b["n"]]
        inner = [b for b in bins if b["inner"]]
        outer = [b for b in bins if not b["inner"]]
        ax.plot([b["edge_frequency"] for b in inner], [b["mean_accuracy"] for b in inner], "o-", color=BIN_COLOR,
                markersize=6, linewidth=1.5, label=f"bin means (binned Pearson r = {binned.pearson:.2f})")
        ax.plot([b["edge_frequency"] for b in outer], [b["mean_accuracy"] for b in outer], "o", color=BIN_COLOR,
                markerfacecolor="white", markersize=6, label="outer bins (not in the correlation)")
    if line is not None and line.predictor is not None:
        grid = np.linspace(0, np.log10(frequency.max()) + 0.25, 200)
        band = line.predictor.predict(grid, line.level)
        x = 10 ** grid
        percent = int(round(line.level * 100))
        ax.fill_between(x, band["lower"], band["upper"], color=LINE_COLOR, alpha=0.08,
                        label=f"{percent}% prediction interval (one concept)")
        ax.fill_between(x, band["mean_lower"], band["mean_upper"], color=LINE_COLOR, alpha=0.3,
                        label=f"{percent}% confidence band (the line)")
        slope = f"{line.slope_per_decade:+.1f} {line.slope_unit}"
        ax.plot(x, band["mean"], color=LINE_COLOR, linewidth=2, label=f"{line.method} fit: {slope}")
    ax.set_xscale("log")
    ax.set_ylim(-2, 102)
    ax.set_xlabel("pretraining frequency of the concept (samples, log scale)")
    ax.set_ylabel("zero-shot accuracy (%)")
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="major", linestyle=":", alpha=0.6)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    return _png(figure)


def long_tail_png(curves: Mapping[str, Sequence[float]], title: str = "Concept frequencies are long-tailed") -> bytes:
    """Normalized frequency against rank, one line per dataset, log y-axis."""
    figure = Figure(figsize=(7.5, 4.5))
    ax = figure.add_subplot()
    for i, (dataset, curve) in enumerate(curves.items()):
        curve = np.asarray(curve, dtype=float)
        if curve.size:
            ax.plot(np.arange(1, curve.size + 1), curve, color=PALETTE[i % len(PALETTE)], linewidth=1.8,
                    label=f"{dataset} ({curve.size} concepts seen)")
    ax.set_yscale("log")
    ax.set_xlabel("concepts, sorted from most to least frequent (rank)")
    ax.set_ylabel("frequency / most frequent concept (log scale)")
    ax.set_title(title, fontsize=11)
    ax.grid(True, linestyle=":", alpha=0.6)
    if curves:
        ax.legend(loc="upper right", fontsize=9)
    return _png(figure)


def heatmap_png(datasets: Sequence[str], matrix: Sequence[Sequence[float | None]], n_concepts: int,
                title: str = "Do datasets agree on which concepts are rare?") -> bytes:
    """Spearman correlation of concept frequencies between datasets."""
    values = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    size = max(3.5, 1.1 * len(datasets) + 2)
    figure = Figure(figsize=(size + 1, size))
    ax = figure.add_subplot()
    image = ax.imshow(values, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(datasets)), labels=datasets, rotation=30, ha="right")
    ax.set_yticks(range(len(datasets)), labels=datasets)
    for i in range(len(datasets)):
        for j in range(len(datasets)):
            text = "n/a" if np.isnan(values[i, j]) else f"{values[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=10,
                    color="white" if not np.isnan(values[i, j]) and abs(values[i, j]) > 0.6 else "black")
    colorbar = figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colorbar.set_label("Spearman rank correlation")
    ax.set_title(f"{title}\n({n_concepts} shared concepts)", fontsize=11)
    return _png(figure)
