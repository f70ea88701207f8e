"""FrequencyService: gRPC over FrequencyQueries. `python -m conceptfreq.query` or `conceptfreq serve query`."""

from __future__ import annotations

from conceptfreq.adapters.grpc_server import Registration, grpc_errors
from conceptfreq.adapters.store import CountStore
from conceptfreq.query.frequencies import Answer, FrequencyQueries
from conceptfreq.v1 import frequency_pb2 as pb
from conceptfreq.v1 import frequency_pb2_grpc as pb_grpc


def _frequencies(answer: Answer) -> list[pb.ConceptFrequency]:
    return [pb.ConceptFrequency(concept_id=r.concept_id, name=r.name, text=r.text, image=r.image, matched=r.matched)
            for r in answer.rows]


class FrequencyServicer(pb_grpc.FrequencyServiceServicer):
    def __init__(self, store: CountStore):
        self.queries = FrequencyQueries(store)

    @grpc_errors
    def GetFrequencies(self, request, context):
        answer = self.queries.frequencies(request.dataset, list(request.concepts), request.vocabulary_version or None,
                                          rule=request.image_rule or None)
        return pb.GetFrequenciesResponse(dataset=answer.dataset, vocabulary_version=answer.vocabulary_version,
                                         frequencies=_frequencies(answer), unknown=answer.unknown, samples=answer.samples,
                                         image_rule=answer.image_rule)

    @grpc_errors
    def TopConcepts(self, request, context):
        answer = self.queries.top(request.dataset, request.k or 20, request.rarest, request.kind or "text",
                                  request.vocabulary_version or None)
        return pb.TopConceptsResponse(dataset=answer.dataset, vocabulary_version=answer.vocabulary_version,
                                      frequencies=_frequencies(answer))

    @grpc_errors
    def ListDatasets(self, request, context):
        return pb.ListDatasetsResponse(datasets=[
            pb.DatasetSummary(dataset=s.dataset, vocabulary_version=s.vocabulary_version, samples=s.samples,
                              shards_done=s.states.get("text:done", 0), shards_failed=s.states.get("text:failed", 0))
            for s in self.queries.store.datasets()])


def registration(store: CountStore) -> Registration:
    return Registration(pb_grpc.add_FrequencyServiceServicer_to_server, FrequencyServicer(store), "conceptfreq.v1.FrequencyService")
