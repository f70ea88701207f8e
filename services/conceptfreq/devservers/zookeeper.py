"""A throwaway ZooKeeper (Debian's `zookeeper` package, 3.8 on Debian 12) in a temp dir, for a
replicated ClickHouse on one machine (see replicated.py).

Started in the foreground with the JRE, without systemd. Only loopback: `clientPortAddress`
keeps it off every other address, and the admin server (Jetty on 0.0.0.0:8080) is off.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from conceptfreq.devservers._process import free_port, stop, wait_until

JAR = Path("/usr/share/java/zookeeper.jar")

_CONFIG = """dataDir={root}/data
clientPort={port}
clientPortAddress=127.0.0.1
tickTime=2000
admin.enableServer=false
4lw.commands.whitelist=ruok,stat,mntr,srvr
"""


def four_letter(port: int, command: str, timeout: float = 1.0) -> str:
    """A ZooKeeper four-letter command's answer, or "" when it does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(command.encode())
            chunks = []
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


@dataclass
class ZooKeeperServer:
    port: int
    root: Path
    process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def serving(self) -> bool:
        # `ruok` answers imok before the server serves, and ClickHouse 18.16 can crash when it
        # connects then (PLATFORM.md): only `srvr` saying standalone means ready.
        return "Mode: standalone" in four_letter(self.port, "srvr")

    def start(self) -> None:
        java = shutil.which("java")
        if not java or not JAR.exists():
            raise RuntimeError("ZooKeeper is not installed: apt-get install -y zookeeper (make setup does it)")
        log = self.root / "zookeeper.log"
        self.process = subprocess.Popen(
            [java, "-Xmx256m", "-cp", f"/etc/zookeeper/conf:{JAR}", "org.apache.zookeeper.server.ZooKeeperServerMain",
             str(self.root / "zoo.cfg")],
            stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True)
        wait_until(self.serving, self.process, "zookeeper", log, timeout=60)

    def stop(self) -> None:
        if self.process:
            stop(self.process)
            self.process = None


@contextlib.contextmanager
def zookeeper_server(root: Path | None = None) -> Iterator[ZooKeeperServer]:
    with tempfile.TemporaryDirectory(prefix="conceptfreq-zookeeper-") as tmp:
        base = Path(root or tmp)
        (base / "data").mkdir(parents=True, exist_ok=True)
        server = ZooKeeperServer(free_port(), base)
        (base / "zoo.cfg").write_text(_CONFIG.format(root=base, port=server.port))
        server.start()
        try:
            yield server
        finally:
            server.stop()
