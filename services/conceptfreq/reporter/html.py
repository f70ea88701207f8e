"""The self-contained HTML report: one file, plots embedded as base64 PNG, no scripts, no network."""

from __future__ import annotations

import base64
import datetime as _dt
from html import escape
from typing import Mapping

TABLE_ROWS = 50  # the long-tail table shows this many; the JSON and the class list hold all k

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .92em; }
th, td { border: 1px solid #ddd; padding: .3em .6em; text-align: right; } th { background: #f4f6f8; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption, .meta, .note { color: #555; font-size: .9em; }
"""


def _num(value, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and value != 0 and (abs(value) >= 1e5 or abs(value) < 10 ** -digits):
        return f"{value:.{digits}g}{suffix}"
    return f"{value:.{digits}f}{suffix}"


def _interval(pair, digits: int = 2) -> str:
    return f"[{_num(pair[0], digits)}, {_num(pair[1], digits)}]" if pair else "n/a"


def _figure(figure_id: str, name: str, png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure id="{escape(figure_id)}"><img src="data:image/png;base64,{data}" alt="{escape(alt)}" '
            f'data-file="{escape(name)}"><figcaption>{escape(caption)}</figcaption></figure>')


def _fits_table(fits: list[dict]) -> str:
    level = round(100 * ((fits[0].get("line") or fits[0]["fit"]).get("confidence_level") or 0.95)) if fits else 95
    head = ("<tr><th>model</th><th>concepts</th><th>binned Pearson</th><th>p-value</th><th>slope per 10&times; data</th>"
            f"<th>slope {level}% CI</th><th>R&sup2;</th><th>Spearman</th><th>data &times; for +10 points</th></tr>")
    rows = []
    for entry in fits:
        # The line fit carries the honest error bars; the paper's binned correlation sits beside it.
        fit, binned = entry.get("line") or entry["fit"], entry.get("binned") or {}
        exponential = fit.get("exponential") or {}
        rows.append(
            f"<tr><td>{escape(entry['model'])}</td><td>{fit['n_concepts']}</td><td>{_num(binned.get('pearson'), 3)}</td>"
            f"<td>{_num(binned.get('p_value'), 2)}</td><td>{_num(fit['slope_per_decade'])} {escape(fit['slope_unit'])}</td>"
            f"<td>{_interval(fit.get('slope_ci'))}</td><td>{_num(fit.get('r2'))}</td><td>{_num(fit.get('spearman'))}</td>"
            f"<td>{_num(exponential.get('multiplier'), 1)} {_interval(exponential.get('multiplier_ci'), 1)}</td></tr>")
    return f'<table class="fits">{head}{"".join(rows)}</table>'


def _long_tail_table(long_tail: dict) -> str:
    datasets = long_tail["datasets"]
    head = "<tr><th>rank</th><th>concept</th>" + "".join(f"<th>{escape(d)} count</th>" for d in datasets)
    predicted = any("predicted" in c for c in long_tail["concepts"])
    head += "".join(f"<th>{escape(d)} predicted accuracy</th>" for d in datasets) if predicted else ""
    rows = []
    for rank, concept in enumerate(long_tail["concepts"][:TABLE_ROWS], 1):
        cells = "".join(f"<td>{concept['counts'][d]}</td>" for d in datasets)
        if predicted:
            cells += "".join(f"<td>{_num(concept.get('predicted', {}).get(d, {}).get('accuracy'), 1, '%')}</td>" for d in datasets)
        rows.append(f"<tr><td>{rank}</td><td>{escape(concept['name'])}</td>{cells}</tr>")
    return f'<table class="long-tail">{head}</tr>{"".join(rows)}</table>'


def _misalignment_table(misalignment: Mapping[str, dict | None]) -> str:
    present = {d: m for d, m in misalignment.items() if m}
    if not present:
        return '<p class="note">Misalignment (image-caption pairs whose caption names none of the concepts in the image) is not available for these datasets.</p>'
    keys = sorted({k for m in present.values() for k in m})
    head = "<tr><th>dataset</th>" + "".join(f"<th>{escape(k)}</th>" for k in keys) + "</tr>"
    rows = "".join(f"<tr><td>{escape(d)}</td>" + "".join(f"<td>{escape(str(m.get(k, '')))}</td>" for k in keys) + "</tr>"
                   for d, m in present.items())
    return f'<table class="misalignment">{head}{rows}</table>'


def render_html(report: dict, images: Mapping[str, bytes]) -> str:
    """`report` is `Report.data`; `images` maps the PNG file names it refers to onto their bytes."""
    meta = report["meta"]
    title = f"Zero-shot accuracy against pretraining frequency: {meta['dataset']}"
    generated = meta.get("generated") or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
             f"<style>{_STYLE}</style></head><body>",
             f'<header><h1>{escape(title)}</h1><p class="meta">count {escape(meta["count"])} &middot; prompts '
             f'{escape(meta["prompts"])} &middot; method {escape(meta["method"])} &middot; source {escape(meta["source"])} '
             f"&middot; generated {escape(generated)}</p></header>"]

    parts.append('<section id="summary"><h2>Scaling trends</h2>'
                 '<p class="note">Binned Pearson is the paper\'s estimator (12 equal-width bins of ln count, inner bins). '
                 "The slope, its interval, R&sup2; and Spearman come from a fit over the concepts themselves; "
                 "the last column is how many times more data buys +10 accuracy points.</p>"
                 + _fits_table(report["fits"]) + "</section>")

    figures = [_figure(f"trend-{entry['slug']}", entry["image"], images[entry["image"]],
                       f"accuracy against frequency for {entry['model']}",
                       f"{entry['model']}: each grey point is one concept; red points are bin means; the blue line is "
                       f"the {entry.get('line', {}).get('method', 'fitted')} trend with its bands.")
               for entry in report["fits"] if entry.get("image") in images]
    parts.append('<section id="trends"><h2>Accuracy against frequency</h2>' + "".join(figures) + "</section>")

    long_tail = report.get("long_tail")
    if long_tail:
        overlap = long_tail.get("reference_overlap")
        overlap_text = (f'<p class="overlap">{overlap["overlap"]} of the {overlap["k"]} rarest concepts are in the reference '
                        f'list ({overlap["reference_size"]} concepts, {overlap["reference_in_candidates"]} of them in this vocabulary).</p>'
                        if overlap else "")
        figure = _figure("long-tail-curve", "long-tail.png", images["long-tail.png"], "long-tail distribution of concept frequencies",
                         "Normalized frequency of every concept, sorted by rank, per dataset.") if "long-tail.png" in images else ""
        parts.append(f'<section id="long-tail"><h2>Long tail: the {long_tail["k"]} rarest concepts</h2>{figure}{overlap_text}'
                     f"{_long_tail_table(long_tail)}</section>")

    cross = report.get("cross_dataset")
    if cross:
        figure = _figure("cross-dataset-heatmap", "cross-dataset.png", images["cross-dataset.png"],
                         "Spearman correlation of concept frequencies between datasets",
                         "Rank correlation of concept frequencies over the concepts the datasets share.") \
            if "cross-dataset.png" in images else '<p class="note">One dataset only: nothing to correlate.</p>'
        parts.append(f'<section id="cross-dataset"><h2>Across pretraining datasets</h2>{figure}'
                     f'{_misalignment_table(cross.get("misalignment", {}))}</section>')

    parts.append('<footer><p class="note">conceptfreq, after Udandarao et al. (2024), '
                 '"No &lsquo;Zero-Shot&rsquo; Without Exponential Data".</p></footer></body></html>')
    return "\n".join(parts)
