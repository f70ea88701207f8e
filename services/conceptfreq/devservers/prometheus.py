"""A throwaway Prometheus server (Debian's `prometheus` package, 2.42 on Debian 12) in a temp dir,
scraping the targets it is given: for checking dashboard queries and alert rules end to end."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from conceptfreq.devservers._process import free_port, stop, wait_until


class PrometheusError(RuntimeError):
    """The server refused a request; `error_type` is Prometheus' (e.g. bad_data for a parse error)."""

    def __init__(self, error_type: str, message: str):
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type


@dataclass
class PrometheusServer:
    port: int
    root: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params: str | Sequence[str]) -> object:
        """GET /api/v1/PATH and return its `data`; raises PrometheusError when Prometheus says error."""
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:  # 400 and 422 carry Prometheus' own JSON error
            body = json.loads(error.read() or b"{}")
            if "errorType" not in body:
                raise
        if body.get("status") != "success":
            raise PrometheusError(body.get("errorType", "unknown"), body.get("error", ""))
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """An instant query's result vector (or scalar, as a one-element list)."""
        data = self.api("query", query=expr)
        result = data["result"]
        return [{"metric": {}, "value": result}] if data["resultType"] in ("scalar", "string") else result

    def wait_for_samples(self, expr: str, count: int, timeout: float = 30.0) -> None:
        """Block until `expr` (an instant vector) has at least `count` samples over the last minute
        in every series: enough scrapes for rate() and increase() to have values."""
        deadline = time.monotonic() + timeout
        probe = f"min(count_over_time(({expr})[1m:]))"
        while time.monotonic() < deadline:
            result = self.query(probe)
            if result and float(result[0]["value"][1]) >= count:
                return
            time.sleep(0.2)
        raise TimeoutError(f"Prometheus had fewer than {count} samples of {expr} after {timeout:.0f}s")

    def start(self) -> None:
        binary = shutil.which("prometheus")
        if not binary:
            raise RuntimeError("prometheus is not installed: apt-get install -y prometheus")
        log = self.root / "prometheus.log"
        self.process = subprocess.Popen(
            [binary, f"--config.file={self.root / 'prometheus.yml'}", f"--storage.tsdb.path={self.root / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn", "--storage.tsdb.retention.time=1h"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True,
        )
        wait_until(self._ready, self.process, "prometheus", log)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process:
            stop(self.process)


@contextlib.contextmanager
def prometheus_server(scrape_configs: list[dict], rule_files: Sequence[str | Path] = (),
                      scrape_interval: str = "1s", evaluation_interval: str = "1s") -> Iterator[PrometheusServer]:
    """Prometheus on a free loopback port, scraping `scrape_configs` (Prometheus' own schema, as
    dicts) and evaluating `rule_files`; stopped and deleted on exit."""
    with tempfile.TemporaryDirectory(prefix="conceptfreq-prometheus-") as tmp:
        root = Path(tmp)
        config = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
            "rule_files": [str(Path(path).resolve()) for path in rule_files],
            "scrape_configs": scrape_configs,
        }
        # JSON is YAML, so no YAML library is needed.
        (root / "prometheus.yml").write_text(json.dumps(config, indent=2))
        server = PrometheusServer(free_port(), root)
        server.start()
        try:
            yield server
        finally:
            server.stop()
