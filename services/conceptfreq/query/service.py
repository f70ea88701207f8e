"""FrequencyService: gRPC over FrequencyQueries, answered from the in-memory totals (index.py).
`python -m conceptfreq.query` or `conceptfreq serve query`."""

from __future__ import annotations

from conceptfreq.adapters.grpc_server import Registration, grpc_errors
from conceptfreq.adapters.store import CountStore
from conceptfreq.query.frequencies import Answer, FrequencyQueries
from conceptfreq.query.index import FrequencyIndex
from conceptfreq.v1 import frequency_pb2 as pb
from conceptfreq.v1 import frequency_pb2_grpc as pb_grpc


def _frequencies(answer: Answer) -> list[pb.ConceptFrequency]:
    return [pb.ConceptFrequency(concept_id=r.concept_id, name=r.name, text=r.text, image=r.image, matched=r.matched,
                                ranks=[pb.KindRank(kind=kind, rank=rank, percentile=percentile)
                                       for kind, (rank, percentile) in r.ranks.items()])
            for r in answer.rows]


def _freshness(answer: Answer) -> pb.Freshness | None:
    f = answer.freshness
    return pb.Freshness(snapshot=f.snapshot, computed_at_ms=f.computed_at_ms, checked_at_ms=f.checked_at_ms,
                        max_staleness_ms=f.max_staleness_ms) if f else None


def _response(answer: Answer) -> pb.GetFrequenciesResponse:
    return pb.GetFrequenciesResponse(
        dataset=answer.dataset, vocabulary_version=answer.vocabulary_version, frequencies=_frequencies(answer),
        unknown=answer.unknown, samples=answer.samples, image_rule=answer.image_rule, shards=answer.shards,
        rules=pb.KindRules(**{kind: rule for kind, rule in answer.rules.items() if kind in ("text", "image", "matched")}),
        freshness=_freshness(answer),
        unknown_concepts=[pb.UnknownConcept(name=n, suggestions=answer.suggestions.get(n, [])) for n in answer.unknown])


class FrequencyServicer(pb_grpc.FrequencyServiceServicer):
    def __init__(self, store: CountStore, index: FrequencyIndex | None = None):
        self.queries = FrequencyQueries(store, index)

    @grpc_errors
    def GetFrequencies(self, request, context):
        return _response(self.queries.frequencies(request.dataset, list(request.concepts), request.vocabulary_version or None,
                                                  rule=request.image_rule or None))

    @grpc_errors
    def BatchGetFrequencies(self, request, context):
        answers = self.queries.batch(list(request.datasets), list(request.concepts), request.vocabulary_version or None,
                                     rule=request.image_rule or None, with_ranks=request.with_ranks)
        return pb.BatchGetFrequenciesResponse(results=[_response(a) for a in answers])

    @grpc_errors
    def TopConcepts(self, request, context):
        kind = request.kind or "text"
        answer = self.queries.top(request.dataset, request.k or 20, request.rarest, kind, request.vocabulary_version or None,
                                  request.page_token)
        return pb.TopConceptsResponse(dataset=answer.dataset, vocabulary_version=answer.vocabulary_version,
                                      frequencies=_frequencies(answer), next_page_token=answer.next_page_token, freshness=_freshness(answer),
                                      rule=answer.rules.get(kind, ""))

    @grpc_errors
    def SearchConcepts(self, request, context):
        vocabulary, matches = self.queries.search(request.query, request.dataset, request.vocabulary_version or None,
                                                  request.limit)
        return pb.SearchConceptsResponse(vocabulary_version=vocabulary.version, matches=[
            pb.ConceptMatch(concept_id=c.id, name=c.name, aliases=list(c.aliases), matched=name, how=how) for c, name, how in matches])

    @grpc_errors
    def CompareDatasets(self, request, context):
        out = []
        for dataset, answer in self.queries.compare(request.concept, list(request.datasets), request.image_rule or None):
            row = answer.rows[0] if answer.rows else None
            rate = (lambda n: n / answer.samples * 1e6 if answer.samples else 0.0)
            out.append(pb.DatasetFrequency(
                dataset=dataset, vocabulary_version=answer.vocabulary_version, samples=answer.samples, freshness=_freshness(answer),
                frequency=_frequencies(answer)[0] if row else None, text_per_million=rate(row.text) if row else 0.0,
                image_per_million=rate(row.image) if row else 0.0, matched_per_million=rate(row.matched) if row else 0.0))
        return pb.CompareDatasetsResponse(concept=request.concept, datasets=out)

    @grpc_errors
    def GetSamples(self, request, context):
        answer, concept, rows, token = self.queries.samples(request.dataset, request.concept, request.kind or "text",
                                                            request.vocabulary_version or None, request.page_size,
                                                            request.page_token)
        return pb.GetSamplesResponse(dataset=answer.dataset, vocabulary_version=answer.vocabulary_version, concept_id=concept.id,
                                     samples=[pb.SampleRef(shard=shard, key=key) for shard, key in rows], next_page_token=token)

    @grpc_errors
    def ListDatasets(self, request, context):
        return pb.ListDatasetsResponse(datasets=[
            pb.DatasetSummary(dataset=s.dataset, vocabulary_version=s.vocabulary_version, samples=s.samples,
                              shards_done=s.states.get("text:done", 0), shards_failed=s.states.get("text:failed", 0))
            for s in self.queries.store.datasets()])

    @grpc_errors
    def ListVocabularies(self, request, context):
        used: dict[str, set[str]] = {}
        for summary in self.queries.store.datasets():
            used.setdefault(summary.vocabulary_version, set()).add(summary.dataset)
        out = []
        for version, datasets in sorted(used.items()):
            vocabulary = self.queries.index.vocabularies.get(version)
            if vocabulary is not None:
                out.append(pb.VocabularySummary(version=version, name=vocabulary.name, concepts=len(vocabulary), datasets=sorted(datasets)))
        return pb.ListVocabulariesResponse(vocabularies=out)


def registration(store: CountStore, index: FrequencyIndex | None = None) -> Registration:
    return Registration(pb_grpc.add_FrequencyServiceServicer_to_server, FrequencyServicer(store, index), "conceptfreq.v1.FrequencyService")
