"""The tagger with torch:// in process (tiny model, fixed weights) on ClickHouse and chDB: the bus
handler, retag against a re-run, bad images in a shard, and gRPC TagImages."""

from __future__ import annotations


import grpc
import pytest

from conceptfreq.adapters.bus import Message
from conceptfreq.adapters.bus.events import BadShard, read_stage_result, shard_event
from conceptfreq.core.tagging import parse_rule
from conceptfreq.synthetic import tar_bytes, write_shards
from conceptfreq.tagger.retag import Retag
from conceptfreq.tagger.service import TagShardEvents
from tests import tagger_support
from tests.unit.test_images import JPEG, encoded, noise, png_with_size


class Producer:
    def __init__(self):
        self.sent = []

    def send(self, topic, value, key=None):
        self.sent.append((topic, value))

    def flush(self):
        pass

    def close(self):
        pass


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    backend = tagger_support.torch_backend(tmp_path_factory.mktemp("weights"))
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("shards"), n_shards=2, samples_per_shard=40, concept_names=tagger_support.NAMES,
                        with_images=True, seed=3)


@pytest.fixture
def vocab(store):
    vocabulary = tagger_support.vocabulary()
    store.save_vocabulary(vocabulary)
    return vocabulary


def handle(handler, dataset, vocabulary, shard, offset=0, force=False):
    event = shard_event(dataset, shard, vocabulary.version, announced_at_ms=1, stages=["text", "image"], force=force)
    handler.handle(Message("shards", 0, offset, None, event.SerializeToString()))


def image_counts(store, dataset, vocabulary, rule):
    counts = store.frequencies(dataset, vocabulary.version, rules={"image": rule})
    return {c: k["image"] for c, k in counts.items() if k["image"]}


def test_retag_gives_what_a_rerun_at_the_new_threshold_gives(store, vocab, backend, shards, tmp_path):
    first, second = "softmax:p=0.5", "softmax:p=0.15"
    producer = Producer()
    tagger = tagger_support.make_tagger(backend, store, vocab, first, cache_dir=tmp_path)
    for i, shard in enumerate(shards):
        handle(TagShardEvents(store, producer, "results", tagger), "tagged", vocab, shard, i)
    results = [read_stage_result(value) for _, value in producer.sent]
    assert [(r.stage, r.rule, r.samples) for r in results] == [("image", first, 40)] * 2
    before = image_counts(store, "tagged", vocab, first)
    Retag(store, "tagged", vocab.version, parse_rule(second), recount=None).run()

    rerun = tagger_support.make_tagger(backend, store, vocab, second, cache_dir=tmp_path)
    for i, shard in enumerate(shards):
        handle(TagShardEvents(store, Producer(), "results", rerun), "rerun", vocab, shard, i)

    assert image_counts(store, "tagged", vocab, second) == image_counts(store, "rerun", vocab, second)
    assert sum(image_counts(store, "rerun", vocab, second).values()) > sum(before.values()) > 0
    assert image_counts(store, "tagged", vocab, first) == before  # the old rule stays queryable
    tagged, again = store.visible_image_attempts("tagged", vocab.version), store.visible_image_attempts("rerun", vocab.version)
    for shard in shards:
        assert (store.image_hits("tagged", vocab.version, shard, tagged[shard].attempt_id)[second]
                == store.image_hits("rerun", vocab.version, shard, again[shard].attempt_id)[second])
    tagger.close()
    rerun.close()


def test_a_redelivered_event_is_answered_from_the_ledger(store, vocab, backend, shards, tmp_path):
    tagger = tagger_support.make_tagger(backend, store, vocab, "topk:k=1", cache_dir=tmp_path)
    producer = Producer()
    handler = TagShardEvents(store, producer, "results", tagger)
    handle(handler, "ds", vocab, shards[0])
    attempt = store.visible_image_attempts("ds", vocab.version)[shards[0]].attempt_id
    handle(handler, "ds", vocab, shards[0], offset=1)
    assert store.visible_image_attempts("ds", vocab.version)[shards[0]].attempt_id == attempt
    assert [read_stage_result(v).attempt_id for _, v in producer.sent] == [attempt, attempt]
    handle(handler, "ds", vocab, shards[0], offset=2, force=True)  # ingest --force: tagged again
    assert store.visible_image_attempts("ds", vocab.version)[shards[0]].attempt_id != attempt
    tagger.close()


def test_bad_images_are_counted_skips_and_the_shard_completes(store, vocab, backend, tmp_path):
    members = [("0000.txt", b"a dog"), ("0000.jpg", JPEG),
               ("0001.txt", b"a cat"), ("0001.jpg", JPEG[: len(JPEG) // 2]),
               ("0002.txt", b"a tiger"), ("0002.jpg", b""),
               ("0003.txt", b"a kite"), ("0003.jpg", b"not an image at all" * 4),
               ("0004.txt", b"a tent"), ("0004.png", png_with_size(20000, 20000)),
               ("0005.txt", b"a cactus"), ("0005.jpg", encoded(noise("CMYK"), "JPEG")),
               ("0006.txt", b"a pizza"), ("0006.png", encoded(noise("P"), "PNG")),
               ("0007.txt", b"no image here")]
    shard = tmp_path / "bad-images.tar"
    shard.write_bytes(tar_bytes(members))
    tagger = tagger_support.make_tagger(backend, store, vocab, "topk:k=1", cache_dir=tmp_path)
    handle(TagShardEvents(store, Producer(), "results", tagger), "ds", vocab, str(shard))
    attempt = store.visible_image_attempts("ds", vocab.version)[str(shard)]
    assert attempt.samples == 8
    assert attempt.skipped == {"truncated": 1, "empty_image": 1, "undecodable": 1, "too_many_pixels": 1, "no_image": 1}
    assert attempt.notes == {"converted_cmyk": 1, "converted_palette": 1}
    assert sum(image_counts(store, "ds", vocab, "topk:k=1").values()) == 3  # the three decodable images
    with pytest.raises(BadShard):
        (tmp_path / "broken.tar").write_bytes(b"not a tar" * 100)
        handle(TagShardEvents(store, Producer(), "results", tagger), "ds", vocab, str(tmp_path / "broken.tar"))
    tagger.close()


def test_grpc_tag_images(store, vocab, backend, tmp_path):
    from conceptfreq.adapters.grpc_server import serve
    from conceptfreq.tagger.service import registration
    from conceptfreq.v1 import tagger_pb2 as pb
    from conceptfreq.v1 import tagger_pb2_grpc as pb_grpc

    tagger = tagger_support.make_tagger(backend, store, vocab, "softmax:p=0.5", cache_dir=tmp_path)
    server, port = serve([registration(tagger)], 0, "127.0.0.1")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.TaggerServiceStub(channel)
            reply = stub.TagImages(pb.TagImagesRequest(images=[JPEG, b"", JPEG[: len(JPEG) // 2]], top_k=3, rule="topk:k=2"), timeout=30)
            assert reply.vocabulary_version == vocab.version and reply.rule == "topk:k=2" and reply.model.startswith("conceptfreq-tiny/")
            good, empty, cut = reply.results
            assert [s.name for s in good.top] and len(good.top) == 3 and good.error == ""
            assert [s.score for s in good.top] == sorted((s.score for s in good.top), reverse=True)
            assert set(good.hits) == {s.concept_id for s in good.top[:2]}
            assert 0 < good.top[0].probability <= 1
            assert (empty.error, cut.error) == ("empty_image", "truncated") and not empty.top
            with pytest.raises(grpc.RpcError) as error:
                stub.TagImages(pb.TagImagesRequest(images=[JPEG], vocabulary_version="nope"), timeout=30)
            assert error.value.code() == grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.RpcError) as error:
                stub.TagImages(pb.TagImagesRequest(images=[JPEG], rule="sigmoid:p=1"), timeout=30)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        server.stop(0)
        tagger.close()


def test_the_counter_writes_matched_counts_equal_to_a_brute_force_intersection(store, vocab, backend, shards, tmp_path):
    from collections import Counter

    from conceptfreq.counter.service import CountStageResults
    from conceptfreq.parser.stage import ParseShard
    from conceptfreq.pipeline.counting import MatchedCounts

    rules = ["softmax:p=0.3", "topk:k=2"]
    tagger = tagger_support.make_tagger(backend, store, vocab, rules[1], cache_dir=tmp_path)
    store.record_rule("ds", vocab.version, parse_rule(rules[0]))  # recorded first: topk (the tagger's) becomes active
    producer = Producer()
    for i, shard in enumerate(shards):
        handle(TagShardEvents(store, producer, "results", tagger), "ds", vocab, shard, i)
        text = ParseShard(vocab).run("ds", shard)
        store.write_shard(text)
    counter = CountStageResults(store, combiners={"matched": MatchedCounts()})
    for i, (_, value) in enumerate(producer.sent):
        counter.handle(Message("results", 0, i, None, value))
    counter.flush()

    # retag recounts matched counts with the counter's own code, in process (recount defaults to it)
    Retag(store, "ds", vocab.version, parse_rule("softmax:p=0.15")).run()
    rules.append("softmax:p=0.15")
    parse, index = ParseShard(vocab), tagger.indexes.get(vocab)
    for rule in rules:
        expected, pairs, misaligned = Counter(), 0, 0
        for shard in shards:
            text = dict(parse.run("ds", shard).hits)
            tagged = tagger.stage().run("ds", shard, index, [parse_rule(rule)])
            image = dict(tagged.hits)
            for key in tagged.keys:
                both = set(text.get(key, ())) & set(image.get(key, ()))
                expected.update(both)
                pairs, misaligned = pairs + 1, misaligned + (not both)
        found = store.frequencies("ds", vocab.version, rules={"matched": rule})
        assert {c: k["matched"] for c, k in found.items() if k["matched"]} == dict(expected)
        assert sum(expected.values()) > 0
        [row] = [m for m in store.misalignment("ds", vocab.version) if m.rule == rule]
        assert (row.shards, row.pairs, row.misaligned) == (2, pairs, misaligned)
    assert [m.rule for m in store.misalignment("ds", vocab.version)] == ["softmax:p=0.15", "topk:k=2", "softmax:p=0.3"]
    states = {(s.shard, s.stage): s.state for s in store.shard_states("ds", vocab.version)}
    assert all(states[(shard, stage)] == "done" for shard in shards for stage in ("text", "image", "matched", "counted"))
    tagger.close()
