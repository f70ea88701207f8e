"""Frequency queries and counting at web scale, on the real ClickHouse server.

For stores of 1,000, 4,000 and 16,000 synthetic shards (10,000 samples each; 1,550 concepts of the
default vocabulary hit per shard, as real captions hit them), made with INSERT ... SELECT so that
building them takes seconds:
- `GetFrequencies` of one concept through `conceptfreq serve query` (a separate process) at a fixed
  offered load, from an open-loop load generator in another process (tests/bench/loadgen.py),
  latency from the intended send time: p50 and p99;
- `BatchGetFrequencies` of 4,000 concepts: p99;
- the counter: seconds to count one more shard (its totals advanced) with the store already that big;
- `GetSamples`: the first page for the most frequent concept (text hits are stored for the first
  64 shards only: a page never needs more);
- baseline, same run: the direct query over the per-shard counts (what every lookup and every
  counter flush cost before totals were kept).

BENCH_QUERY_SECONDS (default 20) sets how long each load runs; BENCH_QUERY_SCALES the shard counts."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid

import grpc

from conceptfreq.adapters.store import open_store
from conceptfreq.core.counting import ShardResult
from conceptfreq.core.vocabulary import default
from conceptfreq.devservers import clickhouse_server
from conceptfreq.devservers._process import free_port
from conceptfreq.pipeline.counting import Counting
from conceptfreq.v1 import frequency_pb2 as pb
from conceptfreq.v1 import frequency_pb2_grpc as pb_grpc

SCALES = [int(s) for s in os.environ.get("BENCH_QUERY_SCALES", "1000,4000,16000").split(",")]
SECONDS = float(os.environ.get("BENCH_QUERY_SECONDS", "20"))
QPS = 1000
BATCH_QPS = 20
CONCEPTS_PER_SHARD = 1550
SAMPLES_PER_SHARD = 10_000
DATASET = "synthetic"


def _row(figure: str, value, unit: str, baseline: str = "", baseline_value=None, ratio=None) -> dict:
    if ratio is None and baseline_value:
        ratio = value / baseline_value
    return {"benchmark": "query", "figure": figure, "value": value, "unit": unit, "baseline": baseline,
            "baseline_value": baseline_value, "ratio": ratio}


def build(store, version: str, shards: int) -> None:
    """Per-shard counts, ledger rows and (first 64 shards) text hits, written by the server itself."""
    per = CONCEPTS_PER_SHARD
    store._execute("""INSERT INTO {db}.shard_concept_counts
        SELECT %(d)s, %(v)s, concat('shard-', toString(intDiv(number, %(per)s))), 'text', concat('a', toString(intDiv(number, %(per)s))),
               'text', 'phrase', toUInt32(number %% %(per)s), toUInt64(1 + intDiv(%(samples)s, 1 + number %% %(per)s))
        FROM numbers(%(n)s)""", d=DATASET, v=version, per=per, samples=SAMPLES_PER_SHARD, n=shards * per)
    store._execute("""INSERT INTO {db}.shard_ledger
        SELECT %(d)s, %(v)s, concat('shard-', toString(number)), 'text', 'done', concat('a', toString(number)), %(samples)s, 0,
               [], [], '', 1000 + number, 0
        FROM numbers(%(n)s)""", d=DATASET, v=version, samples=SAMPLES_PER_SHARD, n=shards)
    store._execute("""INSERT INTO {db}.text_hits
        SELECT %(d)s, %(v)s, concat('shard-', toString(intDiv(number, %(samples)s))), concat('a', toString(intDiv(number, %(samples)s))),
               toString(1000000000 + number %% %(samples)s), [toUInt32(number %% 97)]
        FROM numbers(%(n)s)""", d=DATASET, v=version, samples=SAMPLES_PER_SHARD, n=min(64, shards) * SAMPLES_PER_SHARD)


def timed(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def serve_query(store_url: str):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "conceptfreq.query", "--store", store_url, "--port", str(port),
                                "--host", "127.0.0.1", "--metrics-port", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    client = pb_grpc.FrequencyServiceStub(channel)

    deadline = time.monotonic() + 60
    while True:
        try:
            client.ListDatasets(pb.ListDatasetsRequest(), timeout=1)
            return process, port, client, channel
        except grpc.RpcError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the query service did not start: {process.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.2)


def load(port: int, concepts: list[str], qps: float, seconds: float, batch: bool = False) -> dict:
    command = [sys.executable, "-m", "tests.bench.loadgen", "--target", f"127.0.0.1:{port}", "--dataset", DATASET, "--qps", str(qps),
               "--seconds", str(seconds), "--concepts", *concepts] + (["--batch"] if batch else [])
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=seconds * 4 + 120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def scale(clickhouse, shards: int) -> dict:
    vocabulary = default()
    names = [c.name for c in vocabulary][:CONCEPTS_PER_SHARD]
    url = clickhouse.url(f"bench_{uuid.uuid4().hex[:8]}")
    store = open_store(url)
    result = {"shards": shards}
    try:
        store.save_vocabulary(vocabulary)
        started = time.perf_counter()
        build(store, vocabulary.version, shards)
        result["build_s"] = time.perf_counter() - started
        result["first_totals_s"] = timed(lambda: store.advance_totals(DATASET, vocabulary.version), repeat=1)
        rules = store.read_rules(DATASET, vocabulary.version)
        result["direct_one_s"] = timed(lambda: store.counts_under(DATASET, vocabulary.version, rules, [17]))
        result["direct_all_s"] = timed(lambda: store.counts_under(DATASET, vocabulary.version, rules), repeat=1)
        counting, extra = Counting(store, prune_every=0), iter(range(10**6))

        def count_one_more() -> None:
            shard = f"extra-{next(extra)}"
            store.write_shard(ShardResult(DATASET, vocabulary.version, shard, "text", samples=SAMPLES_PER_SHARD, rule="phrase",
                                          counts={i: 1 + i % 50 for i in range(CONCEPTS_PER_SHARD)}))
            counting.count(DATASET, vocabulary.version, [shard])
        result["count_shard_s"] = timed(count_one_more)
        process, port, client, channel = serve_query(url)
        try:
            started = time.perf_counter()
            page = client.GetSamples(pb.GetSamplesRequest(dataset=DATASET, concept=names[0], page_size=100), timeout=60)
            result["samples_first_page_s"] = time.perf_counter() - started
            result["samples_first_page_n"] = len(page.samples)
            result["single"] = load(port, names[:200], QPS, SECONDS)
            result["batch"] = load(port, [c.name for c in vocabulary][:4000] if len(vocabulary) >= 4000 else
                                   [c.name for c in vocabulary] + names[:4000 - len(vocabulary)], BATCH_QPS, SECONDS / 2, batch=True)
        finally:
            channel.close()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    finally:
        store.close()
    return result


def run() -> list[dict]:
    rows = []
    with clickhouse_server() as clickhouse:
        results = [scale(clickhouse, n) for n in SCALES]
    first, last = results[0], results[-1]
    for r in results:
        n = f"{r['shards']:,} shards"
        rows += [
            _row(f"{n}: GetFrequencies p50 at {QPS} QPS offered", r["single"]["p50_ms"], "ms",
                 "direct query over per-shard counts", r["direct_one_s"] * 1000),
            _row(f"{n}: GetFrequencies p99 at {QPS} QPS offered (target <= 5)", r["single"]["p99_ms"], "ms",
                 "direct query over per-shard counts", r["direct_one_s"] * 1000),
            _row(f"{n}: GetFrequencies achieved rate ({r['single']['errors']} errors)", r["single"]["achieved_qps"], "req/s",
                 "offered", float(QPS)),
            _row(f"{n}: BatchGetFrequencies, 4,000 concepts, p99 at {BATCH_QPS} QPS (target <= 50)", r["batch"]["p99_ms"], "ms",
                 "direct query, whole vocabulary", r["direct_all_s"] * 1000),
            _row(f"{n}: counting one more shard (totals advanced)", r["count_shard_s"], "s",
                 "re-aggregating the dataset (the old refresh)", r["direct_all_s"]),
            _row(f"{n}: GetSamples, first page ({r['samples_first_page_n']} keys)", r["samples_first_page_s"] * 1000, "ms"),
            _row(f"{n}: first totals of an existing store (once)", r["first_totals_s"], "s", "building the store", r["build_s"]),
        ]
    rows += [
        _row(f"GetFrequencies p50, {last['shards']:,} vs {first['shards']:,} shards (target <= 1.5)",
             last["single"]["p50_ms"], "ms", f"p50 at {first['shards']:,} shards", first["single"]["p50_ms"]),
        _row(f"counting a shard, {last['shards']:,} vs {first['shards']:,} shards (target <= 1.5)",
             last["count_shard_s"], "s", f"at {first['shards']:,} shards", first["count_shard_s"]),
    ]
    return rows
