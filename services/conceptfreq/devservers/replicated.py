"""A replicated ClickHouse on one machine: one ZooKeeper and N ClickHouse 18.16 servers that form
one shard of N replicas, all on loopback (PLATFORM.md, "Replicated ClickHouse").

    with clickhouse_cluster(replicas=2) as cluster:
        url = cluster.url("db")          # clickhouse://r1/db?cluster=NAME&alt_hosts=r2,...
        cluster.replicas[1].stop()       # an outage of one replica; .start() brings it back
        cluster.sync("db")               # wait until every live replica has every part
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator


from conceptfreq.devservers._process import free_port
from conceptfreq.devservers.clickhouse import _CONFIG, _USERS, ClickHouseServer
from conceptfreq.devservers.zookeeper import ZooKeeperServer, zookeeper_server

CLUSTER = "conceptfreq"

# What each server adds to the standalone config: how replicas reach each other, ZooKeeper, the
# queue of ON CLUSTER statements, the cluster's members, and this server's place in it (macros).
_REPLICATION = """
  <interserver_http_port>{interserver}</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <zookeeper><node><host>127.0.0.1</host><port>{zookeeper}</port></node><session_timeout_ms>6000</session_timeout_ms></zookeeper>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
  <remote_servers><{cluster}><shard><internal_replication>true</internal_replication>{members}</shard></{cluster}></remote_servers>
  <macros><shard>01</shard><replica>{replica}</replica></macros>
</yandex>
"""


@dataclass
class ClickHouseCluster:
    zookeeper: ZooKeeperServer
    replicas: list[ClickHouseServer]
    name: str = CLUSTER
    # How long an ON CLUSTER statement waits for a replica that is down (the server's default is
    # 180 s); the statement stays queued for it either way.
    ddl_timeout_s: int = 10
    options: dict[str, str] = field(default_factory=dict)

    def url(self, database: str = "conceptfreq", first: int = 0) -> str:
        """The store URL of the cluster, connecting to replica `first` and failing over to the others."""
        ports = [r.tcp_port for r in self.replicas]
        others = ",".join(f"127.0.0.1:{p}" for i, p in enumerate(ports) if i != first)
        query = f"cluster={self.name}&alt_hosts={others}&distributed_ddl_task_timeout={self.ddl_timeout_s}"
        return f"clickhouse://127.0.0.1:{ports[first]}/{database}?{query}"

    def replica_url(self, index: int, database: str = "conceptfreq") -> str:
        """One replica alone, no failover: to read what that replica holds."""
        return self.replicas[index].url(database)

    def sync(self, database: str) -> None:
        """SYSTEM SYNC REPLICA on every table of `database` on every live replica: replication is
        asynchronous, so a test compares replicas only after this."""
        from conceptfreq.adapters.store import open_store

        for index, replica in enumerate(self.replicas):
            if replica.process is None or replica.process.poll() is not None:
                continue
            store = open_store(self.replica_url(index, database), migrate=False)
            try:
                store.sync_replicas()
            finally:
                store.close()


@contextlib.contextmanager
def clickhouse_cluster(replicas: int = 2, name: str = CLUSTER) -> Iterator[ClickHouseCluster]:
    with tempfile.TemporaryDirectory(prefix="conceptfreq-chcluster-") as tmp:
        root = Path(tmp)
        with zookeeper_server(root / "zookeeper") as zookeeper:
            servers = []
            for index in range(replicas):
                home = root / f"replica{index + 1}"
                for sub in ("data", "tmp", "user_files", "format_schemas"):
                    (home / sub).mkdir(parents=True)
                servers.append(ClickHouseServer(free_port(), free_port(), home))
            members = "".join(f"<replica><host>127.0.0.1</host><port>{s.tcp_port}</port></replica>" for s in servers)
            for index, server in enumerate(servers):
                base = _CONFIG.format(root=server.root, tcp=server.tcp_port, http=server.http_port)
                extra = _REPLICATION.format(interserver=free_port(), zookeeper=zookeeper.port, cluster=name,
                                            members=members, replica=f"r{index + 1}")
                (server.root / "config.xml").write_text(base.replace("</yandex>\n", extra))
                (server.root / "users.xml").write_text(_USERS)
            started = []
            try:
                for server in servers:
                    server.start()
                    started.append(server)
                yield ClickHouseCluster(zookeeper, servers, name)
            finally:
                for server in started:
                    server.stop()
