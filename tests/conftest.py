"""Fixtures that start the real backing servers once per test session, on free loopback ports,
and stop them at the end: a ClickHouse 18.16 server, and the tansu Kafka-protocol broker."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from conceptfreq.adapters.store import open_store
from conceptfreq.devservers import clickhouse_server, kafka_broker
from tests.paths import SHARED_DATA


# No model hub is reachable from CI; fail fast instead of waiting on timeouts.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def clickhouse():
    with clickhouse_server() as server:
        yield server


@pytest.fixture(scope="session")
def kafka():
    with kafka_broker() as broker:
        yield broker


@pytest.fixture
def clickhouse_url(clickhouse) -> str:
    """A fresh database on the shared server for each test."""
    return clickhouse.url(f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def chdb_url(tmp_path) -> str:
    return f"chdb://{tmp_path / 'store'}"


@pytest.fixture(params=["clickhouse", "chdb"])
def store_url(request) -> str:
    """Run a test with identical assertions on the ClickHouse server and on embedded chDB."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def store(store_url):
    store = open_store(store_url)
    yield store
    store.close()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA} (it sits beside the repository, not in a clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def caption_rows() -> list[tuple[str, str]]:
    """(caption, url) pairs for shards of the benchmark layouts: the real CC-3M validation captions
    where the reference data is beside the repository, else captions made up from the default
    vocabulary's names (so that a clone without it still runs these tests)."""
    from tests.bench.ingest_data import CAPTIONS_TSV, cc3m_captions

    if CAPTIONS_TSV.exists():
        return cc3m_captions()
    from conceptfreq.core.vocabulary import default

    names = [concept.name for concept in default()]
    templates = ["a photo of a {}", "two {}s on the beach at sunset", "  {} , close up ", "the {} \u2014 caf\u00e9 au lait", "{}"]
    return [(templates[i % len(templates)].format(names[i * 7 % len(names)]), f"http://example.com/{i}.jpg") for i in range(2000)]
