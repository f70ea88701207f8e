"""Zero-shot retrieval per concept, on COCO/Flickr-style sets (several captions per image).

Concepts come from the project's own caption matcher (core.matching.PhraseMatcher), so "the
captions that contain `dog`" means what it means in the counts:
- text-to-image recall@k of a concept: over the captions that contain it, the share whose own
  image is among the k best images for the caption;
- image-to-text recall@k of a concept: over the images with a caption that contains it, the share
  for which one of their own captions is among the k best captions.
Ranks are over the whole set, so retrieval is computed in one place, not shard by shard.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from tqdm import tqdm

from conceptfreq.core.evaluation import (ConceptRecall, RECALL_KS, image_to_text_ranks, overall_recall, per_concept_recall,
                                         text_to_image_ranks)
from conceptfreq.core.matching import PhraseMatcher
from conceptfreq.core.vocabulary import Vocabulary
from conceptfreq.evaluator.plan import EvalSpec
from conceptfreq.evaluator.stage import encode_retrieval_set


@dataclass
class RetrievalResult:
    spec: EvalSpec
    images: int
    captions: int
    skipped: dict[str, int]
    t2i: dict[int, float]
    i2t: dict[int, float]
    recalls: list[ConceptRecall]
    names: dict[int, str]
    seconds: float

    def rows(self) -> list[dict]:
        by_concept: dict[int, dict] = {}
        for r in self.recalls:
            row = by_concept.setdefault(r.concept_id, {"concept_id": r.concept_id, "concept": self.names.get(r.concept_id, "")})
            row[f"{r.direction}_n"] = r.total
            row[f"{r.direction}_r@{r.k}"] = None if math.isnan(r.recall) else round(r.recall, 4)
        return sorted(by_concept.values(), key=lambda row: (row.get("t2i_r@1") or 0.0, row["concept"]))

    def to_json(self) -> dict:
        return {"evaluation_id": self.spec.evaluation_id, "model": self.spec.model, "pretrained": self.spec.pretrained_label,
                "eval_dataset": self.spec.eval_dataset, "vocabulary_version": self.spec.vocabulary_version, "images": self.images,
                "captions": self.captions, "skipped": self.skipped, "seconds": round(self.seconds, 3),
                "t2i": {f"r@{k}": round(v, 4) for k, v in self.t2i.items()},
                "i2t": {f"r@{k}": round(v, 4) for k, v in self.i2t.items()}, "concepts": self.rows()}

    def text(self, top: int = 10) -> str:
        lines = [f"{self.spec.model} ({self.spec.pretrained_label}) retrieval on {self.spec.eval_dataset}: "
                 f"{self.images:,} images, {self.captions:,} captions in {self.seconds:.1f}s",
                 "  text->image " + "  ".join(f"R@{k} {v:.2f}%" for k, v in self.t2i.items()),
                 "  image->text " + "  ".join(f"R@{k} {v:.2f}%" for k, v in self.i2t.items())]
        if self.skipped:
            lines.append("  skipped: " + ", ".join(f"{r} {n:,}" for r, n in sorted(self.skipped.items())))
        rows = self.rows()[:top]
        if rows:
            lines.append(f"  worst {len(rows)} concepts by text->image R@1 (captions):")
            lines.extend(f"    {row.get('t2i_r@1', 0.0) or 0.0:6.2f}%  n={row.get('t2i_n', 0):<6} {row['concept']}" for row in rows)
        return "\n".join(lines)


def run_retrieval(evaluator, spec: EvalSpec, vocabulary: Vocabulary, *, ks=RECALL_KS, progress: bool = True) -> RetrievalResult:
    started = time.monotonic()
    backend = evaluator.backend(spec)
    evalset = spec.open()
    with tqdm(unit="image", disable=not progress, dynamic_ncols=True, desc=f"retrieval {spec.eval_dataset}") as bar:
        data = encode_retrieval_set(backend, evalset, batch_size=evaluator.config.batch_size, workers=evaluator.config.workers,
                                    progress=bar.update)
    caption_concepts = PhraseMatcher(vocabulary).match(data.captions).per_caption() if data.captions else []
    image_concepts: list[set[int]] = [set() for _ in data.image_keys]
    for owner, concepts in zip(data.caption_image.tolist(), caption_concepts):
        image_concepts[owner].update(concepts)
    t2i = text_to_image_ranks(data.text_embeddings, data.image_embeddings, data.caption_image)
    i2t = image_to_text_ranks(data.text_embeddings, data.image_embeddings, data.caption_image)
    recalls = per_concept_recall(t2i, caption_concepts, "t2i", ks) + per_concept_recall(i2t, image_concepts, "i2t", ks)
    names = {c.id: c.name for c in vocabulary}
    evaluator.results.save(spec)
    evaluator.results.write_retrieval(spec, recalls, names)
    return RetrievalResult(spec, len(data.image_keys), len(data.captions), data.skipped, overall_recall(t2i, ks),
                           overall_recall(i2t, ks), recalls, names, time.monotonic() - started)
