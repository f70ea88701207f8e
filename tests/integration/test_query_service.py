"""FrequencyService over gRPC: answers, status codes, health checking and reflection."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from conceptfreq.adapters.grpc_server import serve
from conceptfreq.core.counting import ShardResult
from conceptfreq.core.vocabulary import from_names
from conceptfreq.query.service import registration
from conceptfreq.v1 import frequency_pb2 as pb
from conceptfreq.v1 import frequency_pb2_grpc as pb_grpc

VOCAB = from_names([["dog", "puppy"], ["cat"], ["tench"]])


@pytest.fixture
def stub(store):
    store.save_vocabulary(VOCAB)
    store.write_shard(ShardResult("cc", VOCAB.version, "s0", "text", samples=100, counts={0: 40, 1: 7}, rule="phrase"))
    store.advance_totals("cc", VOCAB.version, ["s0"])  # as the counter does: the service answers from the totals
    server, port = serve([registration(store)], 0, "127.0.0.1")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield channel
    channel.close()
    server.stop(0)


def test_get_frequencies(stub):
    response = pb_grpc.FrequencyServiceStub(stub).GetFrequencies(pb.GetFrequenciesRequest(dataset="cc", concepts=["Puppies", "tench", "zebra"]))
    assert [(f.name, f.text) for f in response.frequencies] == [("dog", 40), ("tench", 0)]
    assert list(response.unknown) == ["zebra"] and response.samples == 100
    assert response.vocabulary_version == VOCAB.version


def test_top_concepts(stub):
    client = pb_grpc.FrequencyServiceStub(stub)
    assert [f.name for f in client.TopConcepts(pb.TopConceptsRequest(dataset="cc", k=2)).frequencies] == ["dog", "cat"]
    assert [f.name for f in client.TopConcepts(pb.TopConceptsRequest(dataset="cc", k=1, rarest=True)).frequencies] == ["tench"]
    [summary] = client.ListDatasets(pb.ListDatasetsRequest()).datasets
    assert (summary.dataset, summary.shards_done, summary.samples) == ("cc", 1, 100)


@pytest.mark.parametrize("request_message, method, code", [
    (pb.GetFrequenciesRequest(dataset="nope", concepts=["dog"]), "GetFrequencies", grpc.StatusCode.NOT_FOUND),
    (pb.GetFrequenciesRequest(dataset="", concepts=["dog"]), "GetFrequencies", grpc.StatusCode.INVALID_ARGUMENT),
    (pb.GetFrequenciesRequest(dataset="cc"), "GetFrequencies", grpc.StatusCode.INVALID_ARGUMENT),
    (pb.TopConceptsRequest(dataset="cc", kind="smell"), "TopConcepts", grpc.StatusCode.INVALID_ARGUMENT),
    (pb.GetFrequenciesRequest(dataset="cc", concepts=["dog"], image_rule="softmax:p=0.99"), "GetFrequencies", grpc.StatusCode.NOT_FOUND),
    (pb.GetFrequenciesRequest(dataset="cc", concepts=["dog"], vocabulary_version="feedface"), "GetFrequencies", grpc.StatusCode.NOT_FOUND),
])
def test_errors_carry_status_codes(stub, request_message, method, code):
    with pytest.raises(grpc.RpcError) as error:
        getattr(pb_grpc.FrequencyServiceStub(stub), method)(request_message)
    assert error.value.code() == code
    assert "Traceback" not in error.value.details()


def test_malformed_bytes_are_invalid_argument(stub):
    call = stub.unary_unary("/conceptfreq.v1.FrequencyService/GetFrequencies")
    with pytest.raises(grpc.RpcError) as error:
        call(b"\xff\xff\xff not a protobuf")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "malformed" in error.value.details()


def test_health_and_reflection(stub):
    health = health_pb2_grpc.HealthStub(stub)
    for service in ("", "conceptfreq.v1.FrequencyService"):
        assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(stub)
    [answer] = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for s in answer.list_services_response.service}
    assert {"conceptfreq.v1.FrequencyService", "grpc.health.v1.Health"} <= names


# --- the full service, answered from the totals in memory ----------------------------------------------

import threading  # noqa: E402
import time  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conceptfreq.query.index import FrequencyIndex  # noqa: E402

SHARKS = from_names([["tiger shark"], ["great white shark", "white pointer"], ["hammerhead shark"], ["tench"], ["dog", "puppy"]])


@pytest.fixture
def service(store):
    """Two datasets over one vocabulary, text hits kept, the index refreshed every 0.1 s."""
    store.save_vocabulary(SHARKS)
    for dataset, counts in (("cc", {0: 5, 1: 30, 4: 2}), ("laion", {0: 50, 1: 300, 2: 1})):
        hits = [(f"{c}-{i:03d}", [c]) for c, n in counts.items() for i in range(n)]
        store.write_shard(ShardResult(dataset, SHARKS.version, f"{dataset}-s0", "text", samples=1000, counts=counts, hits=hits,
                                      rule="phrase"))
        store.advance_totals(dataset, SHARKS.version, [f"{dataset}-s0"])
    index = FrequencyIndex(store, max_staleness_s=0.1)
    stop = threading.Event()
    refresher = threading.Thread(target=index.follow, args=(stop,), daemon=True)
    refresher.start()
    server, port = serve([registration(store, index)], 0, "127.0.0.1")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield pb_grpc.FrequencyServiceStub(channel), channel
    stop.set()
    channel.close()
    server.stop(0)


def test_frequencies_carry_ranks_rules_and_freshness(service, store):
    client, _ = service
    r = client.GetFrequencies(pb.GetFrequenciesRequest(dataset="cc", concepts=["white pointer", "tench", "hammerhead sharks", "tenhc"]))
    assert [(f.name, f.text) for f in r.frequencies] == [("great white shark", 30), ("tench", 0), ("hammerhead shark", 0)]
    text_rank = {f.name: next(k for k in f.ranks if k.kind == "text") for f in r.frequencies}
    assert text_rank["great white shark"].rank == 1 and text_rank["great white shark"].percentile == 80.0
    assert text_rank["tench"].rank == text_rank["hammerhead shark"].rank == 4 and text_rank["tench"].percentile == 0.0
    assert r.rules.text == "phrase" and r.samples == 1000 and r.shards == 1
    assert r.freshness.snapshot == store.totals_snapshot("cc", SHARKS.version).snapshot and r.freshness.max_staleness_ms == 100
    assert [(u.name, list(u.suggestions)) for u in r.unknown_concepts] == [("tenhc", ["tench"])]


def test_new_counts_are_served_within_the_staleness_bound(service, store):
    client, _ = service
    ask = lambda: client.GetFrequencies(pb.GetFrequenciesRequest(dataset="cc", concepts=["tench"])).frequencies[0].text  # noqa: E731
    assert ask() == 0
    store.write_shard(ShardResult("cc", SHARKS.version, "cc-s1", "text", samples=10, counts={3: 7}, rule="phrase"))
    store.advance_totals("cc", SHARKS.version, ["cc-s1"])
    deadline = time.monotonic() + 5
    while ask() != 7:
        assert time.monotonic() < deadline, "the index did not pick up the new snapshot"
        time.sleep(0.05)


def test_batch_top_search_compare_samples_and_listings(service):
    client, _ = service
    batch = client.BatchGetFrequencies(pb.BatchGetFrequenciesRequest(datasets=["cc", "laion"], concepts=["tiger shark", "dog"]))
    assert [(r.dataset, [f.text for f in r.frequencies]) for r in batch.results] == [("cc", [5, 2]), ("laion", [50, 0])]

    names, token = [], ""
    while True:  # pages of 2 over all five concepts, most frequent first, ties by name
        page = client.TopConcepts(pb.TopConceptsRequest(dataset="laion", k=2, page_token=token))
        names += [f.name for f in page.frequencies]
        token = page.next_page_token
        if not token:
            break
    assert names == ["great white shark", "tiger shark", "hammerhead shark", "dog", "tench"]

    found = client.SearchConcepts(pb.SearchConceptsRequest(query="shark", dataset="cc"))
    assert {m.name for m in found.matches} == {"tiger shark", "great white shark", "hammerhead shark"}
    assert client.SearchConcepts(pb.SearchConceptsRequest(query="white pointer", dataset="cc")).matches[0].how == "exact"

    compared = client.CompareDatasets(pb.CompareDatasetsRequest(concept="tiger shark", datasets=["cc", "laion"]))
    assert [(d.dataset, d.frequency.text, d.text_per_million) for d in compared.datasets] == [("cc", 5, 5000.0), ("laion", 50, 50000.0)]

    keys, token = [], ""
    while True:
        page = client.GetSamples(pb.GetSamplesRequest(dataset="cc", concept="great white shark", page_size=7, page_token=token))
        keys += [(s.shard, s.key) for s in page.samples]
        token = page.next_page_token
        if not token:
            break
    assert keys == [("cc-s0", f"1-{i:03d}") for i in range(30)]

    assert {d.dataset for d in client.ListDatasets(pb.ListDatasetsRequest()).datasets} == {"cc", "laion"}
    [vocabulary] = client.ListVocabularies(pb.ListVocabulariesRequest()).vocabularies
    assert (vocabulary.version, vocabulary.concepts, list(vocabulary.datasets)) == (SHARKS.version, 5, ["cc", "laion"])


@pytest.mark.parametrize("method, request_message, code", [
    ("GetFrequencies", pb.GetFrequenciesRequest(dataset="x" * 300_000, concepts=["dog"]), grpc.StatusCode.INVALID_ARGUMENT),
    ("GetFrequencies", pb.GetFrequenciesRequest(dataset="cc", concepts=["dog"], vocabulary_version="v" * 300_000),
     grpc.StatusCode.INVALID_ARGUMENT),
    ("GetFrequencies", pb.GetFrequenciesRequest(dataset="cc", concepts=["x" * 1_000_000]), grpc.StatusCode.INVALID_ARGUMENT),
    ("GetFrequencies", pb.GetFrequenciesRequest(dataset="cc", concepts=[""]), grpc.StatusCode.INVALID_ARGUMENT),
    ("GetFrequencies", pb.GetFrequenciesRequest(dataset="cc", concepts=["do\x00g"]), grpc.StatusCode.INVALID_ARGUMENT),
    ("GetFrequencies", pb.GetFrequenciesRequest(dataset="'; DROP TABLE x; --", concepts=["dog"]), grpc.StatusCode.NOT_FOUND),
    ("GetFrequencies", pb.GetFrequenciesRequest(dataset="laoin", concepts=["dog"]), grpc.StatusCode.NOT_FOUND),
    ("BatchGetFrequencies", pb.BatchGetFrequenciesRequest(datasets=["cc"], concepts=["dog"] * 10_001), grpc.StatusCode.INVALID_ARGUMENT),
    ("BatchGetFrequencies", pb.BatchGetFrequenciesRequest(datasets=["cc"] * 65, concepts=["dog"]), grpc.StatusCode.INVALID_ARGUMENT),
    ("TopConcepts", pb.TopConceptsRequest(dataset="cc", page_token="not-a-token"), grpc.StatusCode.INVALID_ARGUMENT),
    ("GetSamples", pb.GetSamplesRequest(dataset="cc", concept="dog", page_token="%%%"), grpc.StatusCode.INVALID_ARGUMENT),
    ("GetSamples", pb.GetSamplesRequest(dataset="cc", concept="zebra"), grpc.StatusCode.NOT_FOUND),
    ("SearchConcepts", pb.SearchConceptsRequest(query=""), grpc.StatusCode.INVALID_ARGUMENT),
])
def test_strict_input(service, method, request_message, code):
    client, _ = service
    with pytest.raises(grpc.RpcError) as error:
        getattr(client, method)(request_message)
    assert error.value.code() == code
    details = error.value.details() or ""
    assert "Traceback" not in details and len(details) < 2000
    if request_message.DESCRIPTOR.name == "GetFrequenciesRequest" and request_message.dataset == "laoin":
        assert "did you mean 'laion'" in details


def test_a_hundred_thousand_unknown_names_are_refused_quickly(service):
    client, _ = service
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as error:
        client.GetFrequencies(pb.GetFrequenciesRequest(dataset="cc", concepts=[f"name{i}" for i in range(100_000)]))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and time.monotonic() - started < 5
    answer = client.GetFrequencies(pb.GetFrequenciesRequest(dataset="cc", concepts=[f"name{i}" for i in range(10_000)]))
    assert len(answer.unknown) == 10_000 and len(answer.unknown_concepts) == 10_000


REQUESTS = {
    "GetFrequencies": pb.GetFrequenciesRequest, "BatchGetFrequencies": pb.BatchGetFrequenciesRequest,
    "TopConcepts": pb.TopConceptsRequest, "SearchConcepts": pb.SearchConceptsRequest, "CompareDatasets": pb.CompareDatasetsRequest,
    "GetSamples": pb.GetSamplesRequest, "ListDatasets": pb.ListDatasetsRequest, "ListVocabularies": pb.ListVocabulariesRequest,
}
FUZZ_OK = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
text = st.one_of(st.text(max_size=40), st.sampled_from(["cc", "laion", "dog", "shark", "'; DROP TABLE x; --", "\x00", "x" * 400]))


def _fill(message_class, draw_text, draw_int):
    fields = {}
    for f in message_class.DESCRIPTOR.fields:
        if f.type == f.TYPE_STRING:
            fields[f.name] = [draw_text(), draw_text()] if f.label == f.LABEL_REPEATED else draw_text()
        elif f.type in (f.TYPE_UINT32,):
            fields[f.name] = draw_int()
        elif f.type == f.TYPE_BOOL:
            fields[f.name] = bool(draw_int() % 2)
    return message_class(**fields)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(sorted(REQUESTS)), data=st.data(), raw=st.one_of(st.none(), st.binary(max_size=64)))
def test_fuzzed_requests_never_crash_the_service(service, method, data, raw):
    """Random messages and random bytes, on every method: a status the caller can act on, never
    UNKNOWN or INTERNAL."""
    _, channel = service
    if raw is not None:
        call = channel.unary_unary(f"/conceptfreq.v1.FrequencyService/{method}")
        payload = raw
    else:
        call = getattr(pb_grpc.FrequencyServiceStub(channel), method)
        payload = _fill(REQUESTS[method], lambda: data.draw(text), lambda: data.draw(st.integers(0, 5000)))
    try:
        call(payload, timeout=10)
    except grpc.RpcError as error:
        assert error.code() in FUZZ_OK, (method, payload, error.code(), error.details())
