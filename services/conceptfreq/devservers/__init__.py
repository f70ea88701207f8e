"""Start the real backing servers on one machine, on free loopback ports: for tests, benchmarks
and local experiments (see docs/platform.md). Each is a context manager that stops what it started."""

from conceptfreq.devservers.clickhouse import clickhouse_server
from conceptfreq.devservers.kafka import kafka_broker
from conceptfreq.devservers.prometheus import prometheus_server
from conceptfreq.devservers.replicated import clickhouse_cluster
from conceptfreq.devservers.triton import triton_server
from conceptfreq.devservers.zookeeper import zookeeper_server

__all__ = ["clickhouse_server", "clickhouse_cluster", "kafka_broker", "prometheus_server", "triton_server", "zookeeper_server"]
