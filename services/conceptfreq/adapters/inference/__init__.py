"""The inference backend: open_clip image and text embeddings, in process or from Triton.

    backend = open_inference("torch://", "ViT-B-32", "laion400m_e32", precision="fp16")
    backend = open_inference("triton://triton:8001", "ViT-B-32", "laion400m_e32")

URL schemes (INFERENCE_SCHEMES; options come as keyword arguments or as the URL's query string):
- `torch://[device]`: open_clip in this process (the default). Device `auto` (CUDA when present),
  `cpu`, `cuda`, `cuda:1`. Options: batch_size, cache_dir (tag downloads), threads.
- `triton://host:port`: Triton Inference Server over gRPC, serving the towers written by
  `repository.write_model_repository`. Options: timeout_s, retries, in_flight, image_model, text_model,
  shared_memory (none | system | cuda: image batches through shared memory on a shared host/GPU).

Every backend has this interface (the evaluator and the tagger code against it only):

    model: str, pretrained: str | None, precision: str
    model_id: str              weights identity for cache keys: "ViT-B-32/laion400m_e32",
                               "conceptfreq-tiny/conceptfreq-tiny-seed0@sha256:...", "ViT-B-32/random-seed0";
                               identical for torch:// and triton:// serving the same weights
    image_size: (int, int)     (H, W) that `preprocess` produces and `encode_images` takes
    embed_dim: int
    logit_scale: float         CLIP's learned temperature, exp(logit_scale parameter) (about 100 when trained)
    max_batch_size: int        images per forward pass; a good size for callers' batches
    preprocess(image: PIL.Image.Image) -> np.ndarray float32 (3, H, W)
                               open_clip's eval transform; CPU only, thread-safe, picklable (send it
                               to worker processes); give it RGB images (adapters/images.py decodes
                               untrusted bytes, converting odd modes and skipping bad images with a reason)
    encode_images(pixels: np.ndarray float32 (N, 3, H, W)) -> np.ndarray float32 (N, embed_dim), rows L2-normalized
    encode_texts(texts: Sequence[str]) -> np.ndarray float32 (N, embed_dim), rows L2-normalized
    close() -> None

Errors: UserError for an unknown model, tag or precision (the message lists the valid ones) and
for weights that cannot be fetched (one line); UnavailableError when a Triton server is down or its
model is not ready (after retries). Class/concept embeddings from prompt ensembles, cached on disk:
`embeddings.text_embeddings(backend, names, prompts, names_key=vocabulary.version)`.

Tests and demos: `models.tiny_checkpoint(dir)` writes the project's deterministic tiny model
(`conceptfreq-tiny`), so torch:// and triton:// load identical weights offline.
"""

from __future__ import annotations

import inspect
from typing import Callable, Protocol, Sequence
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from conceptfreq.errors import UserError

DEFAULT_INFERENCE_URL = "torch://"


class InferenceBackend(Protocol):
    model: str
    pretrained: str | None
    precision: str
    model_id: str
    image_size: tuple[int, int]
    embed_dim: int
    max_batch_size: int
    url: str

    @property
    def logit_scale(self) -> float: ...

    def preprocess(self, image) -> np.ndarray: ...

    def encode_images(self, pixels: np.ndarray) -> np.ndarray: ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def close(self) -> None: ...


def _torch(parts, model: str, pretrained: str | None, precision: str, options: dict) -> InferenceBackend:
    from conceptfreq.adapters.inference.torch_backend import TorchBackend

    device = (parts.netloc + parts.path).strip("/") or options.pop("device", "auto")
    return TorchBackend(model, pretrained, precision, device=device, **_accepted(TorchBackend, options))


def _triton(parts, model: str, pretrained: str | None, precision: str, options: dict) -> InferenceBackend:
    from conceptfreq.adapters.inference.triton_backend import TritonBackend

    if not parts.hostname:
        raise UserError("the triton URL needs a host: triton://host:8001")
    return TritonBackend(f"{parts.hostname}:{parts.port or 8001}", model, pretrained, precision,
                         **_accepted(TritonBackend, options))


def _accepted(backend: type, options: dict) -> dict:
    known = {name for name, p in inspect.signature(backend.__init__).parameters.items() if p.kind is p.KEYWORD_ONLY}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UserError(f"{backend.scheme}:// takes no option {', '.join(unknown)}; it takes: {', '.join(sorted(known))}")
    return options


INFERENCE_SCHEMES: dict[str, Callable[..., InferenceBackend]] = {"torch": _torch, "triton": _triton}

# Options that arrive as strings in a URL query, and their types.
_OPTION_TYPES = {"batch_size": int, "threads": int, "timeout_s": float, "retries": int, "in_flight": int}


def open_inference(url: str | None, model: str, pretrained: str | None, precision: str = "fp32", **options) -> InferenceBackend:
    """The backend named by `url` (default torch://), serving `model` with `pretrained` weights."""
    url = url or DEFAULT_INFERENCE_URL
    parts = urlsplit(url)
    opener = INFERENCE_SCHEMES.get(parts.scheme)
    if opener is None:
        raise UserError(f"unknown inference URL {url!r}: use torch:// (in process) or triton://host:8001")
    query = {}
    for key, value in parse_qsl(parts.query):
        try:
            query[key] = _OPTION_TYPES.get(key, str)(value)
        except ValueError:
            raise UserError(f"inference URL option {key}={value!r} is not a {_OPTION_TYPES[key].__name__}") from None
    return opener(parts, model, pretrained or None, precision, {**query, **options})


__all__ = ["DEFAULT_INFERENCE_URL", "INFERENCE_SCHEMES", "InferenceBackend", "open_inference"]
