"""A full report for one pretraining dataset: a trend per model, the long tail and the cross-dataset
views, as JSON, PNG figures and one self-contained HTML page."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from conceptfreq.core import trends
from conceptfreq.errors import NotFoundError, UserError
from conceptfreq.reporter import analysis, plots
from conceptfreq.reporter.html import render_html
from conceptfreq.reporter.source import ReportSource


@dataclass
class Report:
    data: dict
    images: dict[str, bytes] = field(default_factory=dict)

    @property
    def html(self) -> str:
        return render_html(self.data, self.images)

    def write(self, path: str | Path) -> list[Path]:
        """Write the HTML to `path` and each PNG beside it (`{stem}-{figure}.png`); return the files."""
        path = Path(path)
        if path.suffix.lower() not in {".html", ".htm"}:
            raise UserError(f"the report path must end in .html, got {str(path)!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html, encoding="utf-8")
        written = [path]
        for name, png in self.images.items():
            target = path.with_name(f"{path.stem}-{name}")
            target.write_bytes(png)
            written.append(target)
        return written


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model"


def _model_entry(source: ReportSource, selection: analysis.Selection, options: analysis.FitOptions, images: dict) -> dict:
    data, info = source.trend_data(selection.dataset, selection.model, selection.count, selection.prompts,
                                   downstream=selection.downstream, rule=selection.rule, pretrained=selection.pretrained)
    notes = []
    try:
        binned = trends.fit(data, "binned")
    except trends.TrendError as error:
        binned, notes = None, [f"binned: {error}"]
    # The plotted line: the bounded logit curve when asked for, else the per-concept line.
    line_method = "logit" if options.method == "logit" else "per-concept"
    line = trends.fit(data, line_method, **options.kwargs())
    # Refitting the failed binned fit raises its error again, which is the message to show.
    chosen = {"binned": binned, line_method: line}.get(options.method) or trends.fit(data, options.method, **options.kwargs())
    slug, image = _slug(selection.model), f"trend-{_slug(selection.model)}.png"
    title = (f"{selection.model} pretrained on {info.get('pretrained') or selection.dataset}: "
             f"{info['count']} counts, {selection.prompts} prompts")
    images[image] = plots.trend_png(data, binned, line, title)
    return {"model": selection.model, "slug": slug, "image": image, "fit": chosen.to_json(),
            "binned": binned.to_json() if binned else None, "line": line.to_json(), "selection": info, "notes": notes}


def build_report(source: ReportSource, dataset: str, models: list[str] | None, count: str, prompts: str = "ensemble",
                 options: analysis.FitOptions | None = None, *, rule: str | None = None,
                 downstream: list[str] | None = None, long_tail: analysis.LongTailOptions | None = None,
                 generated: str | None = None) -> Report:
    options = (options or analysis.FitOptions()).validate()
    models = list(models) if models else source.models(dataset, prompts)
    if not models:
        raise NotFoundError(f"no model has {prompts} zero-shot results for {dataset!r}")
    images: dict[str, bytes] = {}
    fits = [_model_entry(source, analysis.Selection(dataset, m, count, prompts, rule, downstream), options, images)
            for m in models]
    data = {"meta": {"dataset": dataset, "count": fits[0]["selection"]["count"], "prompts": prompts,
                     "method": options.method, "source": repr(source), "generated": generated}, "fits": fits}

    long_tail = long_tail or analysis.LongTailOptions(count=count, rule=rule, prompts=prompts)
    data["long_tail"] = analysis.long_tail(source, long_tail)
    cross = analysis.cross_dataset(source, data["long_tail"]["datasets"], long_tail.count, long_tail.rule, long_tail.downstream)
    data["cross_dataset"] = cross
    images["long-tail.png"] = plots.long_tail_png(cross["curves"])
    if len(cross["datasets"]) > 1:
        images["cross-dataset.png"] = plots.heatmap_png(cross["datasets"], cross["spearman"], cross["n_concepts"])
    return Report(data, images)
