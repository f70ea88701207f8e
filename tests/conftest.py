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
