"""Tag one shard: read its images, decode them in workers, embed them in batches, score them
against every concept, keep each image's top-k, and apply the tagging rules.

The same class serves the bus-driven tagger service and the gRPC TagImages call (`tag_images`),
so both tag alike. Decoding runs ahead of encoding in the pool's window, so on a GPU host the
backend is fed while the next batch is decoded.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from conceptfreq.adapters.images import DEFAULT_MAX_PIXELS, DecodePool, FastPreprocess, ImageDecoder
from conceptfreq.adapters.shards import read_shard
from conceptfreq.core.prompts import Prompts, make_prompts
from conceptfreq.core.tagging import DEFAULT_TOP_K, ImageShardResult, Rule, TopScores, tag_shard, top_scores
from conceptfreq.core.vocabulary import Vocabulary


@dataclass(frozen=True)
class ConceptIndex:
    """The vocabulary's concept embeddings (prompt ensembles, L2-normalized), row i is concept_ids[i]."""

    vocabulary_version: str
    concept_ids: np.ndarray   # (m,) uint32
    names: tuple[str, ...]
    embeddings: np.ndarray    # (m, d) float32

    def name_of(self) -> dict[int, str]:
        return dict(zip(self.concept_ids.tolist(), self.names))


class ConceptIndexes:
    """Concept embeddings per vocabulary for one backend, computed once: on disk by the inference
    adapter's cache (keyed by model, precision, vocabulary version and templates), in memory here."""

    def __init__(self, backend, prompts: Prompts | None = None, cache_dir: str | None = None):
        self.backend = backend
        self.prompts = prompts or make_prompts("ensemble")
        self.cache_dir = cache_dir
        self._built: dict[str, ConceptIndex] = {}
        self._lock = threading.Lock()

    def get(self, vocabulary: Vocabulary) -> ConceptIndex:
        from conceptfreq.adapters.inference.embeddings import text_embeddings

        with self._lock:
            if vocabulary.version not in self._built:
                concepts = list(vocabulary)
                names = tuple(c.name for c in concepts)
                embeddings = text_embeddings(self.backend, names, self.prompts, names_key=vocabulary.version, cache_dir=self.cache_dir)
                self._built[vocabulary.version] = ConceptIndex(vocabulary.version, np.array([c.id for c in concepts], np.uint32),
                                                               names, embeddings)
            return self._built[vocabulary.version]


@dataclass
class DecodeOptions:
    workers: int = 4
    executor: str = "thread"
    chunk: int = 16
    max_pixels: int = DEFAULT_MAX_PIXELS
    draft: bool = True


@dataclass
class Timings:
    """Where a shard's time went (seconds); the benchmark reports the decode share."""

    read_decode_wait: float = 0.0   # waiting on the reader and the decode pool
    encode: float = 0.0
    score: float = 0.0
    images: int = 0


class TagImages:
    """Decoded pixels in, stored scores out: batches to the backend, then every concept is scored."""

    def __init__(self, backend, *, top_k: int = DEFAULT_TOP_K, batch_size: int | None = None, decode: DecodeOptions | None = None):
        self.backend = backend
        self.top_k = int(top_k)
        self.batch_size = int(batch_size or backend.max_batch_size)
        self.decode = decode or DecodeOptions()
        size = tuple(backend.image_size)
        self.decoder = ImageDecoder(FastPreprocess.wrap(backend.preprocess), max_pixels=self.decode.max_pixels,
                                    draft_size=(size[1], size[0]) if self.decode.draft else None)
        # Enough chunks in flight to fill the next batch while this one is encoded.
        window = -(-self.batch_size // self.decode.chunk) + max(1, self.decode.workers)
        self.pool = DecodePool(self.decoder, workers=self.decode.workers, executor=self.decode.executor,
                               chunk=self.decode.chunk, window=window)

    def score(self, pixels: np.ndarray, index: ConceptIndex, k: int | None = None) -> TopScores:
        embeddings = self.backend.encode_images(pixels)
        return top_scores(embeddings, index.embeddings, index.concept_ids, logit_scale=self.backend.logit_scale, k=k or self.top_k)

    def run(self, images: Iterable[tuple[str, bytes | None]], index: ConceptIndex, timings: Timings | None = None
            ) -> tuple[list[str], TopScores, Counter, Counter, int]:
        """(keys of decoded images, their scores, skip reasons, notes, samples seen) over (key, bytes)."""
        timings = timings if timings is not None else Timings()
        keys_seen: list[str] = []
        skipped: Counter = Counter()
        notes: Counter = Counter()

        def image_bytes():
            for key, data in images:
                keys_seen.append(key)
                yield data

        height, width = self.backend.image_size
        batch = np.empty((self.batch_size, 3, height, width), np.float32)
        batch_keys: list[str] = []
        keys: list[str] = []
        parts: list[TopScores] = []

        def flush() -> None:
            started = time.perf_counter()
            embeddings = self.backend.encode_images(batch[:len(batch_keys)])
            encoded = time.perf_counter()
            parts.append(top_scores(embeddings, index.embeddings, index.concept_ids, logit_scale=self.backend.logit_scale, k=self.top_k))
            timings.encode += encoded - started
            timings.score += time.perf_counter() - encoded
            keys.extend(batch_keys)
            batch_keys.clear()

        waited = time.perf_counter()
        for position, decoded in enumerate(self.pool.map(image_bytes())):
            timings.read_decode_wait += time.perf_counter() - waited
            if decoded.skipped:
                skipped[decoded.skipped] += 1
            else:
                notes.update([decoded.note] if decoded.note else [])
                batch[len(batch_keys)] = decoded.pixels
                batch_keys.append(keys_seen[position])
                if len(batch_keys) == self.batch_size:
                    flush()
            waited = time.perf_counter()
        timings.read_decode_wait += time.perf_counter() - waited
        if batch_keys:
            flush()
        timings.images += len(keys)
        top = TopScores.concat(parts, k=min(self.top_k, len(index.concept_ids)), logit_scale=self.backend.logit_scale,
                               vocabulary_size=len(index.concept_ids))
        return keys, top, skipped, notes, len(keys_seen)

    def close(self) -> None:
        self.pool.close()


class TagShard:
    """One shard's image stage: a stage class with one `run`, like parser.stage.ParseShard."""

    def __init__(self, images: TagImages, caption_column: str = "caption"):
        self.images = images
        self.caption_column = caption_column

    def run(self, dataset: str, shard_url: str, index: ConceptIndex, rules: Sequence[Rule], *, format: str | None = None,
            timings: Timings | None = None) -> ImageShardResult:
        """Raises adapters.shards.ShardError when the shard cannot be read (partial results are
        dropped), UnavailableError when the inference backend is down (the caller retries)."""
        samples = read_shard(shard_url, format=format or None, caption_column=self.caption_column, with_images=True)
        keys, top, skipped, notes, seen = self.images.run(((s.key, s.image) for s in samples), index, timings)
        return tag_shard(dataset=dataset, vocabulary_version=index.vocabulary_version, shard=shard_url, keys=keys, top=top,
                         rules=rules, samples=seen, skipped=skipped, notes=notes, model_id=self.images.backend.model_id)
