"""The wedge on a real broker: a member of the parser group takes the only partition, commits one
event and then stops polling (as a member wedged in a rebalance does). A real parser process that
joins beside it is assigned nothing while events wait. It must say so (readiness off, a warning)
for as long as the group is wedged. (Recovery is shown on the in-process bus,
tests/integration/test_stalls.py: tansu keeps this group wedged even after the silent member leaves,
which is exactly the case the signal is for.)"""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conceptfreq.adapters.bus import open_bus
from conceptfreq.adapters.bus.liveness import READINESS, STALL_ENV
from conceptfreq.synthetic import brace_pattern, write_shards
from tests.e2e.test_pipeline import NAMES, vocab_file

NOT_SERVING, SERVING = health_pb2.HealthCheckResponse.NOT_SERVING, health_pb2.HealthCheckResponse.SERVING


@pytest.mark.slow
def test_a_parser_beside_a_silent_member_reports_the_stall_and_recovers(kafka_run, tmp_path, monkeypatch):
    run = kafka_run
    bus = open_bus(run.bus_url)
    bus.create_topics(run.topics.names, 1)  # one partition: only one member can own it
    shards = write_shards(tmp_path / "shards", n_shards=3, samples_per_shard=50, concept_names=NAMES, seed=2)
    vocab = vocab_file(tmp_path)
    code, out = run.cli("ingest", "--dataset", "wedge", "--shards", brace_pattern(shards), "--vocab", vocab)
    assert code == 0, out

    silent = bus.consumer([run.topics.shards], run.groups.setdefault("parser", run.prefix + "parser"), max_records=1)
    deadline = time.monotonic() + 30
    taken = []
    while not taken and time.monotonic() < deadline:
        taken = silent.poll(0.5)
    assert taken, "the silent member got no event"
    silent.commit(taken)  # the group now has committed offsets, and lag 2 behind them; then silence

    monkeypatch.setenv(STALL_ENV, "2")
    parser = run.service("parser", "--vocab", vocab)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{run.grpc_port(parser)}") as channel:
            health = health_pb2_grpc.HealthStub(channel)

            def readiness():
                return health.Check(health_pb2.HealthCheckRequest(service=READINESS), timeout=5).status

            deadline = time.monotonic() + 30
            while readiness() != NOT_SERVING:
                assert time.monotonic() < deadline, "readiness never turned off\n" + run.logs()
                time.sleep(0.2)
            assert "stalled: the group has 2 message(s) waiting" in run.log_of(parser)
            assert run.log_of(parser).count("parsed ") == 0

            # Still wedged a while later: the signal holds while nothing moves.
            time.sleep(3)
            assert readiness() == NOT_SERVING and run.log_of(parser).count("parsed ") == 0

            assert "stalled" in run.log_of(parser) and "progressing again" not in run.log_of(parser)
    finally:
        silent.close()
    assert run.stop_all() == [0], run.logs()  # a stalled worker still stops cleanly on SIGTERM
