"""Running the stages over announced shards, and waiting for them.

- `count_shards`: the text stage over many shards on this machine (`conceptfreq count`). Worker
  processes parse; the parent alone writes, because an embedded chDB directory can be opened by one
  process only. It ends as the pipeline does: shards counted (pipeline/counting.py), so `status`
  reads a local count like a pipeline run.
- `run_embedded`: with the in-process bus nothing outside this process could consume the events,
  so the parser(s), the tagger (when the stages include `image`) and the counter run here, as the
  services' own loops and handlers in threads, until every published shard is done or failed.
- `follow`: after announcing, run embedded, or (Kafka) wait for the cluster's services if asked."""

from __future__ import annotations

import logging
import multiprocessing
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Collection, Iterator, Sequence

from tqdm import tqdm

from conceptfreq.adapters.bus import Bus, Topics
from conceptfreq.adapters.bus.retry import Retrier
from conceptfreq.adapters.shards import ShardError, filesystem, preload_readers, shard_format
from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import DONE, FAILED, IMAGE, TEXT, ShardResult
from conceptfreq.core.matching import DEFAULT_METHOD
from conceptfreq.core.vocabulary import Vocabulary
from conceptfreq.errors import UnavailableError, UserError
from conceptfreq.pipeline.announce import Announced, ledger_progress
from conceptfreq.pipeline.config import RunConfig, TaggingConfig
from conceptfreq.pipeline.counting import Counting
from conceptfreq.pipeline.progress import COUNTED, finished_since, shard_progress

log = logging.getLogger(__name__)


# --- what every runner shares ------------------------------------------------------------------------


class ShardBar:
    """The terminal progress of a run over shards: shards done of total, ETA (tqdm), and the
    run's own rate and failures after them; failures are printed above the bar as they happen."""

    def __init__(self, total: int, desc: str, unit: str = "samples", enabled: bool = True):
        self.unit = unit
        self.items = 0
        self.failed = 0
        self.started = time.monotonic()
        self._bar = tqdm(total=total, unit="shard", disable=not enabled, dynamic_ncols=True, desc=desc)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0

    def progress(self, items: int = 0) -> None:
        """`items` more samples (or images) seen, within or after a shard."""
        self.items += items
        self._bar.set_postfix_str(f"{self.items:,} {self.unit}, {self.rate:,.1f} {self.unit}/s, {self.failed} failed")

    def shard(self, items: int = 0, failure: str | None = None) -> None:
        """One shard finished (with its samples), or failed with a reason."""
        if failure is not None:
            self.failed += 1
            self._bar.write(f"failed: {failure}", file=sys.stderr)
        self.progress(items)
        self._bar.update()

    def move_to(self, finished: int, failed: int) -> None:
        """For a run done elsewhere: the ledger says how far it got."""
        self.failed = failed
        self._bar.update(finished - self._bar.n)
        self._bar.set_postfix_str(f"{failed} failed")

    def __enter__(self) -> "ShardBar":
        return self

    def __exit__(self, *_) -> None:
        self._bar.close()


def wait_until(finished: Callable[[], bool], *, timeout_s: float | None = 0, alive: Callable[[], bool] = lambda: True,
               poll_s: float = 0.2) -> bool:
    """Poll `finished` until it says so (True) or `timeout_s` passes (False; 0 or None: never).
    `alive` says whether whoever does the work is still there."""
    deadline = time.monotonic() + timeout_s if timeout_s else None
    while not finished():
        if not alive():
            raise RuntimeError("an in-process service stopped before the run finished; see the log above")
        if deadline and time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    return True


# --- on this machine, without a bus ------------------------------------------------------------------


@dataclass
class CountSummary:
    shards: int = 0
    done: int = 0
    already_done: int = 0
    samples: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)
    samples_with_hits: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0

    def add(self, result: ShardResult) -> None:
        self.done += 1
        self.samples += result.samples
        self.samples_with_hits += len(result.hits)
        for target, source in ((self.skipped, result.skipped), (self.notes, result.notes)):
            for reason, n in source.items():
                target[reason] = target.get(reason, 0) + n


# `count` writes what it parsed once it holds this many samples, or this long after its last write.
WRITE_SAMPLES = 200_000
WRITE_EVERY_S = 1.0

# Worker-process state: the matcher is built once per process, not once per shard.
_stage = None


def _init_worker(vocabulary: Vocabulary, method: str, caption_column: str, captions_from: str) -> None:
    from conceptfreq.parser.stage import ParseShard

    global _stage
    _stage = ParseShard(vocabulary, method, caption_column, captions_from)


def _parse(task: tuple[str, str]) -> tuple[str, ShardResult | None, str]:
    dataset, shard = task
    try:
        return shard, _stage.run(dataset, shard), ""
    except (ShardError, UnavailableError, UserError) as error:  # unavailable: a later `count --skip-done` retries it
        return shard, None, getattr(error, "reason", None) or str(error)
    except Exception as error:  # noqa: BLE001 - one bad shard must not end the run; the reason is kept
        log.exception("unexpected error parsing %s", shard)
        return shard, None, f"internal error: {type(error).__name__}: {error}"


def _results(tasks: list[tuple[str, str]], workers: int, init_args: tuple) -> Iterator[tuple[str, ShardResult | None, str]]:
    if workers <= 1:
        _init_worker(*init_args)
        yield from map(_parse, tasks)
        return
    if "fork" in multiprocessing.get_all_start_methods():
        # The matcher is built once, here, and the forked workers share it: building it in every
        # worker costs each core the whole build (seconds) at once, on a machine the parent's
        # writes share too.
        _init_worker(*init_args)
        context, initializer = multiprocessing.get_context("fork"), None
    else:
        context, initializer = multiprocessing.get_context("spawn"), _init_worker
    # chunksize 1: a shard is seconds of work, so handing them out one at a time costs nothing and
    # keeps both workers busy to the end. The parent writes each result while the workers go on
    # parsing; results arrive as numpy columns (SampleHits), cheap to unpickle and to write.
    with context.Pool(workers, initializer=initializer, initargs=init_args if initializer else ()) as pool:
        yield from pool.imap_unordered(_parse, tasks, chunksize=1)


def count_shards(store: CountStore, dataset: str, shards: Sequence[str], vocabulary: Vocabulary, *, method: str = DEFAULT_METHOD,
                 workers: int = 1, caption_column: str = "", captions_from: str = "shard", skip_done: bool = False,
                 progress: bool = True) -> CountSummary:
    summary = CountSummary(shards=len(shards))
    store.save_vocabulary(vocabulary)
    todo = list(shards)
    if skip_done:
        done = {s.shard for s in store.shard_states(dataset, vocabulary.version) if s.stage == TEXT and s.state == DONE}
        summary.already_done = sum(shard in done for shard in shards)
        todo = [s for s in shards if s not in done]
    kinds = set()
    for shard in todo:  # a URL no reader takes is the user's to fix: one line (exit 2) before any work
        kinds.add(shard_format(shard))
        filesystem(shard)
    preload_readers(kinds, captions_from)
    store.announce(dataset, vocabulary.version, todo)
    with ShardBar(len(todo), f"count {dataset}", enabled=progress) as bar:
        # Results are written in groups: a text shard parses in tens of milliseconds, about what one
        # write of its rows costs, so one write per table per group instead of several per shard.
        # A run that stops keeps what was written; the rest is counted again by `count --skip-done`.
        unwritten: list[ShardResult] = []
        unwritten_samples, written_at = 0, time.monotonic()
        for shard, result, error in _results([(dataset, s) for s in todo], workers,
                                              (vocabulary, method, caption_column, captions_from)):
            if result is None:
                store.fail_shard(dataset, vocabulary.version, shard, TEXT, error)
                summary.failures.append((shard, error))
                bar.shard(failure=f"{shard}: {error}")
                continue
            unwritten.append(result)
            unwritten_samples += result.samples
            if unwritten_samples >= WRITE_SAMPLES or time.monotonic() - written_at >= WRITE_EVERY_S:
                store.write_shards(unwritten)
                unwritten, unwritten_samples, written_at = [], 0, time.monotonic()
            summary.add(result)
            bar.shard(result.samples)
        store.write_shards(unwritten)
        # Once for the whole run: the totals are refreshed once, not per shard.
        Counting(store).count(dataset, vocabulary.version, shards)
        summary.seconds = bar.seconds
    return summary


# --- announced runs ---------------------------------------------------------------------------------


def wait_finished(store: CountStore, dataset: str, version: str, shards: Sequence[str], since_ms: int, *, recount: bool = False,
                  timeout_s: float = 0, alive=lambda: True, poll_s: float = 0.2) -> bool:
    """Block until every shard is done or failed (see progress.py); False on timeout."""
    waiting = set(shards)

    def finished() -> bool:
        rows = ledger_progress(store, dataset, version)
        waiting.difference_update({s for s in waiting if finished_since(rows.get(s, {}), since_ms, recount)})
        return not waiting

    return wait_until(finished, timeout_s=timeout_s, alive=alive, poll_s=poll_s)


def embedded_tagger(config: TaggingConfig, store: CountStore, bus: Bus, stages: Collection[str], vocabulary: Vocabulary | None):
    """The tagger this process must run itself, or None: only the in-process bus needs one (on Kafka
    the tagger service consumes the events), and only when a shard asks for the image stage."""
    if not (bus.process_local and IMAGE in stages):
        return None
    from conceptfreq.tagger.main import build_tagger

    return build_tagger(config, store, Retrier(stage=IMAGE), vocabulary)


def run_embedded(bus: Bus, store: CountStore, topics: Topics, summary: Announced, *, parsers: int = 1, timeout_s: float = 0,
                 tagger=None) -> bool:
    """Run parser(s), the tagger (if given) and the counter in threads of this process until the
    published shards are finished."""
    from conceptfreq.counter.main import counter_loop
    from conceptfreq.parser.main import parser_loop
    from conceptfreq.pipeline.vocabularies import Vocabularies
    from conceptfreq.tagger.main import tagger_loop

    stop = threading.Event()
    vocabularies = Vocabularies(store)
    loops = [parser_loop(bus, store, topics, Retrier(stop, stage=TEXT), vocabularies=vocabularies) for _ in range(max(1, parsers))]
    if tagger is not None:
        loops.append(tagger_loop(bus, store, topics, Retrier(stop, stage=IMAGE), tagger))
    loops.append(counter_loop(bus, store, topics, Retrier(stop, stage=COUNTED), batch_s=0.1))
    threads = [threading.Thread(target=loop.run, name=f"embedded-{i}", daemon=True) for i, loop in enumerate(loops)]
    for thread in threads:
        thread.start()
    try:
        return wait_finished(store, summary.dataset, summary.vocabulary_version, summary.published, summary.started_ms,
                             recount=summary.forced, timeout_s=timeout_s, alive=lambda: all(t.is_alive() for t in threads))
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def follow(bus: Bus, store: CountStore, topics: Topics, summary: Announced, run: RunConfig, tagger=None) -> bool:
    """After publishing: run the services here (in-process bus), or wait for the cluster's if asked."""
    if bus.process_local:
        return run_embedded(bus, store, topics, summary, parsers=run.parsers, timeout_s=run.timeout_s, tagger=tagger)
    if run.wait:
        return wait_finished(store, summary.dataset, summary.vocabulary_version, summary.published, summary.started_ms,
                             recount=summary.forced, timeout_s=run.timeout_s, poll_s=1.0)
    return True


def outcome(store: CountStore, summary: Announced) -> dict:
    """{done, samples, failed} of the published shards, from the ledger."""
    rows = ledger_progress(store, summary.dataset, summary.vocabulary_version)
    progress = {shard: shard_progress(rows.get(shard, {})) for shard in summary.published}
    return {"done": sum(p.state == DONE for p in progress.values()), "samples": sum(p.samples for p in progress.values()),
            "failed": [{"shard": s, "reason": p.reason} for s, p in sorted(progress.items()) if p.state == FAILED]}
