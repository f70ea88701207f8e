"""The whole cluster-mode stack on one machine, as local processes: the tansu Kafka-protocol
broker, a ClickHouse server, Triton serving the tiny model, every conceptfreq service, and
Prometheus scraping them with the alert rules.

    python -m conceptfreq.devservers.stack up      # `make up`: start, wait until healthy, print where each listens
    python -m conceptfreq.devservers.stack status  # what runs, and where
    python -m conceptfreq.devservers.stack demo    # `make demo FULL=1`: an ingest through the stack, read back
    python -m conceptfreq.devservers.stack down    # `make down`: stop everything `up` started

The processes outlive `up`: what runs where is kept in ROOT/stack.json (ROOT: build/stack, or
--root), and every log goes to ROOT/logs. Ports are free loopback ports chosen at start, so the
stack can run beside the test suite. `down` stops only the processes recorded there (each in its
own process group, so Triton's backend stubs go with it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from conceptfreq.devservers._process import free_port, port_open, wait_until
from conceptfreq.devservers.clickhouse import _CONFIG as CLICKHOUSE_CONFIG
from conceptfreq.devservers.clickhouse import _USERS as CLICKHOUSE_USERS

DEFAULT_ROOT = Path("build/stack")
REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
SERVICES = ["parser", "tagger", "counter", "evaluator", "query", "reporter"]
# Short sessions: a service restarted by hand rejoins its group in seconds (PLATFORM.md, tansu).
KAFKA_OPTIONS = "?session_timeout_ms=6000&heartbeat_interval_ms=1000"


class StackError(RuntimeError):
    """A one-line reason the stack cannot start or stop."""


def _log(root: Path, name: str) -> Path:
    return root / "logs" / f"{name}.log"


def _spawn(root: Path, name: str, command: list[str], *, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
    log = _log(root, name)
    return subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=env, cwd=cwd or root)


def _state_file(root: Path) -> Path:
    return root / "stack.json"


def _alive(pid: int, token: str) -> bool:
    """pid runs and is still ours: its command line has `token` (a pid may be reused after a crash)."""
    try:
        return token.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _healthy(port: int) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    if not port_open(port):
        return False
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


class _Tracker:
    """The processes started so far, so a failed `up` stops them again."""

    def __init__(self, root: Path):
        self.root = root
        self.entries: dict[str, dict] = {}

    def add(self, name: str, process: subprocess.Popen, token: str, **where) -> None:
        self.entries[name] = {"pid": process.pid, "token": token, "log": str(_log(self.root, name)), **where}
        self.save()

    def save(self, **extra) -> None:
        data = json.loads(_state_file(self.root).read_text()) if _state_file(self.root).exists() else {}
        data.update(extra)
        data["processes"] = self.entries
        _state_file(self.root).write_text(json.dumps(data, indent=2))


def up(root: Path = DEFAULT_ROOT, *, timeout_s: float = 300, progress=print) -> dict:
    """Start the stack under `root`; returns the state that status() prints."""
    root = root.resolve()
    if _state_file(root).exists():
        if running(root):
            raise StackError(f"the stack in {root} is already up: `make down` first")
        _state_file(root).unlink()
    for sub in ("logs", "clickhouse", "data"):
        shutil.rmtree(root / sub, ignore_errors=True)
    (root / "logs").mkdir(parents=True)
    tracker = _Tracker(root)
    try:
        state = _start_all(root, tracker, timeout_s, progress)
    except BaseException:
        progress("start failed; stopping what was started")
        down(root, progress=lambda *_: None)
        raise
    return state


def _start_all(root: Path, tracker: _Tracker, timeout_s: float, progress) -> dict:
    from conceptfreq.adapters.inference.models import TINY_MODEL, tiny_checkpoint
    from conceptfreq.adapters.inference.repository import write_model_repository
    from conceptfreq.devservers.kafka import tansu_binary
    from conceptfreq.devservers.triton import TritonServer

    # ClickHouse, with its logs in the one log folder.
    binary = shutil.which("clickhouse-server")
    if not binary:
        raise StackError("clickhouse-server is not installed: run `make setup`")
    home = root / "clickhouse"
    for sub in ("data", "tmp", "user_files", "format_schemas"):
        (home / sub).mkdir(parents=True)
    tcp, http = free_port(), free_port()
    config = (CLICKHOUSE_CONFIG.format(root=home, tcp=tcp, http=http)
              .replace(f"{home}/server.log", str(_log(root, "clickhouse"))).replace(f"{home}/error.log", str(_log(root, "clickhouse-error"))))
    (home / "config.xml").write_text(config)
    (home / "users.xml").write_text(CLICKHOUSE_USERS)
    progress("starting ClickHouse")
    clickhouse = _spawn(root, "clickhouse-stdout", [binary, f"--config-file={home / 'config.xml'}"], cwd=home)
    tracker.add("clickhouse", clickhouse, "clickhouse", url=f"clickhouse://127.0.0.1:{tcp}/conceptfreq", http=f"http://127.0.0.1:{http}")
    wait_until(lambda: port_open(tcp), clickhouse, "clickhouse-server", _log(root, "clickhouse-error"))

    kafka_port = free_port()
    listener = f"tcp://127.0.0.1:{kafka_port}"
    progress("starting the tansu broker")
    tansu = _spawn(root, "tansu", [str(tansu_binary()), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
                                   "--storage-engine", "memory://tansu/"])
    tracker.add("kafka", tansu, "tansu", url=f"kafka://127.0.0.1:{kafka_port}")
    wait_until(lambda: port_open(kafka_port), tansu, "tansu", _log(root, "tansu"))
    bus, store = f"kafka://127.0.0.1:{kafka_port}{KAFKA_OPTIONS}", f"clickhouse://127.0.0.1:{tcp}/conceptfreq"

    progress("creating the store schema")
    migrate = subprocess.run([sys.executable, "-m", "conceptfreq.cli", "migrate", "--store", store], capture_output=True, text=True,
                             timeout=120, cwd=root)
    if migrate.returncode:
        raise StackError(f"conceptfreq migrate failed: {(migrate.stdout + migrate.stderr).strip().splitlines()[-1:]}")

    checkpoint = tiny_checkpoint(root / "model")
    repository = root / "triton-models"
    shutil.rmtree(repository, ignore_errors=True)
    write_model_repository(repository, TINY_MODEL, str(checkpoint), kind="cpu")
    progress("starting Triton (the tiny model, CPU)")
    shutil.rmtree(root / "triton", ignore_errors=True)
    (root / "triton").mkdir()
    class StackTriton(TritonServer):
        log = property(lambda self: _log(root, "triton"))  # the one log folder

    triton = StackTriton(repository, root / "triton", start_timeout_s=timeout_s)
    _start_triton(triton, tracker)
    inference = triton.url

    common = ["--bus", bus, "--store", store, "--host", "127.0.0.1"]
    model = ["--inference", inference, "--model", TINY_MODEL, "--pretrained", str(checkpoint)]
    extra = {"tagger": [*model, "--prompts", "simple", "--decode-workers", "1", "--cache-dir", str(root / "cache")],
             "evaluator": ["--inference", inference, "--cache-dir", str(root / "cache")],
             "counter": ["--batch-seconds", "0.5"]}
    ports = {}
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    for name in SERVICES:
        grpc_port, metrics_port = free_port(), free_port()
        ports[name] = (grpc_port, metrics_port)
        command = [sys.executable, "-m", f"conceptfreq.{name}", *(common if name not in ("query", "reporter") else
                                                                   ["--store", store, "--host", "127.0.0.1"]),
                   "--port", str(grpc_port), "--metrics-port", str(metrics_port), *extra.get(name, [])]
        process = _spawn(root, name, command, env=env, cwd=REPO)
        tracker.add(name, process, f"conceptfreq.{name}", grpc=f"127.0.0.1:{grpc_port}", metrics=f"http://127.0.0.1:{metrics_port}/metrics")
    progress("starting " + ", ".join(SERVICES))
    for name in SERVICES:
        entry = tracker.entries[name]
        process_pid = entry["pid"]
        deadline = time.monotonic() + timeout_s
        while not _healthy(ports[name][0]):
            if not _alive(process_pid, entry["token"]):
                raise StackError(f"{name} exited while starting; see {entry['log']}:\n" + _tail(Path(entry["log"])))
            if time.monotonic() > deadline:
                raise StackError(f"{name} was not healthy after {timeout_s:.0f}s; see {entry['log']}")
            time.sleep(0.2)

    prometheus = shutil.which("prometheus")
    if not prometheus:
        raise StackError("prometheus is not installed: run `make setup`")
    prom_port = free_port()
    jobs = [{"job_name": name, "honor_labels": True, "static_configs": [{"targets": [f"127.0.0.1:{ports[name][1]}"]}]}
            for name in SERVICES]
    jobs.append({"job_name": "triton", "static_configs": [{"targets": [f"127.0.0.1:{triton.metrics_port}"]}]})
    (root / "prometheus.yml").write_text(json.dumps({"global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
                                                     "rule_files": [str(RULES)], "scrape_configs": jobs}, indent=2))
    progress("starting Prometheus")
    shutil.rmtree(root / "data", ignore_errors=True)
    prom = _spawn(root, "prometheus", [prometheus, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'data'}",
                                       f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"])
    tracker.add("prometheus", prom, "prometheus", url=f"http://127.0.0.1:{prom_port}")
    wait_until(lambda: port_open(prom_port), prom, "prometheus", _log(root, "prometheus"))
    tracker.save(bus=bus, store=store, inference=inference, model=TINY_MODEL, pretrained=str(checkpoint), logs=str(root / "logs"))
    return json.loads(_state_file(root).read_text())


def _start_triton(triton, tracker: _Tracker) -> None:
    """TritonServer.start, its process recorded even when it fails to become ready (so that
    `down` stops it and its backend stubs)."""
    try:
        triton.start()
    finally:
        if triton.process is not None:
            tracker.add("triton", triton.process, "tritonserver", url=triton.url, http=f"http://127.0.0.1:{triton.http_port}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def state(root: Path = DEFAULT_ROOT) -> dict:
    path = _state_file(root.resolve())
    if not path.exists():
        raise StackError(f"no stack in {root.resolve()}: `make up` first")
    return json.loads(path.read_text())


def running(root: Path = DEFAULT_ROOT) -> list[str]:
    """Names of the recorded processes that still run."""
    try:
        processes = state(root)["processes"]
    except StackError:
        return []
    return [name for name, entry in processes.items() if _alive(entry["pid"], entry["token"])]


def down(root: Path = DEFAULT_ROOT, *, timeout_s: float = 30, progress=print) -> list[str]:
    """Stop every recorded process (its whole process group), newest first; returns their names."""
    root = root.resolve()
    try:
        processes = state(root)["processes"]
    except StackError:
        progress(f"nothing to stop: no stack in {root}")
        return []
    stopped = []
    for name, entry in reversed(list(processes.items())):
        if not _alive(entry["pid"], entry["token"]):
            continue
        progress(f"stopping {name} (pid {entry['pid']})")
        with _suppress():
            os.killpg(entry["pid"], signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _group_alive(entry["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_alive(entry["pid"]):
            with _suppress():
                os.killpg(entry["pid"], signal.SIGKILL)
        stopped.append(name)
    deadline = time.monotonic() + 10
    while any(_group_alive(e["pid"]) for e in processes.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    _state_file(root).unlink()
    return stopped


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        return kind is not None and issubclass(kind, ProcessLookupError)


def _group_alive(pgid: int) -> bool:
    """Any process left in the group `pgid` (zombies included until their parent reaps them)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def describe(data: dict) -> str:
    processes = data["processes"]
    rows = [("component", "where", "pid")]
    for name, entry in processes.items():
        where = entry.get("grpc") or entry.get("url") or ""
        if entry.get("metrics"):
            where += f"  (metrics {entry['metrics']})"
        elif entry.get("http"):
            where += f"  (http {entry['http']})"
        rows.append((name, where, str(entry["pid"])))
    width = max(len(r[0]) for r in rows)
    lines = [f"{r[0]:<{width}}  {r[2]:>7}  {r[1]}" for r in rows]
    lines += ["", f"bus:       {data.get('bus', '')}", f"store:     {data.get('store', '')}",
              f"inference: {data.get('inference', '')}", f"logs:      {data.get('logs', '')}",
              "", "try: make demo FULL=1   (or conceptfreq ... --bus BUS --store STORE); stop with: make down"]
    return "\n".join(lines)


def demo(root: Path = DEFAULT_ROOT, out: Path = Path("demo-output/full")) -> int:
    """An ingest of text and image shards through the running stack, read back three ways."""
    import grpc

    from conceptfreq.synthetic import brace_pattern, write_shards
    from conceptfreq.v1 import frequency_pb2, frequency_pb2_grpc

    data = state(root)
    missing = [name for name in data["processes"] if name not in running(root)]
    if missing:
        raise StackError(f"the stack is not fully up ({', '.join(missing)} not running): `make down && make up`")
    concepts = ["dog", "cat", "tiger", "airplane", "bicycle", "guitar", "pizza", "volcano", "lighthouse", "umbrella"]
    shutil.rmtree(out, ignore_errors=True)
    shards = write_shards(out / "shards", n_shards=4, samples_per_shard=100, concept_names=concepts, with_images=True, seed=5,
                          name="full")
    vocab = out / "vocab.txt"
    vocab.write_text("\n".join(concepts) + "\n")
    where = ["--bus", data["bus"], "--store", data["store"]]

    def step(*args: str) -> None:
        print(f"\n$ conceptfreq {' '.join(args)}", flush=True)
        status = subprocess.call([sys.executable, "-m", "conceptfreq.cli", *args])
        if status:
            raise StackError(f"demo step failed with exit status {status}: conceptfreq {' '.join(args)}")

    print(f"{len(shards)} shards of 100 captioned images in {out / 'shards'}; the tagger runs the tiny model (random weights) on Triton")
    step("ingest", "--dataset", "full-demo", "--shards", brace_pattern(shards), "--vocab", str(vocab), "--stages", "text,image",
         "--wait", "--timeout", "300", *where)
    step("status", "--dataset", "full-demo", *where)
    step("query", "--dataset", "full-demo", "--store", data["store"], *concepts[:5])
    query = data["processes"]["query"]["grpc"]
    print(f"\nThe same counts from the query service's gRPC FrequencyService at {query}:")
    with grpc.insecure_channel(query) as channel:
        reply = frequency_pb2_grpc.FrequencyServiceStub(channel).ListDatasets(frequency_pb2.ListDatasetsRequest(), timeout=30)
    for summary in reply.datasets:
        print(f"  {summary.dataset}: {summary.samples} samples, {summary.shards_done} shards done, {summary.shards_failed} failed")
    print(f"\nPrometheus: {data['processes']['prometheus']['url']}/targets   logs: {data['logs']}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conceptfreq.devservers.stack", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down", "status", "demo"])
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("CONCEPTFREQ_STACK_ROOT", DEFAULT_ROOT)),
                        help="where the state, logs and data go (env CONCEPTFREQ_STACK_ROOT; default build/stack)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds each component may take to start")
    args = parser.parse_args(argv)
    try:
        if args.action == "up":
            print(describe(up(args.root, timeout_s=args.timeout)))
        elif args.action == "down":
            stopped = down(args.root)
            print(f"stopped {len(stopped)} processes" if stopped else "nothing was running")
        elif args.action == "status":
            data = state(args.root)
            alive = set(running(args.root))
            print(describe(data))
            for name in data["processes"]:
                if name not in alive:
                    print(f"NOT RUNNING: {name} (log {data['processes'][name]['log']})")
            return 0 if alive == set(data["processes"]) else 1
        else:
            return demo(args.root)
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
