"""Parse one shard: read its captions and find the vocabulary's concepts in them.

The same class runs inside `conceptfreq count` worker processes and inside the parser service, so
a local run and the Kafka pipeline produce identical rows."""

from __future__ import annotations

from conceptfreq.adapters.shards import read_caption_batches
from conceptfreq.core.counting import ShardResult, count_caption_batches
from conceptfreq.adapters.matcher_cache import cached_matcher
from conceptfreq.core.matching import DEFAULT_METHOD
from conceptfreq.core.vocabulary import Vocabulary


class ParseShard:
    def __init__(self, vocabulary: Vocabulary, method: str = DEFAULT_METHOD, caption_column: str = "", captions_from: str = "shard"):
        self.vocabulary = vocabulary
        self.matcher = cached_matcher(vocabulary, method)
        self.caption_column = caption_column or None  # none given: the reader takes the first of the usual names
        self.captions_from = captions_from or "shard"

    def run(self, dataset: str, shard_url: str, format: str | None = None) -> ShardResult:
        """Raises adapters.shards.ShardError when the shard cannot be read; partial results are dropped."""
        batches = read_caption_batches(shard_url, format=format or None, caption_column=self.caption_column,
                                       captions_from=self.captions_from)
        result = count_caption_batches(batches, self.matcher, dataset=dataset, vocabulary_version=self.vocabulary.version, shard=shard_url)
        result.captions_from = self.captions_from
        return result
