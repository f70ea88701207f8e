"""`torch://`: open_clip in this process, the one-machine default. The Triton server's model.py
wraps this same class, so both backends run one code path and give the same numbers."""

from __future__ import annotations

import logging
import threading
from typing import Sequence

import numpy as np

from conceptfreq.adapters.inference.models import Preprocessor, image_size, load_clip, pick_device, resolve
from conceptfreq.adapters.metrics import INFERENCE_SECONDS
from conceptfreq.errors import UserError

log = logging.getLogger(__name__)

# Images per forward pass: big enough to keep a GPU busy, small enough for CPU caches and memory.
# On CUDA, 512 ViT-B-32 images at fp16 take ~0.2 GB of activations and keep an H100-class GPU
# busy between the host's launches; the CPU default is unchanged.
DEFAULT_BATCH = {"cuda": 512, "cpu": 64}
TEXT_BATCH = {"cuda": 1024, "cpu": 256}


class TorchBackend:
    scheme = "torch"

    def __init__(self, model: str, pretrained: str | None, precision: str = "fp32", *, device: str = "auto",
                 batch_size: int | None = None, cache_dir: str | None = None, threads: int | None = None):
        import torch

        self.weights = resolve(model, pretrained)
        self.device = pick_device(device)
        kind = "cuda" if self.device.startswith("cuda") else "cpu"
        if threads:
            torch.set_num_threads(int(threads))
        self.model, self.pretrained, self.precision = model, pretrained, precision
        self._loaded = load_clip(self.weights, self.device, precision, cache_dir)
        self.model_id = self.weights.model_id
        self.preprocess = Preprocessor(self._loaded.preprocess_cfg)
        self.image_size = image_size(self._loaded.preprocess_cfg)
        self.logit_scale = self._loaded.logit_scale
        self.embed_dim = self._loaded.embed_dim
        self.max_batch_size = int(batch_size or DEFAULT_BATCH[kind])
        if self.max_batch_size < 1:
            raise UserError("batch_size must be at least 1")
        self._text_batch = TEXT_BATCH[kind]
        self._lock = threading.Lock()  # one forward at a time: threads would only fight over the same cores/GPU
        self.url = f"torch://{self.device}"
        self.input_format = "float32"  # encode_images takes model-ready float32 pixels

    @property
    def loaded(self):
        """The loaded open_clip model (module, dtypes, autocast): for device_scoring.DeviceScorer,
        which encodes and scores on this device without a round trip through host memory."""
        return self._loaded

    def __repr__(self) -> str:
        return f"TorchBackend({self.model_id}, {self.precision}, {self.device})"

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.ndim != 4 or pixels.shape[1:] != (3, *self.image_size):
            raise UserError(f"pixels must be (N, 3, {self.image_size[0]}, {self.image_size[1]}) float32, got {pixels.shape}")
        out = np.empty((len(pixels), self.embed_dim), np.float32)
        with INFERENCE_SECONDS.labels(self.scheme, "image").time():
            for start in range(0, len(pixels), self.max_batch_size):
                batch = torch.from_numpy(pixels[start:start + self.max_batch_size])
                batch = batch.to(self.device, dtype=self._loaded.input_dtype, non_blocking=True)
                with self._lock, torch.inference_mode(), self._loaded.autocast():
                    features = self._loaded.module.encode_image(batch)
                out[start:start + len(batch)] = _normalized(features)
        return out

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        texts = list(texts)
        out = np.empty((len(texts), self.embed_dim), np.float32)
        with INFERENCE_SECONDS.labels(self.scheme, "text").time():
            for start in range(0, len(texts), self._text_batch):
                tokens = self._loaded.tokenizer(texts[start:start + self._text_batch]).to(self.device)
                with self._lock, torch.inference_mode(), self._loaded.autocast():
                    features = self._loaded.module.encode_text(tokens)
                out[start:start + len(tokens)] = _normalized(features)
        return out

    def close(self) -> None:
        self._loaded = None


def _normalized(features) -> np.ndarray:
    # Normalized in fp32 whatever the compute precision: half-precision norms lose ~3 digits.
    features = features.float()
    features = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return features.cpu().numpy()
