"""The counter's `matched` combiner: once a shard's text and image stages are both done, per-sample
intersections of caption hits and image hits (matched counts) and the misaligned samples, for every
tagging rule the image attempt carries (so rules switched by `retag` keep their matched counts).

It reads exactly the attempts the counter hands it, not "the latest", so what it writes is what the
shard is then marked counted from; writing again (a redelivered result) replaces, never adds.
"""

from __future__ import annotations

import logging

from conceptfreq.adapters.store import CountStore
from conceptfreq.core.counting import IMAGE, TEXT
from conceptfreq.core.tagging import match_samples
from conceptfreq.tagger.records import image_attempt, image_keys, read_image_hits, read_text_hits, write_matched

log = logging.getLogger(__name__)


class MatchedCounts:
    needs = frozenset({TEXT, IMAGE})

    def run(self, store: CountStore, dataset: str, vocabulary_version: str, shard: str, attempts: dict[str, str]) -> None:
        image = image_attempt(store, dataset, vocabulary_version, shard, attempts[IMAGE])
        if image is None:
            # Every image attempt writes its metadata before its ledger row, so this is an image stage
            # from elsewhere (e.g. imported counts): nothing to intersect.
            log.warning("%s: image attempt %s has no tagging metadata; no matched counts", shard, attempts[IMAGE])
            return
        text = read_text_hits(store, dataset, vocabulary_version, shard, attempts[TEXT])
        hits = read_image_hits(store, dataset, vocabulary_version, shard, image.attempt_id)
        keys = image_keys(store, dataset, vocabulary_version, shard, image.scores_attempt)
        write_matched(store, dataset, vocabulary_version, shard,
                      [match_samples(rule, keys, text, hits.get(rule, {})) for rule in image.rules])
