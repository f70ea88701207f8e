"""The real Triton Inference Server, from the nvidia-pytriton wheel's bundled `tritonserver` 2.51.

    with triton_server(repository) as server:          # waits until every model is ready
        backend = open_inference(server.url, ...)       # triton://127.0.0.1:PORT
        server.stop(); server.start()                   # an outage, on the same ports

What it takes to run the bundled binary standalone (docs/platform.md), and why:
- a backend directory: a copy of the wheel's `backends/` with the python backend stub for this
  interpreter's version put into `python/`, where the python backend looks for it;
- LD_LIBRARY_PATH with this interpreter's LIBDIR (else the stub loads another libpython) and the
  wheel's `nvidia_pytriton.libs`;
- PATH starting with this interpreter's bin directory: the stub runs an isolated interpreter
  (PYTHONPATH is ignored) that finds its prefix from `python3` on PATH; from a venv's bin it
  takes the venv's site-packages, so model.py imports this torch, open_clip, conceptfreq and
  numpy<2 (the base interpreter's numpy 2 makes the stub return empty outputs);
- a neutral working directory: a folder named `triton` in the stub's cwd would shadow OpenAI
  Triton and break `import torch`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterator

from conceptfreq.devservers._process import free_port, port_open, stop, wait_until


def _pytriton_root() -> Path:
    try:
        return Path(str(resources.files("pytriton"))) / "tritonserver"
    except ModuleNotFoundError:
        raise RuntimeError("tritonserver comes with nvidia-pytriton: run `make setup`") from None


def backend_directory(target: Path) -> Path:
    """A backends/ tree that the standalone server can use with this interpreter."""
    root = _pytriton_root()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise RuntimeError(f"no Triton python backend stub for Python {version} in {stub.parent.parent}")
    shutil.copytree(root / "backends", target, dirs_exist_ok=True)
    shutil.copy2(stub, target / "python" / "triton_python_backend_stub")
    return target


def server_environment() -> dict[str, str]:
    root = _pytriton_root()
    libs = [sysconfig.get_config_var("LIBDIR") or "", str(root.parent.parent / "nvidia_pytriton.libs")]
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join([p for p in libs if p] + [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("PYTHONPATH", None)  # ignored by the stub anyway; never let it point the server at other packages
    return env


@dataclass
class TritonServer:
    model_repository: Path
    workdir: Path
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    start_timeout_s: float = 180.0
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"triton://127.0.0.1:{self.grpc_port}"

    @property
    def log(self) -> Path:
        return self.workdir / "tritonserver.log"

    def _ready(self) -> bool:
        if not port_open(self.http_port):
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/v2/health/ready", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def start(self) -> "TritonServer":
        """Start (again, on the same ports) and wait until every model is ready."""
        if self.process is not None and self.process.poll() is None:
            return self
        binary = _pytriton_root() / "bin" / "tritonserver"
        backends = self.workdir / "backends"
        if not backends.is_dir():
            backend_directory(backends)
        command = [str(binary), f"--model-repository={self.model_repository}", f"--backend-directory={backends}",
                   f"--grpc-port={self.grpc_port}", f"--http-port={self.http_port}", f"--metrics-port={self.metrics_port}",
                   "--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--allow-metrics=true", "--exit-timeout-secs=5",
                   # Large image batches: grow the stub's shared memory in big steps rather than 1 MiB at a time.
                   "--backend-config=python,shm-default-byte-size=16777216",
                   "--backend-config=python,shm-growth-byte-size=67108864"]
        self.process = subprocess.Popen(command, cwd=self.workdir, env=server_environment(), stdout=self.log.open("ab"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._ready, self.process, "tritonserver", self.log, timeout=self.start_timeout_s)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, timeout=20)
            self.process = None
            deadline = time.monotonic() + 10
            while port_open(self.grpc_port) and time.monotonic() < deadline:
                time.sleep(0.05)


@contextlib.contextmanager
def triton_server(model_repository: str | os.PathLike, start_timeout_s: float = 180.0) -> Iterator[TritonServer]:
    with tempfile.TemporaryDirectory(prefix="conceptfreq-triton-") as tmp:
        server = TritonServer(Path(model_repository).resolve(), Path(tmp), start_timeout_s=start_timeout_s)
        try:
            yield server.start()
        finally:
            server.stop()
