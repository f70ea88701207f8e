"""The tagger service's two faces over one stage (TagShard):
- `TagShardEvents`: the bus handler (pipeline/stages.py): a ShardEvent in, image scores, hits and
  counts in the store, a StageResult (stage `image`, with the active rule) out;
- `TaggerServicer`: gRPC TaggerService.TagImages, image bytes in, top concepts and hits out.

An inference backend that is down (Triton restarting) raises UnavailableError: the consume loop
retries the whole shard with backoff and commits nothing meanwhile, so nothing is lost."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from conceptfreq.adapters.bus import Producer
from conceptfreq.adapters.grpc_server import Registration, grpc_errors
from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import IMAGE
from conceptfreq.core.tagging import Rule, parse_rule
from conceptfreq.core.vocabulary import Vocabulary
from conceptfreq.errors import UserError
from conceptfreq.pipeline.stages import ShardStageHandler
from conceptfreq.pipeline.vocabularies import Vocabularies
from conceptfreq.tagger.stage import ConceptIndexes, TagImages, TagShard
from conceptfreq.v1 import events_pb2
from conceptfreq.v1 import tagger_pb2 as pb
from conceptfreq.v1 import tagger_pb2_grpc as pb_grpc


@dataclass
class Tagger:
    """Everything the service shares between the bus handler and gRPC: the backend's image path,
    the concept embeddings per vocabulary, the configured rule, and the vocabularies."""

    images: TagImages
    indexes: ConceptIndexes
    vocabularies: Vocabularies
    rule: Rule
    caption_column: str = ""  # parquet: empty takes the first of caption, TEXT, text

    def stage(self, caption_column: str | None = None) -> TagShard:
        return TagShard(self.images, caption_column or self.caption_column)

    def close(self) -> None:
        self.images.close()


class TagShardEvents(ShardStageHandler):
    stage = IMAGE
    doing, did = "tagging", "tagged"

    def __init__(self, store: CountStore, producer: Producer, results_topic: str, tagger: Tagger):
        super().__init__(store, producer, results_topic, tagger.vocabularies)
        self.tagger = tagger

    def done_rule(self, dataset: str, version: str) -> str:
        return self.store.active_rule(dataset, version) or ""

    def prepare(self, event: events_pb2.ShardEvent, vocabulary: Vocabulary):
        # Every rule recorded for the dataset, the active one first: a shard tagged after a retag
        # carries the old rules too, so they stay complete.
        rules = self.store.ensure_rule(event.dataset, event.vocabulary_version, self.tagger.rule)
        index = self.tagger.indexes.get(vocabulary)
        stage = self.tagger.stage(event.caption_column)
        return lambda: stage.run(event.dataset, event.shard_url, index, rules, format=event.format or None)

    def write(self, result) -> None:
        self.store.write_image_shard(result)


class TaggerServicer(pb_grpc.TaggerServiceServicer):
    MAX_IMAGES = 1024   # per request: bounds one call's memory (1024 x 3 x 224 x 224 floats = 600 MB)
    MAX_TOP_K = 1000

    def __init__(self, tagger: Tagger):
        self.tagger = tagger

    @grpc_errors
    def TagImages(self, request: pb.TagImagesRequest, context) -> pb.TagImagesResponse:
        if len(request.images) > self.MAX_IMAGES:
            raise UserError(f"{len(request.images)} images in one request; send at most {self.MAX_IMAGES}")
        if request.top_k > self.MAX_TOP_K:
            raise UserError(f"top_k {request.top_k} is more than {self.MAX_TOP_K}")
        vocabulary = self.tagger.vocabularies.resolve(request.vocabulary_version, "this tagger")
        rule = parse_rule(request.rule) if request.rule else self.tagger.rule
        index = self.tagger.indexes.get(vocabulary)
        images = self.tagger.images
        decoded = list(images.pool.map(request.images))
        usable = [i for i, d in enumerate(decoded) if d.pixels is not None]
        k = int(request.top_k or images.top_k)
        results = [pb.ImageTags(error=d.skipped or "") for d in decoded]
        if usable:
            top = images.score(np.stack([decoded[i].pixels for i in usable]), index, k=max(k, images.top_k))
            mask = rule.mask(top)
            probabilities = top.probabilities()
            names = index.name_of()
            for row, i in enumerate(usable):
                shown = range(min(k, top.k))
                results[i].top.extend(pb.ConceptScore(concept_id=int(top.concept_ids[row, j]), name=names[int(top.concept_ids[row, j])],
                                                      score=float(top.cosines[row, j]), probability=float(probabilities[row, j]))
                                      for j in shown)
                results[i].hits.extend(sorted(int(c) for c in top.concept_ids[row][mask[row]]))
                results[i].note = decoded[i].note or ""
        return pb.TagImagesResponse(vocabulary_version=vocabulary.version, model=images.backend.model_id, rule=str(rule),
                                    results=results)


def registration(tagger: Tagger) -> Registration:
    return Registration(pb_grpc.add_TaggerServiceServicer_to_server, TaggerServicer(tagger), "conceptfreq.v1.TaggerService")
