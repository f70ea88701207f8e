"""Encode and score on the model's torch device: only k concept ids and scores per image come back.

    scorer = DeviceScorer(backend, concept_embeddings, concept_ids, k=32)
    scorer.submit_host(uint8_pixels)      # (n, H, W, 3) from the CPU decoders, or
    scorer.submit_device(pixels)          # float32 (n, 3, H, W) in 0..255 already on the device
    for top in scorer.finished(): ...     # TopScores, in submission order
    tops = scorer.drain()

What it does that `encode_images` + core's `top_scores` do not, on a GPU:
- pixels cross the bus as uint8 (a quarter of float32) and are normalized on the device with
  the arithmetic of FastPreprocess, (x / 255 - mean) / std in float32, then cast to the model's
  input dtype (fp16/bf16 weights on CUDA);
- host batches go through pinned buffers, copied on a side stream while the previous batch
  computes; up to `in_flight` batches are queued before the caller waits for the oldest;
- scores against the whole vocabulary, their log-sum-exp and the top-k stay on the device; an
  image's (vocabulary_size,) row never crosses to the host.
Results follow core/tagging.py's TopScores contract: best first, ties broken by the lower row
(re-sorted on the host, since torch.topk does not promise an order among equal scores).

It runs on the CPU too (no streams, no pinning), which is how the tests check it against the
numpy path; the tagger only picks it on the CPU when asked for torchvision decoding.
"""

from __future__ import annotations

from collections import deque
from typing import Iterator

import numpy as np

from conceptfreq.core.tagging import TopScores, normalized


class DeviceScorer:
    def __init__(self, backend, concept_embeddings: np.ndarray, concept_ids: np.ndarray, *, k: int, batch_size: int,
                 in_flight: int = 2):
        import torch

        loaded = backend.loaded
        self.device = backend.device
        self.cuda = self.device.startswith("cuda")
        self.module, self.input_dtype, self.autocast = loaded.module, loaded.input_dtype, loaded.autocast
        cfg = loaded.preprocess_cfg
        self.mean = torch.tensor(cfg["mean"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg["std"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.height, self.width = backend.image_size
        self.ids = np.asarray(concept_ids, np.uint32)
        self.vocabulary_size = len(self.ids)
        self.concepts = torch.from_numpy(np.ascontiguousarray(normalized(concept_embeddings))).to(self.device)
        self.k = max(1, min(int(k), self.vocabulary_size))
        self.logit_scale = float(backend.logit_scale)
        self.batch_size = int(batch_size)
        self.in_flight = max(1, int(in_flight))
        self._pending: deque = deque()
        self._slots: list = []
        self._next_slot = 0
        if self.cuda:
            self.copy_stream = torch.cuda.Stream(device=self.device)
            # One pinned buffer per batch that may be in flight, plus the one being filled.
            for _ in range(self.in_flight + 1):
                buffer = torch.empty((self.batch_size, self.height, self.width, 3), dtype=torch.uint8, pin_memory=True)
                self._slots.append({"host": buffer, "copied": None})

    # --- submission -----------------------------------------------------------------------------

    def submit_host(self, pixels: np.ndarray) -> None:
        """uint8 (n, H, W, 3) host pixels, n <= batch_size."""
        import torch

        pixels = np.asarray(pixels, np.uint8)
        if pixels.ndim != 4 or pixels.shape[1:] != (self.height, self.width, 3) or len(pixels) > self.batch_size:
            raise ValueError(f"pixels must be uint8 (n<={self.batch_size}, {self.height}, {self.width}, 3), got {pixels.shape}")
        n = len(pixels)
        if not self.cuda:
            self._compute(torch.from_numpy(pixels).permute(0, 3, 1, 2), n)
            return
        slot = self._slots[self._next_slot]
        self._next_slot = (self._next_slot + 1) % len(self._slots)
        if slot["copied"] is not None:
            slot["copied"].synchronize()  # the last copy out of this pinned buffer must finish before it is refilled
        slot["host"][:n].numpy()[...] = pixels
        with torch.cuda.stream(self.copy_stream):
            on_device = slot["host"][:n].to(self.device, non_blocking=True)
            copied = torch.cuda.Event()
            copied.record(self.copy_stream)
        slot["copied"] = copied
        torch.cuda.current_stream(self.device).wait_event(copied)
        # The compute stream uses memory allocated on the copy stream: tell the caching allocator.
        on_device.record_stream(torch.cuda.current_stream(self.device))
        self._compute(on_device.permute(0, 3, 1, 2), n)

    def submit_device(self, pixels) -> None:
        """float32 (n, 3, H, W) in 0..255 (or uint8) already on the device."""
        self._compute(pixels, int(pixels.shape[0]))

    def _compute(self, pixels, n: int) -> None:
        import torch

        if n == 0:
            self._pending.append((None, None))
            return
        with torch.inference_mode():
            x = (pixels.float() / 255.0 - self.mean) / self.std
            with self.autocast():
                features = self.module.encode_image(x.to(self.input_dtype))
            # Normalized and scored in fp32 whatever the compute precision, as the host path does.
            features = features.float()
            features = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            cosines = features @ self.concepts.T
            lse = torch.logsumexp(cosines * self.logit_scale, dim=1)
            values, rows = torch.topk(cosines, self.k, dim=1)
            result = (values.to("cpu", non_blocking=self.cuda), rows.to(torch.int32).to("cpu", non_blocking=self.cuda),
                      lse.to("cpu", non_blocking=self.cuda))
        done = None
        if self.cuda:
            done = torch.cuda.Event()
            done.record(torch.cuda.current_stream(self.device))
        self._pending.append((done, result))

    # --- results --------------------------------------------------------------------------------

    def finished(self) -> Iterator[TopScores]:
        """Results of the oldest batches while more than `in_flight` are queued (waits for them)."""
        while len(self._pending) > self.in_flight:
            yield self._pop()

    def drain(self) -> list[TopScores]:
        out = []
        while self._pending:
            out.append(self._pop())
        return out

    def _pop(self) -> TopScores:
        done, result = self._pending.popleft()
        if result is None:
            return TopScores.empty(self.k, self.logit_scale, self.vocabulary_size)
        if done is not None:
            done.synchronize()
        values, rows, lse = (t.numpy() for t in result)
        values = values.astype(np.float32, copy=False)
        rows = rows.astype(np.int64, copy=False)
        order = np.lexsort((rows, -values), axis=1)
        rows = np.take_along_axis(rows, order, axis=1)
        return TopScores(self.ids[rows], np.take_along_axis(values, order, axis=1), lse.astype(np.float32, copy=False),
                         self.logit_scale, self.vocabulary_size)
