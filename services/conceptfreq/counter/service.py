"""The counter's bus handler: StageResults in; shards counted (pipeline/counting.py) in batches.

A StageResult only names a shard to look at again; what is counted comes from the ledger, so stale,
duplicated or reordered results change nothing."""

from __future__ import annotations

from conceptfreq.adapters.bus import Message
from conceptfreq.adapters.bus.events import read_stage_result
from conceptfreq.adapters.store import CountStore
from conceptfreq.pipeline.counting import Combiner, Counting
from conceptfreq.pipeline.progress import COUNTED


class CountStageResults:
    stage = COUNTED

    def __init__(self, store: CountStore, combiners: dict[str, Combiner] | None = None, prune_every: int = 100):
        self.counting = Counting(store, combiners, prune_every)
        # (dataset, vocabulary) -> {shard: announced_at_ms}: what the next flush looks at.
        self._touched: dict[tuple[str, str], dict[str, int]] = {}

    def handle(self, message: Message) -> None:
        result = read_stage_result(message.value)
        shards = self._touched.setdefault((result.dataset, result.vocabulary_version), {})
        shards[result.shard_url] = max(shards.get(result.shard_url, 0), result.announced_at_ms)

    def give_up(self, message: Message, error: BaseException) -> tuple[str, str]:
        return "", ""  # a StageResult we cannot read names no shard we could mark

    def flush(self) -> None:
        for key in list(self._touched):
            self.counting.count(*key, self._touched[key])
            del self._touched[key]  # only now: a transient failure above retries the whole batch
