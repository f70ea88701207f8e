"""Running evaluations: one shard at a time, the same way in `conceptfreq evaluate` (local) and in
the evaluator service (Kafka), which is what makes the two give identical numbers.

- `Evaluator.evaluate_shard(spec, shard)`: classify one shard and write its counts (idempotent),
  then publish the per-class results if that was the evaluation's last shard.
- `run_local`: every shard of a plan in this process, with a progress bar.
- `submit` / `follow`: publish a plan's shards on `eval-shards` and watch the store until the
  evaluator services have done them.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from conceptfreq.adapters.inference import open_inference
from conceptfreq.adapters.inference.embeddings import text_embeddings
from conceptfreq.adapters.metrics import SAMPLES, SHARD_SECONDS, SHARDS, SKIPPED
from conceptfreq.adapters.shards import EvalSet, ShardError
from conceptfreq.adapters.store import CountStore, LedgerProgress
from conceptfreq.core.counting import DONE, FAILED
from conceptfreq.errors import NotFoundError, UserError
from conceptfreq.evaluator.plan import CLASSIFICATION, EvalSpec, LabelIndex
from conceptfreq.evaluator.results import EvalStore
from conceptfreq.evaluator.stage import ClassifyShard
from conceptfreq.pipeline.announce import publish
from conceptfreq.pipeline.config import EVAL_SHARDS_TOPIC
from conceptfreq.pipeline.run import ShardBar, wait_until
from conceptfreq.v1 import evaluator_pb2 as pb

log = logging.getLogger(__name__)
STAGE = "eval"
DEFAULT_TOPIC = EVAL_SHARDS_TOPIC


@dataclass
class InferenceConfig:
    url: str | None = None             # torch:// or triton://host:port
    batch_size: int | None = None
    workers: int = 2                   # decode threads
    cache_dir: str | None = None       # text-embedding cache
    options: dict = field(default_factory=dict)   # backend options (device, timeout_s, ...)


class Evaluator:
    """Evaluates shards of any evaluation in the store; keeps one backend per (model, weights,
    precision) and one stage per evaluation, because loading a model and encoding 1,000 classes x
    80 templates cost far more than one shard."""

    def __init__(self, store: CountStore, config: InferenceConfig, *, max_backends: int = 2):
        self.store = store
        self.results = EvalStore(store)
        self.config = config
        self.max_backends = max_backends
        self._backends: dict[tuple, object] = {}
        self._stages: dict[str, tuple[EvalSet, ClassifyShard]] = {}
        self._lock = threading.Lock()

    def spec(self, evaluation_id: str) -> EvalSpec:
        spec = self.results.spec(evaluation_id)
        if spec is None:
            raise NotFoundError(f"evaluation {evaluation_id!r} is not in the store {self.store.location}")
        return spec

    def backend(self, spec: EvalSpec):
        key = (spec.model, spec.pretrained, spec.precision)
        with self._lock:
            if key not in self._backends:
                while len(self._backends) >= self.max_backends:  # bound memory: drop the oldest model
                    old = self._backends.pop(next(iter(self._backends)))
                    for evaluation_id in [e for e, (_, stage) in self._stages.items() if stage.backend is old]:
                        self._stages.pop(evaluation_id)[1].close()
                    old.close()
                self._backends[key] = open_inference(self.config.url, spec.model, spec.pretrained, spec.precision,
                                                     **self.config.options)
            return self._backends[key]

    def stage(self, spec: EvalSpec) -> tuple[EvalSet, ClassifyShard]:
        if spec.task != CLASSIFICATION:
            raise UserError(f"evaluation {spec.evaluation_id} is a {spec.task} evaluation; shards are classification only")
        with self._lock:
            cached = self._stages.get(spec.evaluation_id)
        if cached is not None:
            return cached
        backend = self.backend(spec)
        vocabulary = self.store.load_vocabulary(spec.vocabulary_version)
        embeddings = text_embeddings(backend, spec.classnames, spec.prompts, cache_dir=self.config.cache_dir)
        built = (spec.open(), ClassifyShard(backend, embeddings, LabelIndex(spec.classnames, vocabulary, spec.label_names),
                                            batch_size=self.config.batch_size, workers=self.config.workers))
        with self._lock:
            self._stages[spec.evaluation_id] = built
        return built

    def evaluate_shard(self, spec: EvalSpec, shard: str, *, force: bool = False,
                       progress: Callable[[int], None] | None = None) -> str:
        """"done" or "already_done"; raises ShardError (recorded as failed) when the shard is unreadable."""
        row = self.results.progress(spec).states.get(shard)
        if row is not None and row.state == DONE and not force:
            return "already_done"
        evalset, stage = self.stage(spec)
        if row is None or row.state != DONE:
            self.results.running(spec, shard)
        started = time.perf_counter()
        try:
            counts = stage.run(evalset, shard, progress)
        except ShardError as error:
            self.results.fail_shard(spec, shard, error.reason)
            SHARDS.labels(STAGE, spec.eval_dataset, FAILED).inc()
            raise
        self.results.write_shard(spec, shard, counts, stage.backend.model_id)
        SHARD_SECONDS.labels(STAGE).observe(time.perf_counter() - started)
        SHARDS.labels(STAGE, spec.eval_dataset, DONE).inc()
        SAMPLES.labels(STAGE, spec.eval_dataset).inc(counts.samples)
        for reason, n in counts.skipped.items():
            SKIPPED.labels(STAGE, spec.eval_dataset, reason).inc(n)
        self.maybe_publish(spec)
        return "done"

    def maybe_publish(self, spec: EvalSpec) -> bool:
        progress = self.results.progress(spec)
        if progress.done < progress.shards:
            return False
        self.results.publish(spec)
        return True

    def close(self) -> None:
        for _, stage in self._stages.values():
            stage.close()
        for backend in self._backends.values():
            backend.close()
        self._stages.clear()
        self._backends.clear()


@dataclass
class RunSummary:
    spec: EvalSpec
    progress: LedgerProgress
    seconds: float
    images: int = 0
    already_done: int = 0

    @property
    def rate(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0


def run_local(evaluator: Evaluator, spec: EvalSpec, *, force: bool = False, progress: bool = True) -> RunSummary:
    evaluator.results.save(spec)
    evaluator.results.announce(spec)
    summary = RunSummary(spec, LedgerProgress(len(spec.shards)), 0.0)
    with ShardBar(len(spec.shards), f"evaluate {spec.eval_dataset}", unit="images", enabled=progress) as bar:
        for shard in spec.shards:
            try:
                if evaluator.evaluate_shard(spec, shard, force=force, progress=bar.progress) == "already_done":
                    summary.already_done += 1
                bar.shard()
            except ShardError as error:
                bar.shard(failure=f"{shard}: {error.reason}")
        summary.images, summary.seconds = bar.items, bar.seconds
    summary.progress = evaluator.results.progress(spec)
    return summary


def shard_event(spec: EvalSpec, shard: str, force: bool = False) -> pb.EvalShardEvent:
    return pb.EvalShardEvent(evaluation_id=spec.evaluation_id, shard=shard, model=spec.model, pretrained=spec.pretrained_label,
                             precision=spec.precision, eval_dataset=spec.eval_dataset, data=spec.data, prompts=spec.prompts.mode,
                             vocabulary_version=spec.vocabulary_version, announced_at_ms=time.time_ns() // 1_000_000, force=force)


def submit(results: EvalStore, spec: EvalSpec, bus, topic: str = DEFAULT_TOPIC, *, partitions: int = 16, force: bool = False) -> int:
    """Store the plan and publish an event per shard not yet done (all with force); returns how many."""
    results.save(spec)
    results.announce(spec)
    done = {shard for shard, row in results.progress(spec).states.items() if row.state == DONE}
    todo = [shard for shard in spec.shards if force or shard not in done]
    publish(bus, topic, [(shard_event(spec, shard, force).SerializeToString(), f"{spec.evaluation_id}/{shard}".encode())
                         for shard in todo], partitions=partitions)
    if not todo:  # everything was done before: make sure the results are published
        results.publish(spec)
    return len(todo)


def follow(results: EvalStore, spec: EvalSpec, *, timeout_s: float | None = None, poll_s: float = 0.5,
           progress: bool = True) -> LedgerProgress:
    """Poll the store until every shard is done or failed (or timeout_s passes)."""
    with ShardBar(len(spec.shards), f"evaluate {spec.eval_dataset} (bus)", enabled=progress) as bar:
        def finished() -> bool:
            state = results.progress(spec)
            bar.move_to(state.done + state.failed, state.failed)
            return state.finished

        wait_until(finished, timeout_s=timeout_s, poll_s=poll_s)
    return results.progress(spec)
