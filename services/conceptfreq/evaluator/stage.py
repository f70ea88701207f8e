"""The evaluation stages: what one evaluator does with one eval shard, and with a retrieval set.

`ClassifyShard.run(evalset, shard)` reads the shard's samples, decodes and preprocesses images in
worker threads (PIL and torchvision release the GIL for most of it), encodes them in batches, and
counts top-1/top-5 hits per class. Batches never cross a shard boundary, so a shard gives the same
counts whether it runs in `conceptfreq evaluate` or in an evaluator pod.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from conceptfreq.adapters.images import FastPreprocess, ImageDecoder
from conceptfreq.core.evaluation import ClassTally, tally, top_k
from conceptfreq.adapters.shards import EvalSample, EvalSet

log = logging.getLogger(__name__)


class Preparer:
    """Decode + preprocess in threads (the tagger's ImageDecoder, so a bad image is skipped for the
    same reason everywhere): bytes in, (pixels or None, skip reason or None) out. JPEG draft mode
    stays off: evaluation keeps exact parity with open_clip's own loader. FastPreprocess gives
    open_clip's values without calling into torch from the decode threads (see its docstring)."""

    def __init__(self, preprocess: Callable, workers: int = 2):
        self.decoder = ImageDecoder(FastPreprocess.wrap(preprocess), draft_size=None)
        self.pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="decode") if workers > 1 else None

    def _one(self, data: bytes | None) -> tuple[np.ndarray | None, str | None]:
        decoded = self.decoder(data)
        return decoded.pixels, decoded.skipped

    def __call__(self, images: Sequence[bytes | None]) -> list[tuple[np.ndarray | None, str | None]]:
        return list(self.pool.map(self._one, images)) if self.pool else [self._one(i) for i in images]

    def close(self) -> None:
        if self.pool:
            self.pool.shutdown(wait=False)


def batches(samples: Iterable[EvalSample], size: int) -> Iterable[list[EvalSample]]:
    batch: list[EvalSample] = []
    for sample in samples:
        batch.append(sample)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class ClassifyShard:
    def __init__(self, backend, class_embeddings: np.ndarray, label_index: Callable[[object], int | None], *,
                 batch_size: int | None = None, workers: int = 2):
        self.backend = backend
        self.class_embeddings = np.asarray(class_embeddings, np.float32)
        self.label_index = label_index
        self.batch_size = int(batch_size or backend.max_batch_size)
        self.prepare = Preparer(backend.preprocess, workers)

    def run(self, evalset: EvalSet, shard: str, progress: Callable[[int], None] | None = None) -> ClassTally:
        n_classes = len(self.class_embeddings)
        result = ClassTally.zeros(n_classes)
        for batch in batches(evalset.read(shard), self.batch_size):
            labels, images = [], []
            for sample in batch:
                index = self.label_index(sample.label)
                if sample.problem:
                    result.skip(sample.problem)
                elif sample.label is None:
                    result.skip("no_label")
                elif index is None:
                    result.skip("unknown_label")
                else:
                    labels.append(index)
                    images.append(sample.image)
            kept, pixels = [], []
            for label, (array, reason) in zip(labels, self.prepare(images)):
                if array is None:
                    result.skip(reason)
                else:
                    kept.append(label)
                    pixels.append(array)
            if pixels:
                embeddings = self.backend.encode_images(np.stack(pixels))
                result += tally(kept, top_k(embeddings, self.class_embeddings), n_classes)
            if progress:
                progress(len(batch))
        return result

    def close(self) -> None:
        self.prepare.close()


@dataclass
class RetrievalData:
    """Everything retrieval ranks over: one row per image, captions flattened with their image."""

    image_embeddings: np.ndarray
    text_embeddings: np.ndarray
    caption_image: np.ndarray       # caption -> its image's row
    captions: list[str]
    image_keys: list[str]
    skipped: dict[str, int]


def encode_retrieval_set(backend, evalset: EvalSet, *, batch_size: int | None = None, workers: int = 2,
                         progress: Callable[[int], None] | None = None) -> RetrievalData:
    prepare = Preparer(backend.preprocess, workers)
    size = int(batch_size or backend.max_batch_size)
    image_parts, keys, captions, owners = [], [], [], []
    skipped: dict[str, int] = {}
    try:
        for shard in evalset.shards():
            for batch in batches(evalset.read(shard), size):
                usable = []
                for sample in batch:
                    reason = sample.problem or (None if sample.captions else "no_caption")
                    if reason:
                        skipped[reason] = skipped.get(reason, 0) + 1
                    else:
                        usable.append(sample)
                pixels = []
                for sample, (array, reason) in zip(usable, prepare([s.image for s in usable])):
                    if array is None:
                        skipped[reason] = skipped.get(reason, 0) + 1
                        continue
                    for caption in sample.captions:
                        captions.append(caption)
                        owners.append(len(keys))
                    keys.append(sample.key)
                    pixels.append(array)
                if pixels:
                    image_parts.append(backend.encode_images(np.stack(pixels)))
                if progress:
                    progress(len(batch))
    finally:
        prepare.close()
    images = np.concatenate(image_parts) if image_parts else np.zeros((0, backend.embed_dim), np.float32)
    texts = backend.encode_texts(captions) if captions else np.zeros((0, backend.embed_dim), np.float32)
    return RetrievalData(images, texts, np.asarray(owners, np.int64), captions, keys, skipped)
