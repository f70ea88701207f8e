"""A throwaway ClickHouse server (Debian's clickhouse-server, 18.16 on Debian 12) in a temp dir."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from conceptfreq.devservers._process import free_port, port_open, stop, wait_until

_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{root}/server.log</log><errorlog>{root}/error.log</errorlog><console>0</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{tcp}</tcp_port>
  <http_port>{http}</http_port>
  <path>{root}/data/</path>
  <tmp_path>{root}/tmp/</tmp_path>
  <user_files_path>{root}/user_files/</user_files_path>
  <format_schema_path>{root}/format_schemas/</format_schema_path>
  <users_config>{root}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <max_concurrent_queries>64</max_concurrent_queries>
</yandex>
"""

_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default>
    <readonly><readonly>1</readonly><max_memory_usage>4000000000</max_memory_usage></readonly></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default>
    <reader><password>reader</password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>readonly</profile><quota>default</quota></reader></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"""


@dataclass
class ClickHouseServer:
    tcp_port: int
    http_port: int
    root: Path
    process: subprocess.Popen | None = None

    def url(self, database: str = "conceptfreq") -> str:
        return f"clickhouse://127.0.0.1:{self.tcp_port}/{database}"

    def start(self) -> None:
        binary = shutil.which("clickhouse-server") or shutil.which("clickhouse")
        if not binary:
            raise RuntimeError("clickhouse-server is not installed: run `make setup` (apt-get install clickhouse-server)")
        args = [binary] if binary.endswith("clickhouse-server") else [binary, "server"]
        log = self.root / "stdout.log"
        self.process = subprocess.Popen(
            [*args, f"--config-file={self.root / 'config.xml'}"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True,
        )
        wait_until(lambda: port_open(self.tcp_port), self.process, "clickhouse-server", self.root / "error.log")

    def stop(self) -> None:
        if self.process:
            stop(self.process)

    def restart(self) -> None:
        """Stop and start on the same ports and data: what a test of an outage needs."""
        self.stop()
        self.start()


@contextlib.contextmanager
def clickhouse_server() -> Iterator[ClickHouseServer]:
    with tempfile.TemporaryDirectory(prefix="conceptfreq-clickhouse-") as tmp:
        root = Path(tmp)
        for sub in ("data", "tmp", "user_files", "format_schemas"):
            (root / sub).mkdir()
        server = ClickHouseServer(free_port(), free_port(), root)
        (root / "config.xml").write_text(_CONFIG.format(root=root, tcp=server.tcp_port, http=server.http_port))
        (root / "users.xml").write_text(_USERS)
        server.start()
        try:
            yield server
        finally:
            server.stop()
