"""`conceptfreq count`: the text stage over many shards on one machine.

Worker processes parse shards; the parent alone writes to the store, because an embedded chDB
directory can be opened by one process only, and one writer keeps the ledger order simple."""

from __future__ import annotations

import logging
import multiprocessing
import sys
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from tqdm import tqdm

from conceptfreq.adapters.shards import ShardError
from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import DONE, TEXT, ShardResult
from conceptfreq.core.vocabulary import Vocabulary
from conceptfreq.errors import UnavailableError
from conceptfreq.parser.stage import ParseShard

log = logging.getLogger(__name__)


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


# Worker-process state: the matcher is built once per process, not once per shard.
_stage: ParseShard | None = None


def _init_worker(vocabulary: Vocabulary, method: str, caption_column: str) -> None:
    global _stage
    _stage = ParseShard(vocabulary, method, caption_column)


def _parse(task: tuple[str, str]) -> tuple[str, ShardResult | None, str]:
    dataset, shard = task
    try:
        return shard, _stage.run(dataset, shard), ""
    except (ShardError, UnavailableError) as error:  # unavailable: a later `count --skip-done` retries it
        return shard, None, getattr(error, "reason", None) or str(error)
    except Exception as error:  # noqa: BLE001 - one bad shard must not end the run; the reason is kept
        log.exception("unexpected error parsing %s", shard)
        return shard, None, f"internal error: {type(error).__name__}: {error}"


def _results(tasks: list[tuple[str, str]], workers: int, init_args: tuple) -> Iterator[tuple[str, ShardResult | None, str]]:
    if workers <= 1:
        _init_worker(*init_args)
        yield from map(_parse, tasks)
        return
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=init_args) as pool:
        yield from pool.imap_unordered(_parse, tasks)


def count_shards(store: CountStore, dataset: str, shards: Sequence[str], vocabulary: Vocabulary, *, method: str = "phrase",
                 workers: int = 1, caption_column: str = "caption", skip_done: bool = False, progress: bool = True) -> CountSummary:
    summary = CountSummary(shards=len(shards))
    store.save_vocabulary(vocabulary)
    if skip_done:
        done = {s.shard for s in store.shard_states(dataset, vocabulary.version) if s.stage == TEXT and s.state == DONE}
        summary.already_done = sum(shard in done for shard in shards)
        shards = [s for s in shards if s not in done]
    store.announce(dataset, vocabulary.version, shards)
    started = time.monotonic()
    bar = tqdm(total=len(shards), unit="shard", disable=not progress, dynamic_ncols=True, desc=f"count {dataset}")
    with bar:
        for shard, result, error in _results([(dataset, s) for s in shards], workers, (vocabulary, method, caption_column)):
            if result is None:
                store.fail_shard(dataset, vocabulary.version, shard, TEXT, error)
                summary.failures.append((shard, error))
                bar.write(f"failed: {shard}: {error}", file=sys.stderr)
            else:
                store.write_shard(result)
                summary.add(result)
            summary.seconds = time.monotonic() - started
            bar.set_postfix_str(f"{summary.samples:,} samples, {summary.rate:,.0f} samples/s, {len(summary.failures)} failed")
            bar.update()
    summary.seconds = time.monotonic() - started
    return summary
