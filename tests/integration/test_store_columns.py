"""Columnar writes (adapters/store: `_insert_columns`) on both stores: any string and any concept
array survive them, they leave the same rows as the row path they replaced, and `count` gives the
same counts with one worker and with two."""

from __future__ import annotations

import numpy as np

from conceptfreq.adapters.store import open_store
from conceptfreq.core.counting import DONE, ShardResult
from conceptfreq.core.tagging import TopScores, parse_rule, tag_shard
from conceptfreq.core.vocabulary import from_names
from conceptfreq.parser.stage import ParseShard
from conceptfreq.pipeline.run import count_shards
from conceptfreq.synthetic import write_shards
from tests.bench.ingest_data import write_layout

NAMES = ["dog", "cat", "great white shark", "tench", "goose", "t-shirt"]
VOCABULARY = from_names([[n] for n in NAMES])
V = VOCABULARY.version

# Keys no format may mangle: quotes, backslashes, newlines, NUL, tabs, non-BMP and combining characters,
# JSON and SQL metacharacters, a long one.
ODD_KEYS = ["plain", "it's", 'say "hi"', "back\\slash", "\\", "new\nline", "cr\r\n", "nul\x00byte", "\x00", "tab\tbed",
            "émoji 🦈 漢字", "e\u0301", "\u2028\u2029", '{"a": [1]}', "'); DROP TABLE x; --", "%(d)s", "k" * 5000, " "]


def odd_hits() -> list[tuple[str, list[int]]]:
    rng = np.random.default_rng(7)
    out = []
    for i, key in enumerate(ODD_KEYS):
        n = 1 + i % 5
        out.append((key, sorted({int(c) for c in rng.integers(0, 2**32 - 1, n)} | ({0, 2**32 - 1} if i == 3 else set()))))
    return sorted(out)


def test_any_string_and_concept_array_round_trips(store):
    hits = odd_hits()
    counts = {c: 1 for _, concepts in hits for c in concepts}
    store.announce("ds", V, ["shard \"ü\"\n\x00"])
    store.write_shard(ShardResult("ds", V, "shard \"ü\"\n\x00", "text", samples=len(hits), hits=hits, counts=counts, rule="phrase"))
    assert store.text_hits("ds", V, "shard \"ü\"\n\x00") == dict(hits)
    rows = store._execute("""SELECT concept_id, count FROM {db}.shard_concept_counts WHERE dataset = 'ds'
        AND shard = %(s)s ORDER BY concept_id""", s="shard \"ü\"\n\x00")
    assert [(int(c), int(n)) for c, n in rows] == sorted(counts.items())


def test_image_scores_and_hits_round_trip(store):
    keys = ODD_KEYS[:6]
    rng = np.random.default_rng(3)
    cosines = -np.sort(-rng.random((len(keys), 4), dtype=np.float32), axis=1)
    cosines[2, 3] = -0.9990234375  # cosines go below zero
    ids = np.array([rng.permutation(50)[:4] for _ in keys], dtype=np.uint32)
    ids[0, 0] = 2**32 - 1
    top = TopScores(ids, cosines, rng.random(len(keys), dtype=np.float32), 100.0, 50)
    rules = [parse_rule("cosine:t=0.5"), parse_rule("topk:k=2")]
    result = tag_shard(dataset="ds", vocabulary_version=V, shard="s0", keys=keys, top=top, rules=rules, samples=len(keys))
    store.announce("ds", V, ["s0"])
    store.write_image_shard(result)
    attempt = store.visible_image_attempts("ds", V)["s0"]
    stored_keys, stored = store.read_scores("ds", V, attempt)
    order = np.argsort(np.array(keys, dtype=object))  # read_scores returns sample-key order
    assert stored_keys == sorted(keys)
    np.testing.assert_array_equal(stored.concept_ids, ids[order])
    np.testing.assert_array_equal(stored.cosines, cosines[order])
    np.testing.assert_array_equal(stored.lse, top.lse[order])
    image_hits = store.image_hits("ds", V, "s0", attempt.attempt_id)
    assert image_hits == {rule: dict(hits.hits) for rule, hits in result.rules.items() if hits.hits}
    assert all(result.rules[r].hits for r in result.rules), "every rule must hit something for this test to mean anything"


def write_shard_rows(store, result: ShardResult) -> None:
    """The row path write_shard had before its writes were columnar, kept here as the reference."""
    store._insert("text_hits", ["dataset", "vocabulary_version", "shard", "attempt_id", "sample_key", "concept_ids"],
                  [(result.dataset, result.vocabulary_version, result.shard, result.attempt_id, key, concepts)
                   for key, concepts in result.hits])
    store._insert("shard_concept_counts", ["dataset", "vocabulary_version", "shard", "stage", "attempt_id", "kind", "rule",
                                           "concept_id", "count"],
                  [(result.dataset, result.vocabulary_version, result.shard, result.stage, result.attempt_id, result.stage,
                    result.rule, concept, count) for concept, count in sorted(result.counts.items())])
    store.record_state(result.dataset, result.vocabulary_version, result.shard, result.stage, DONE,
                       attempt_id=result.attempt_id, samples=result.samples, skip_reasons=result.skipped, notes=result.notes)


def stored_rows(store, dataset: str, shard: str) -> tuple[list, list]:
    hits = store._execute("""SELECT sample_key, concept_ids FROM {db}.text_hits WHERE dataset = %(d)s AND shard = %(s)s
        ORDER BY sample_key""", d=dataset, s=shard)
    counts = store._execute("""SELECT stage, kind, rule, concept_id, count FROM {db}.shard_concept_counts
        WHERE dataset = %(d)s AND shard = %(s)s ORDER BY concept_id""", d=dataset, s=shard)
    return [(k, [int(c) for c in ids]) for k, ids in hits], [tuple(r[:3]) + (int(r[3]), int(r[4])) for r in counts]


def test_columnar_writes_leave_the_rows_of_the_row_path(store, tmp_path):
    shards = write_shards(tmp_path / "shards", n_shards=2, samples_per_shard=300, concept_names=NAMES, seed=5)
    parse = ParseShard(VOCABULARY, "phrase", "caption")
    store.save_vocabulary(VOCABULARY)
    for shard in shards:
        result = parse.run("columns", shard)
        assert len(result.hits) > 50
        store.announce("columns", V, [shard])
        store.announce("rows", V, [shard])
        store.write_shard(result)
        write_shard_rows(store, ShardResult("rows", V, shard, result.stage, samples=result.samples, skipped=result.skipped,
                                            notes=result.notes, hits=list(result.hits), counts=result.counts, rule=result.rule))
        columns, rows = stored_rows(store, "columns", shard), stored_rows(store, "rows", shard)
        assert columns == rows and columns[0] and columns[1]
    assert store.frequencies("columns", V) == store.frequencies("rows", V)


def test_one_and_two_workers_count_the_same(store_url, tmp_path, caption_rows):
    """Parquet and webdataset text shards (the two layouts `count` is measured on)."""
    shards = (write_layout("parquet", tmp_path, 3, 700, rows=caption_rows) + write_layout("wds-text", tmp_path, 3, 700, rows=caption_rows)
              + write_shards(tmp_path / "synthetic", n_shards=2, samples_per_shard=400, concept_names=NAMES, seed=9))
    store = open_store(store_url)
    try:
        summaries = {w: count_shards(store, f"w{w}", shards, VOCABULARY, workers=w, progress=False) for w in (1, 2)}
        one, two = summaries[1], summaries[2]
        assert (one.done, one.samples, one.samples_with_hits, one.skipped, one.failures) == \
               (two.done, two.samples, two.samples_with_hits, two.skipped, two.failures)
        assert one.done == len(shards) and one.samples_with_hits > 0
        assert store.frequencies("w1", V) == store.frequencies("w2", V)
        assert store.totals("w1", V).snapshot.samples == store.totals("w2", V).snapshot.samples == one.samples
        for shard in shards:
            assert store.text_hits("w1", V, shard) == store.text_hits("w2", V, shard)
    finally:
        store.close()


def test_a_chdb_without_streaming_inserts_writes_the_same_rows(chdb_url):
    """chDB releases before `send_insert` (pyproject allows chdb>=4) take the row path instead."""

    class QueryOnly:  # the session of such a release: query() alone
        def __init__(self, session):
            self._session = session

        def query(self, *args, **kwargs):
            return self._session.query(*args, **kwargs)

        def close(self):
            self._session.close()

    store = open_store(chdb_url)
    try:
        store.backend._session = QueryOnly(store.backend._session)
        hits = odd_hits()
        store.announce("ds", V, ["s0"])
        store.write_shard(ShardResult("ds", V, "s0", "text", samples=len(hits), hits=hits, counts={1: 2}, rule="phrase"))
        assert store.text_hits("ds", V, "s0") == dict(hits)
        assert store.frequencies("ds", V) == {1: {"text": 2, "image": 0, "matched": 0}}
    finally:
        store.close()
