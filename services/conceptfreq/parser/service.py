"""The parser service's two faces over one stage (ParseShard):
- `ParseShardEvents`: the bus handler (pipeline/stages.py): a ShardEvent in, text hits in the store,
  a StageResult out;
- `ParserServicer`: gRPC ParserService, captions in, concepts out."""

from __future__ import annotations

from conceptfreq.adapters.bus import Producer
from conceptfreq.adapters.grpc_server import Registration, grpc_errors
from conceptfreq.adapters.matcher_cache import cached_matcher
from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import TEXT
from conceptfreq.core.matching import DEFAULT_METHOD, MATCHERS
from conceptfreq.core.vocabulary import Vocabulary
from conceptfreq.errors import UserError
from conceptfreq.parser.stage import ParseShard
from conceptfreq.pipeline.stages import ShardStageHandler
from conceptfreq.pipeline.vocabularies import Vocabularies
from conceptfreq.v1 import events_pb2
from conceptfreq.v1 import parser_pb2 as pb
from conceptfreq.v1 import parser_pb2_grpc as pb_grpc


class ParseShardEvents(ShardStageHandler):
    stage = TEXT
    doing, did = "parsing", "parsed"
    batched = True

    def __init__(self, store: CountStore, producer: Producer, results_topic: str, vocabularies: Vocabularies, method: str = DEFAULT_METHOD):
        super().__init__(store, producer, results_topic, vocabularies)
        self.method = method

    def prepare(self, event: events_pb2.ShardEvent, vocabulary: Vocabulary):
        reading = (event.caption_column, event.captions_from)
        stage = self.vocabularies.built(("parse", vocabulary.version, self.method, *reading),
                                        lambda: ParseShard(vocabulary, self.method, *reading))
        return lambda: stage.run(event.dataset, event.shard_url, format=event.format or None)

    def write(self, result) -> None:
        self.store.write_shards([result])

    def write_many(self, results) -> None:
        self.store.write_shards(results)


class ParserServicer(pb_grpc.ParserServiceServicer):
    MAX_CAPTIONS = 10_000  # per request (or per stream message): bounds one call's memory and latency

    def __init__(self, vocabularies: Vocabularies):
        self.vocabularies = vocabularies

    @grpc_errors
    def ParseCaptions(self, request, context):
        return self._parse(request)

    @grpc_errors
    def ParseCaptionsStream(self, request_iterator, context):
        for request in request_iterator:
            yield self._parse(request)

    def _parse(self, request: pb.ParseCaptionsRequest) -> pb.ParseCaptionsResponse:
        method = request.method or DEFAULT_METHOD
        if method not in MATCHERS:
            raise UserError(f"unknown method {method!r}: choose one of {', '.join(MATCHERS)}")
        if len(request.captions) > self.MAX_CAPTIONS:
            raise UserError(f"{len(request.captions)} captions in one request; send at most {self.MAX_CAPTIONS} "
                            "(the streaming call takes any number of such batches)")
        vocabulary = self.vocabularies.resolve(request.vocabulary_version, "this parser")
        names = {c.id: c.name for c in vocabulary}
        matcher = self.vocabularies.built(("matcher", vocabulary.version, method), lambda: cached_matcher(vocabulary, method))
        hits = matcher.match(list(request.captions)).per_caption()
        return pb.ParseCaptionsResponse(vocabulary_version=vocabulary.version, results=[
            pb.CaptionConcepts(concept_ids=ids, names=[names[i] for i in ids]) for ids in hits])


def registration(vocabularies: Vocabularies) -> Registration:
    return Registration(pb_grpc.add_ParserServiceServicer_to_server, ParserServicer(vocabularies), "conceptfreq.v1.ParserService")
