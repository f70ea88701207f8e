"""Re-threshold a dataset's image hits from the stored top-k scores: no model, no shard reads.

For every shard with a visible image attempt, the stored scores are read back, every recorded rule
plus the new one is applied to them (core.tagging.tag_shard, as the tagger does), and the result is
written as a new image attempt that points at the same scores (adapters/store/images.py). So:
- `retag` gives exactly the hits a tagger re-run under the new rule would (same scores, same code);
- the old rules' counts stay queryable: every attempt carries every recorded rule;
- it is safe to interrupt and repeat: shards that already carry the rule are skipped, and the rule
  becomes the active one (what queries show by default) only once every shard carries it.
Matched counts and totals are then brought up to date by the counter's own code (pipeline/counting.py),
run in process (`recount`), so there is one way they are computed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from conceptfreq.adapters.store import CountStore, ImageAttempt
from conceptfreq.core.tagging import Rule, tag_shard
from conceptfreq.pipeline.counting import Counting

log = logging.getLogger(__name__)

# (store, dataset, vocabulary version, shards whose image attempt changed) -> None
Recount = Callable[[CountStore, str, str, Sequence[str]], None]


@dataclass
class RetagReport:
    dataset: str
    vocabulary_version: str
    rule: str
    previous: str | None
    shards: int = 0             # shards with a visible image attempt
    retagged: int = 0           # of those, rewritten now (the rest already carried the rule)
    images: int = 0             # images of the rewritten shards
    hits: int = 0               # of those, images with at least one hit under the rule
    truncated: int = 0          # of those, images that may have hits beyond their stored top-k
    inexact_k: list[int] = field(default_factory=list)  # stored k values the rule is not exact within
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("dataset", "vocabulary_version", "rule", "previous", "shards", "retagged", "images",
                                              "hits", "truncated", "inexact_k", "seconds")}


def counter_recount(store: CountStore, dataset: str, vocabulary_version: str, shards: Sequence[str]) -> None:
    """Count the shards as the counter does when their image stage reports: matched counts anew,
    the totals refreshed, the shards marked counted."""
    Counting(store).count(dataset, vocabulary_version, shards)


class Retag:
    def __init__(self, store: CountStore, dataset: str, vocabulary_version: str, rule: Rule, *,
                 recount: Recount | None = counter_recount):
        self.store = store
        self.dataset = dataset
        self.vocabulary_version = vocabulary_version
        self.rule = rule
        self.recount = recount

    def run(self) -> RetagReport:
        started = time.perf_counter()
        recorded = self.store.recorded_rules(self.dataset, self.vocabulary_version)
        report = RetagReport(self.dataset, self.vocabulary_version, str(self.rule), str(recorded[0]) if recorded else None)
        # The new rule first (it will be the active one), then every other rule still recorded.
        rules = [self.rule] + [r for r in recorded if r != self.rule]
        changed: list[str] = []
        attempts = self.store.visible_image_attempts(self.dataset, self.vocabulary_version)
        changed += self._retag(attempts, rules, report)
        self.store.record_rule(self.dataset, self.vocabulary_version, self.rule)
        # Shards the tagger wrote while we ran, before the rule was recorded, lack it: one more pass.
        late = self.store.visible_image_attempts(self.dataset, self.vocabulary_version)
        changed += self._retag({s: a for s, a in late.items() if str(self.rule) not in a.rules}, rules, report)
        report.shards = len(late)
        if changed and self.recount is not None:
            self.recount(self.store, self.dataset, self.vocabulary_version, sorted(set(changed)))
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def _retag(self, attempts: dict[str, ImageAttempt], rules: list[Rule], report: RetagReport) -> list[str]:
        changed = []
        for shard, attempt in sorted(attempts.items()):
            if not self.rule.exact_within(attempt.top_k) and attempt.top_k not in report.inexact_k:
                report.inexact_k.append(attempt.top_k)
            if str(self.rule) in attempt.rules:
                continue  # already there (an earlier, interrupted retag, or the tagger): its counts stand
            keys, top = self.store.read_scores(self.dataset, self.vocabulary_version, attempt)
            notes = {k: v for k, v in attempt.notes.items() if k != "truncated"}  # the new active rule's, below
            result = tag_shard(dataset=self.dataset, vocabulary_version=self.vocabulary_version, shard=shard, keys=keys, top=top,
                               rules=rules, samples=attempt.samples, skipped=attempt.skipped, notes=notes,
                               model_id=attempt.model_id, scores_attempt=attempt.scores_attempt)
            self.store.write_image_shard(result)
            active = result.rules[str(self.rule)]
            report.retagged += 1
            report.images += len(keys)
            report.hits += len(active.hits)
            report.truncated += active.truncated
            changed.append(shard)
        return changed
