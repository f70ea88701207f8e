"""Tag one shard: read its images, decode them in workers, embed them in batches, score them
against every concept, keep each image's top-k, and apply the tagging rules.

The same class serves the bus-driven tagger service and the gRPC TagImages call (`tag_images`),
so both tag alike. Decoding runs ahead of encoding in the pool's window, so on a GPU host the
backend is fed while the next batch is decoded.

Three paths from bytes to scores (`choose_path`): on the CPU, the pool's float32 pixels to
`encode_images` and core's `top_scores` (unchanged, and Triton's path too, with batches in
flight); on CUDA, either nvJPEG decoding on the device (`--image-decoder auto`) or the pool's uint8
pixels through pinned buffers (`pil`), both scored on the device so only the top-k comes back.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from conceptfreq.adapters.images import DEFAULT_MAX_PIXELS, IMAGE_DECODERS, DecodePool, FastPreprocess, ImageDecoder, normalize_uint8
from conceptfreq.adapters.shards import read_shard
from conceptfreq.core.prompts import Prompts, make_prompts
from conceptfreq.core.tagging import DEFAULT_TOP_K, ImageShardResult, Rule, TopScores, tag_shard, top_scores
from conceptfreq.core.vocabulary import Vocabulary
from conceptfreq.errors import UserError


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
    # auto: torchvision (nvJPEG) when the in-process model is on CUDA, else Pillow in the pool;
    # pil: always the pool; torchvision: decode on the in-process model's device (CPU too, for tests).
    decoder: str = "auto"


@dataclass
class Timings:
    """Where a shard's time went (seconds); the benchmark reports the decode share."""

    read_decode_wait: float = 0.0   # waiting on the reader and the decode pool
    encode: float = 0.0
    score: float = 0.0
    images: int = 0


def _waited_for(items: Iterable, timings: Timings) -> Iterable:
    """`items`, with the time spent waiting for each one (not the time spent on it after it came)
    added to timings.read_decode_wait."""
    waited = time.perf_counter()
    for item in items:
        timings.read_decode_wait += time.perf_counter() - waited
        yield item
        waited = time.perf_counter()
    timings.read_decode_wait += time.perf_counter() - waited


# How pixels travel from the decoder to the scores (choose_path):
# - host: the pool's pixels to backend.encode_images, scored on the host by core's top_scores
#   (the CPU default, unchanged; Triton too, with batches in flight);
# - pinned: the pool's uint8 pixels through pinned buffers to the model's CUDA device, scored there;
# - device: raw bytes decoded, resized and scored on the model's device (adapters/images_device.py).
PATHS = ("host", "pinned", "device")


def choose_path(backend, decoder: str) -> str:
    if decoder not in IMAGE_DECODERS:
        raise UserError(f"unknown image decoder {decoder!r}: choose one of {', '.join(IMAGE_DECODERS)}")
    in_process = getattr(backend, "scheme", "") == "torch" and hasattr(backend, "loaded")
    cuda = in_process and str(backend.device).startswith("cuda")
    if decoder == "torchvision":
        if not in_process:
            raise UserError("--image-decoder torchvision decodes on the in-process model's device: use it with torch://")
        return "device"
    if decoder == "pil" or not cuda:
        return "pinned" if cuda else "host"
    from conceptfreq.adapters.images_device import RESIZE_MODES, torchvision_decodes_on

    resize_ok = (backend.loaded.preprocess_cfg.get("resize_mode") or "shortest") in RESIZE_MODES
    return "device" if resize_ok and torchvision_decodes_on(backend.device) else "pinned"


class TagImages:
    """Decoded pixels in, stored scores out: batches to the backend, then every concept is scored."""

    def __init__(self, backend, *, top_k: int = DEFAULT_TOP_K, batch_size: int | None = None, decode: DecodeOptions | None = None):
        self.backend = backend
        self.top_k = int(top_k)
        self.batch_size = int(batch_size or backend.max_batch_size)
        self.decode = decode or DecodeOptions()
        self.path = choose_path(backend, self.decode.decoder)
        # uint8 where the receiver normalizes: the model's device, or a Triton model with uint8 input.
        uint8 = self.path != "host" or getattr(backend, "input_format", "float32") == "uint8"
        size = tuple(backend.image_size)
        preprocess = FastPreprocess.wrap(backend.preprocess)
        self.decoder = ImageDecoder(preprocess, max_pixels=self.decode.max_pixels,
                                    draft_size=(size[1], size[0]) if self.decode.draft else None,
                                    pixel_format="uint8" if uint8 else "float32")
        # Enough chunks in flight to fill the next batch while this one is encoded.
        window = -(-self.batch_size // self.decode.chunk) + max(1, self.decode.workers)
        self.pool = DecodePool(self.decoder, workers=self.decode.workers, executor=self.decode.executor,
                               chunk=self.decode.chunk, window=window)
        self.device_decoder = None
        if self.path == "device":
            from conceptfreq.adapters.images_device import DeviceDecoder

            # The fallback decodes at full size (no draft), as the device decoder does.
            fallback = ImageDecoder(preprocess, max_pixels=self.decode.max_pixels, pixel_format="uint8")
            self.device_decoder = DeviceDecoder(backend.loaded.preprocess_cfg, backend.device, fallback,
                                                max_pixels=self.decode.max_pixels)
        # Triton: several batches on the wire at once, so the server never waits for the client.
        self.in_flight = max(1, int(getattr(backend, "in_flight", 1))) if getattr(backend, "scheme", "") == "triton" else 0
        self._encoder = ThreadPoolExecutor(self.in_flight, thread_name_prefix="encode") if self.in_flight else None
        self._scorers: dict[tuple[str, int], object] = {}

    def _scorer(self, index: ConceptIndex, k: int):
        from conceptfreq.adapters.inference.device_scoring import DeviceScorer

        key = (index.vocabulary_version, k)
        if key not in self._scorers:
            self._scorers[key] = DeviceScorer(self.backend, index.embeddings, index.concept_ids, k=k, batch_size=self.batch_size)
        return self._scorers[key]

    def _host_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """What backend.encode_images takes: uint8 pixels stay uint8 for a uint8 Triton model."""
        if pixels.dtype == np.uint8 and getattr(self.backend, "input_format", "float32") != "uint8":
            cfg = getattr(self.backend.preprocess, "cfg", None) or self.backend.loaded.preprocess_cfg
            return normalize_uint8(pixels, cfg["mean"], cfg["std"])
        return pixels

    def score(self, pixels: np.ndarray, index: ConceptIndex, k: int | None = None) -> TopScores:
        k = k or self.top_k
        if self.path != "host" and pixels.dtype == np.uint8:
            scorer = self._scorer(index, k)
            for start in range(0, len(pixels), self.batch_size):
                scorer.submit_host(pixels[start:start + self.batch_size])
            return TopScores.concat(scorer.drain(), k=min(k, len(index.concept_ids)), logit_scale=scorer.logit_scale,
                                    vocabulary_size=len(index.concept_ids))
        embeddings = self.backend.encode_images(self._host_pixels(pixels))
        return top_scores(embeddings, index.embeddings, index.concept_ids, logit_scale=self.backend.logit_scale, k=k)

    def run(self, images: Iterable[tuple[str, bytes | None]], index: ConceptIndex, timings: Timings | None = None
            ) -> tuple[list[str], TopScores, Counter, Counter, int]:
        """(keys of decoded images, their scores, skip reasons, notes, samples seen) over (key, bytes)."""
        timings = timings if timings is not None else Timings()
        if self.path == "device":
            return self._run_on_device(images, index, timings)
        keys_seen: list[str] = []
        skipped: Counter = Counter()
        notes: Counter = Counter()

        def image_bytes():
            for key, data in images:
                keys_seen.append(key)
                yield data

        height, width = self.backend.image_size
        shape = (self.batch_size, height, width, 3) if self.decoder.pixel_format == "uint8" else (self.batch_size, 3, height, width)
        batch = np.empty(shape, np.uint8 if self.decoder.pixel_format == "uint8" else np.float32)
        batch_keys: list[str] = []
        keys: list[str] = []
        parts: list[TopScores] = []
        pending: deque = deque()
        scorer = self._scorer(index, self.top_k) if self.path == "pinned" else None

        def encode_and_score(pixels: np.ndarray) -> tuple[TopScores, float, float]:
            started = time.perf_counter()
            embeddings = self.backend.encode_images(self._host_pixels(pixels))
            encoded = time.perf_counter()
            top = top_scores(embeddings, index.embeddings, index.concept_ids, logit_scale=self.backend.logit_scale, k=self.top_k)
            return top, encoded - started, time.perf_counter() - encoded

        def collect(result: tuple[TopScores, float, float]) -> None:
            top, encode_s, score_s = result
            parts.append(top)
            timings.encode += encode_s
            timings.score += score_s

        def flush() -> None:
            keys.extend(batch_keys)
            n = len(batch_keys)
            batch_keys.clear()
            if scorer is not None:
                started = time.perf_counter()
                scorer.submit_host(batch[:n])
                parts.extend(scorer.finished())
                timings.encode += time.perf_counter() - started
            elif self._encoder is not None:
                pending.append(self._encoder.submit(encode_and_score, batch[:n].copy()))
                while len(pending) > self.in_flight:
                    collect(pending.popleft().result())
            else:
                collect(encode_and_score(batch[:n]))

        for position, decoded in enumerate(_waited_for(self.pool.map(image_bytes()), timings)):
            if decoded.skipped:
                skipped[decoded.skipped] += 1
            else:
                notes.update([decoded.note] if decoded.note else [])
                batch[len(batch_keys)] = decoded.pixels
                batch_keys.append(keys_seen[position])
                if len(batch_keys) == self.batch_size:
                    flush()
        if batch_keys:
            flush()
        while pending:
            collect(pending.popleft().result())
        if scorer is not None:
            started = time.perf_counter()
            parts.extend(scorer.drain())
            timings.encode += time.perf_counter() - started
        timings.images += len(keys)
        return keys, self._concat(parts, index), skipped, notes, len(keys_seen)

    def _run_on_device(self, images: Iterable[tuple[str, bytes | None]], index: ConceptIndex, timings: Timings):
        """Raw bytes in batches to the device decoder, its pixels straight to the device scorer."""
        scorer = self._scorer(index, self.top_k)
        skipped: Counter = Counter()
        notes: Counter = Counter()
        keys: list[str] = []
        parts: list[TopScores] = []
        seen = 0
        batch_keys: list[str] = []
        batch_data: list[bytes | None] = []

        def flush() -> None:
            started = time.perf_counter()
            decoded = self.device_decoder.decode(batch_data)
            decoded_at = time.perf_counter()
            for key, status in zip(batch_keys, decoded.statuses):
                if status.skipped:
                    skipped[status.skipped] += 1
                else:
                    keys.append(key)
                    if status.note:
                        notes[status.note] += 1
            scorer.submit_device(decoded.pixels)
            parts.extend(scorer.finished())
            timings.read_decode_wait += decoded_at - started
            timings.encode += time.perf_counter() - decoded_at
            batch_keys.clear()
            batch_data.clear()

        for key, data in _waited_for(images, timings):
            seen += 1
            batch_keys.append(key)
            batch_data.append(data)
            if len(batch_keys) == self.batch_size:
                flush()
        if batch_keys:
            flush()
        started = time.perf_counter()
        parts.extend(scorer.drain())
        timings.encode += time.perf_counter() - started
        timings.images += len(keys)
        return keys, self._concat(parts, index), skipped, notes, seen

    def _concat(self, parts: list[TopScores], index: ConceptIndex) -> TopScores:
        return TopScores.concat(parts, k=min(self.top_k, len(index.concept_ids)), logit_scale=self.backend.logit_scale,
                                vocabulary_size=len(index.concept_ids))

    def close(self) -> None:
        self.pool.close()
        if self._encoder is not None:
            self._encoder.shutdown(wait=True)
            self._encoder = None
        self._scorers.clear()


class TagShard:
    """One shard's image stage: a stage class with one `run`, like parser.stage.ParseShard."""

    def __init__(self, images: TagImages, caption_column: str = ""):
        self.images = images
        self.caption_column = caption_column or None

    def run(self, dataset: str, shard_url: str, index: ConceptIndex, rules: Sequence[Rule], *, format: str | None = None,
            timings: Timings | None = None) -> ImageShardResult:
        """Raises adapters.shards.ShardError when the shard cannot be read (partial results are
        dropped), UnavailableError when the inference backend is down (the caller retries)."""
        samples = read_shard(shard_url, format=format or None, caption_column=self.caption_column, with_images=True)
        keys, top, skipped, notes, seen = self.images.run(((s.key, s.image) for s in samples), index, timings)
        return tag_shard(dataset=dataset, vocabulary_version=index.vocabulary_version, shard=shard_url, keys=keys, top=top,
                         rules=rules, samples=seen, skipped=skipped, notes=notes, model_id=self.images.backend.model_id)
