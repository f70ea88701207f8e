"""Store URL options of a ClickHouse server, and the schema rewritten for a replicated cluster."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from conceptfreq.adapters.store import _clickhouse_options
from conceptfreq.adapters.store.migrations import MIGRATIONS, on_cluster
from conceptfreq.errors import UserError


def test_every_migration_statement_has_a_replicated_form():
    """Every table a migration creates; a data copy (INSERT ... SELECT) and a column change (ALTER
    TABLE ... ADD COLUMN) run as they are: on a Replicated table each replicates itself."""
    for migration in MIGRATIONS:
        for statement in migration.statements:
            if statement.lstrip().startswith(("INSERT INTO", "ALTER TABLE")):
                assert on_cluster(statement.replace("{db}", "cf"), "prod") is None
                continue
            ddl = on_cluster(statement.replace("{db}", "cf"), "prod")
            assert ddl is not None, statement
            assert " ON CLUSTER prod " in ddl.sql and ddl.database == "cf" and ddl.table
            assert "ENGINE = Replicated" in ddl.sql
            assert f"'/clickhouse/tables/{{shard}}/cf/{ddl.table}', '{{replica}}'" in ddl.sql


def test_engine_arguments_are_kept_after_the_replication_path():
    ddl = on_cluster("CREATE TABLE IF NOT EXISTS cf.ledger (seq UInt64) ENGINE = ReplacingMergeTree(seq) ORDER BY seq", "c")
    assert ddl.sql == ("CREATE TABLE IF NOT EXISTS cf.ledger ON CLUSTER c (seq UInt64) ENGINE = "
                       "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/cf/ledger', '{replica}', seq) ORDER BY seq")
    assert on_cluster("CREATE DATABASE IF NOT EXISTS cf", "c").sql == "CREATE DATABASE IF NOT EXISTS cf ON CLUSTER c"


def test_queries_inserts_and_mutations_are_left_alone():
    for sql in ["SELECT 1", "INSERT INTO cf.t (a) VALUES", "ALTER TABLE cf.t DELETE WHERE a = 1",
                "ALTER TABLE cf.t ADD COLUMN b String DEFAULT ''"]:
        assert on_cluster(sql, "c") is None


def options(url: str) -> dict:
    return _clickhouse_options(urlsplit(url))


def test_url_options_become_driver_arguments():
    got = options("clickhouse://h:9000/db?cluster=prod&alt_hosts=h2:9000,h3:9000&insert_quorum=2"
                  "&secure=1&verify=0&ca_certs=/etc/ca.pem")
    assert got == {"cluster": "prod", "alt_hosts": "h2:9000,h3:9000", "settings": {"insert_quorum": 2},
                   "tls": {"secure": True, "verify": False, "ca_certs": "/etc/ca.pem"}}


@pytest.mark.parametrize("query, message", [
    ("clusterr=prod", "unknown ClickHouse store option 'clusterr'"),
    ("insert_quorum=two", "must be a whole number"),
    ("secure=yes", "must be 0 or 1"),
    ("cluster=a;DROP", "invalid ClickHouse cluster name"),
])
def test_bad_url_options_are_one_line_errors(query, message):
    with pytest.raises(UserError, match=message):
        options(f"clickhouse://h:9000/db?{query}")
