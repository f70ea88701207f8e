"""The HTML report: its structure against a golden outline, and its PNG figures (real, non-empty images).

Regenerate the golden outline after an intended change with
    CONCEPTFREQ_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_report_html.py
"""

from __future__ import annotations

import base64
import io
import os
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from conceptfreq.reporter import analysis
from conceptfreq.reporter.paper import PaperArtifacts
from conceptfreq.reporter.report import build_report
from tests.unit.test_report_artifacts import make_artifacts

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "report_structure.txt"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_STRUCTURE = {"html", "head", "title", "body", "header", "h1", "h2", "section", "figure", "img", "figcaption", "table",
              "th", "footer"}
_VOID = {"img", "meta", "br", "hr", "link"}


class Outline(HTMLParser):
    """Structural elements as indented lines: `tag#id.class`, headings and column titles with their text,
    images as `img[png:FILE]` (the embedded bytes vary with fonts; what they are does not)."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []
        self.depth = 0
        self.stack: list[str] = []
        self.text_for: int | None = None
        self.images: list[tuple[str, bytes]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in _STRUCTURE:
            label = tag + (f"#{attrs['id']}" if "id" in attrs else "") + (f".{attrs['class']}" if "class" in attrs else "")
            if tag == "img":
                kind, _, data = attrs["src"].partition(";base64,")
                assert kind == "data:image/png", "images must be embedded, not linked"
                self.images.append((attrs["data-file"], base64.b64decode(data)))
                label += f"[png:{attrs['data-file']}]"
            self.lines.append("  " * self.depth + label)
            if tag in {"h1", "h2", "th", "title"}:
                self.text_for = len(self.lines) - 1
        if tag not in _VOID:
            self.stack.append(tag)
            self.depth += tag in _STRUCTURE

    def handle_endtag(self, tag):
        if tag in _VOID or not self.stack:
            return
        while self.stack:
            open_tag = self.stack.pop()
            self.depth -= open_tag in _STRUCTURE
            if open_tag == tag:
                break
        if tag in {"h1", "h2", "th", "title"}:
            self.text_for = None

    def handle_data(self, data):
        if self.text_for is not None and data.strip():
            self.lines[self.text_for] += " " + " ".join(data.split())


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    artifacts = PaperArtifacts(make_artifacts(tmp_path_factory.mktemp("report") / "artifacts"))
    return build_report(artifacts, "cc3m", None, "integrated", "ensemble", analysis.FitOptions(n_boot=100),
                        long_tail=analysis.LongTailOptions(k=8, count="integrated", model="RN50"), generated="fixed")


def test_html_structure_matches_the_golden_outline(report):
    parsed = outline(report.html)
    text = "\n".join(parsed.lines) + "\n"
    if os.environ.get("CONCEPTFREQ_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")
    assert report.html.startswith("<!DOCTYPE html>") and "<script" not in report.html and "http" not in report.html.split("<footer")[0]


def _check_png(png: bytes) -> None:
    assert png.startswith(PNG_SIGNATURE) and len(png) > 5_000
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    height, width = image.shape[:2]
    assert height > 200 and width > 300
    assert float(np.std(image[..., :3])) > 0.01  # not a blank canvas


def test_pngs_are_rendered_embedded_and_written_beside_the_html(report, tmp_path):
    assert set(report.images) == {"trend-RN50.png", "trend-ViT-B-16.png", "long-tail.png", "cross-dataset.png"}
    for png in report.images.values():
        _check_png(png)
    embedded = dict(outline(report.html).images)
    assert embedded == report.images
    files = report.write(tmp_path / "out" / "report.html")
    assert [f.name for f in files] == ["report.html", "report-trend-RN50.png", "report-trend-ViT-B-16.png",
                                       "report-long-tail.png", "report-cross-dataset.png"]
    for name, png in report.images.items():
        assert (tmp_path / "out" / f"report-{name}").read_bytes() == png


def test_report_data_is_complete(report):
    data = report.data
    assert [f["model"] for f in data["fits"]] == ["RN50", "ViT-B-16"]
    for fit in data["fits"]:
        assert fit["binned"]["pearson"] > 0.5 and fit["line"]["method"] == "per-concept" and fit["fit"]["method"] == "binned"
    assert len(data["long_tail"]["concepts"]) == 8 and "predicted" in data["long_tail"]["concepts"][0]
    assert data["long_tail"]["reference_overlap"]["reference_size"] == 5
    assert data["cross_dataset"]["datasets"] == ["cc12m", "cc3m"]
