"""`triton://host:8001`: the open_clip towers served by Triton Inference Server, over gRPC.

- **Which models**: `<model>__<weights label>__image` and `__text` (repository.py names them), or
  `?image_model=...&text_model=...` in the URL. The model config's parameters tell the client the
  preprocessing, embedding size and model_id, so the client never needs the weights.
- **Batching**: inputs are cut into chunks of the model's max_batch_size; `in_flight` chunks are on
  the wire at once, so the server computes one while the next is being sent (its dynamic batcher
  may merge them further).
- **Wire formats**: the image model's `input_format` parameter (float32, float16 or uint8 pixels;
  repository.INPUT_FORMATS) says what to send; `?shared_memory=system|cuda` sends image batches
  through shared memory regions instead of the gRPC message (triton_shm.py), when client and
  server share the host or the GPU.
- **Failures**: transient gRPC codes (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED)
  are retried with exponential backoff on a fresh channel; when they persist, or when the server is
  down or the model not ready, UnavailableError says so (a service maps it to gRPC UNAVAILABLE and
  its consume loop retries later). Bad input is a UserError; anything else is a bug and says so.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import numpy as np

from conceptfreq.adapters.bus.retry import Backoff
from conceptfreq.adapters.inference.models import Preprocessor, check_model, image_size
from conceptfreq.adapters.images import normalize_uint8
from conceptfreq.adapters.inference.repository import input_format, triton_model_name
from conceptfreq.adapters.inference.triton_shm import SHARED_MEMORY, UNKNOWN_REGION, InputRegions
from conceptfreq.adapters.metrics import INFERENCE_RETRIES, INFERENCE_SECONDS
from conceptfreq.errors import UnavailableError, UserError

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"}
# While Triton shuts down gracefully (SIGTERM, which Kubernetes sends first) or reloads a model,
# it answers NOT_FOUND "... has no available versions": the model is coming back, not missing.
_UNLOADING = ("has no available versions", "is not ready", "unloading")


# An in-flight call on a channel that closed under it (the server restarted) is CANCELLED with
# "Channel closed!": a new channel succeeds.
_CHANNEL_CLOSED = "Channel closed"


def _transient(code: str, message: str) -> bool:
    return (code in TRANSIENT or (code == "NOT_FOUND" and any(m in message for m in _UNLOADING))
            or (code == "CANCELLED" and _CHANNEL_CLOSED in message))


def _status(error: Exception) -> str:
    """The gRPC status name of a tritonclient error ("StatusCode.UNAVAILABLE" -> "UNAVAILABLE")."""
    status = getattr(error, "status", lambda: None)() or ""
    return str(status).rsplit(".", 1)[-1] or "UNKNOWN"


class TritonBackend:
    scheme = "triton"

    def __init__(self, address: str, model: str, pretrained: str | None, precision: str = "fp32", *,
                 timeout_s: float = 120.0, retries: int = 4, in_flight: int = 2, image_model: str | None = None,
                 text_model: str | None = None, shared_memory: str = "none",
                 backoff: Backoff = Backoff(initial_s=0.2, maximum_s=5.0)):
        check_model(model)
        self.address = address
        self.url = f"triton://{address}"
        self.model, self.pretrained = model, pretrained
        self.timeout_s, self.retries, self.backoff = float(timeout_s), int(retries), backoff
        self.in_flight = max(1, int(in_flight))
        self._names = {"image": image_model or triton_model_name(model, pretrained, "image"),
                       "text": text_model or triton_model_name(model, pretrained, "text")}
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._client = None
        self._pool: ThreadPoolExecutor | None = None
        self._regions = None
        if shared_memory not in SHARED_MEMORY:
            raise UserError(f"unknown shared_memory {shared_memory!r}: choose one of {', '.join(SHARED_MEMORY)}")
        configs = {tower: self._model_config(name) for tower, name in self._names.items()}
        params = {tower: {k: v.get("string_value", "") for k, v in c.get("parameters", {}).items()} for tower, c in configs.items()}
        image = params["image"]
        if image.get("model") != model:
            raise UserError(f"Triton at {address} serves {image.get('model')!r} as {self._names['image']!r}, not {model!r}")
        if params["text"].get("model_id") != image.get("model_id"):
            raise UserError(f"Triton's image and text models hold different weights ({image.get('model_id')} vs "
                            f"{params['text'].get('model_id')}): regenerate the repository")
        self.model_id = image["model_id"]
        self.precision = image.get("precision", "fp32")
        if precision != self.precision:
            log.warning("Triton serves %s at %s; %s was asked for (precision is the server's choice)",
                        self.model_id, self.precision, precision)
        preprocess = json.loads(image["preprocess"])
        self.preprocess = Preprocessor(preprocess)
        self.image_size = image_size(preprocess)
        self.embed_dim = int(image["embed_dim"])
        self.max_batch_size = int(configs["image"].get("max_batch_size") or 1)
        # What the server's image tower takes on the wire (repository.INPUT_FORMATS); older
        # repositories have no such parameter and take float32.
        self.input_format = image.get("input_format") or "float32"
        self._wire_type, self._layout = input_format(self.input_format)[1:]
        self._mean = np.asarray(preprocess["mean"], np.float32)[:, None, None]
        self._std = np.asarray(preprocess["std"], np.float32)[:, None, None]
        self._text_batch = int(configs["text"].get("max_batch_size") or 1)
        self._logit_scale: float | None = None
        if shared_memory != "none":
            # Two regions per request in flight: callers (the tagger) may also keep `in_flight` batches going.
            itemsize = np.dtype({"FP32": np.float32, "FP16": np.float16, "UINT8": np.uint8}[self._wire_type]).itemsize
            size = self.max_batch_size * 3 * self.image_size[0] * self.image_size[1] * itemsize
            self._regions = InputRegions(shared_memory, size, 2 * self.in_flight)
            self._call(lambda client: self._regions.register(client), "registering shared memory")

    def __repr__(self) -> str:
        return f"TritonBackend({self.model_id}, {self.precision}, {self.address})"

    # --- connection -----------------------------------------------------------------------------

    def _connect(self):
        import tritonclient.grpc as grpcclient

        with self._lock:
            if self._client is None:
                client = grpcclient.InferenceServerClient(self.address)
                if self._regions is not None:
                    self._regions.register(client)  # a new channel may be a restarted server, which forgot them
                self._client = client
            return self._client

    def _reset(self) -> None:
        """Drop the channel: after an outage, grpc's own reconnect backoff can keep a channel failing
        for many seconds after the server is back; a new channel connects at once."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - already broken
                pass

    def _call(self, fn: Callable[[object], T], what: str) -> T:
        from tritonclient.utils import InferenceServerException

        attempt = 0
        while True:
            try:
                return fn(self._connect())
            except InferenceServerException as error:
                code = _status(error)
                if any(m in str(error.message()).lower() for m in UNKNOWN_REGION):
                    code = "UNAVAILABLE"  # the server restarted and forgot our regions: a new channel registers them
                if not _transient(code, str(error.message())):
                    if code == "INVALID_ARGUMENT":
                        raise UserError(f"Triton at {self.address} rejected {what}: {error.message()}") from None
                    raise RuntimeError(f"Triton at {self.address}: {what} failed ({code}): {error.message()}") from None
                if attempt >= self.retries:
                    raise UnavailableError(f"Triton at {self.address} is unavailable ({what}: {code}: "
                                           f"{' '.join(str(error.message()).split())[:200]})") from None
                INFERENCE_RETRIES.labels(self.scheme, code).inc()
                delay = self.backoff.delay(attempt, self._rng)
                log.warning("Triton %s: %s (%s); retrying in %.2fs", what, code, error.message(), delay)
                self._reset()
                time.sleep(delay)
                attempt += 1

    def _model_config(self, name: str) -> dict:
        def ready(client) -> dict:
            if not client.is_server_live():
                raise _unavailable("server not live")
            if not client.is_model_ready(name):
                served = sorted(m.get("name", "") for m in client.get_model_repository_index(as_json=True).get("models", []))
                if name not in served:
                    raise UserError(f"Triton at {self.address} has no model {name!r}; it serves: {', '.join(served) or 'nothing'} "
                                    "(write one with conceptfreq.adapters.inference.repository.write_model_repository)")
                raise _unavailable(f"model {name} is not ready (loading, or failed to load: see the server log)")
            return client.get_model_config(name, as_json=True)["config"]

        return self._call(ready, f"checking {name}")

    # --- encoding -------------------------------------------------------------------------------

    def _chunks(self, n: int, size: int) -> list[slice]:
        return [slice(start, min(n, start + size)) for start in range(0, n, size)]

    def _map(self, work: Callable[[slice], np.ndarray], slices: list[slice]) -> list[np.ndarray]:
        if len(slices) <= 1 or self.in_flight == 1:
            return [work(s) for s in slices]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.in_flight, thread_name_prefix="triton")
        return list(self._pool.map(work, slices))

    def _wire_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """The caller's pixels in the server's input format. Callers give float32 (N, 3, H, W),
        or uint8 (N, H, W, 3) from a uint8 decoder. float32 pixels for a uint8 model are turned
        back into the uint8 they were made from: (x * std + mean) * 255, rounded, which is exact
        for pixels that came from 8-bit images (the error is far below half a step)."""
        pixels = np.asarray(pixels)
        height, width = self.image_size
        if pixels.dtype == np.uint8:
            if pixels.ndim != 4 or pixels.shape[1:] != (height, width, 3):
                raise UserError(f"uint8 pixels must be (N, {height}, {width}, 3), got {pixels.shape}")
            if self.input_format == "uint8":
                return np.ascontiguousarray(pixels)
            pixels = normalize_uint8(pixels, self._mean[:, 0, 0], self._std[:, 0, 0])
        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.ndim != 4 or pixels.shape[1:] != (3, height, width):
            raise UserError(f"pixels must be (N, 3, {height}, {width}) float32, got {pixels.shape}")
        if self.input_format == "uint8":
            restored = np.rint((pixels * self._std + self._mean) * np.float32(255))
            return np.ascontiguousarray(np.clip(restored, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1))
        if self.input_format == "float16":
            return np.ascontiguousarray(pixels, dtype=np.float16)
        return np.ascontiguousarray(pixels)

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        import tritonclient.grpc as grpcclient

        pixels = self._wire_pixels(pixels)
        name = self._names["image"]

        def one(part: slice) -> np.ndarray:
            batch = pixels[part]
            request = grpcclient.InferInput("PIXELS", list(batch.shape), self._wire_type)
            outputs = [grpcclient.InferRequestedOutput("EMBEDDINGS")]
            region = None
            try:
                if self._regions is not None:
                    region = self._regions.acquire()
                    request.set_shared_memory(region, self._regions.write(region, batch))
                else:
                    request.set_data_from_numpy(batch)
                result = self._call(lambda c: c.infer(name, [request], outputs=outputs, client_timeout=self.timeout_s),
                                    f"encoding {len(batch)} images")
            finally:
                if region is not None:
                    self._regions.release(region)
            return result.as_numpy("EMBEDDINGS")

        if not len(pixels):
            return np.zeros((0, self.embed_dim), np.float32)
        with INFERENCE_SECONDS.labels(self.scheme, "image").time():
            return _checked(np.concatenate(self._map(one, self._chunks(len(pixels), self.max_batch_size))), len(pixels))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.embed_dim), np.float32)
        with INFERENCE_SECONDS.labels(self.scheme, "text").time():
            parts = self._map(lambda part: self._texts(texts[part])[0], self._chunks(len(texts), self._text_batch))
            return _checked(np.concatenate(parts), len(texts))

    def _texts(self, texts: list[str]) -> tuple[np.ndarray, float]:
        import tritonclient.grpc as grpcclient

        data = np.array([t.encode("utf-8") for t in texts], dtype=np.object_).reshape(-1, 1)
        request = grpcclient.InferInput("TEXT", list(data.shape), "BYTES")
        request.set_data_from_numpy(data)
        outputs = [grpcclient.InferRequestedOutput("EMBEDDINGS"), grpcclient.InferRequestedOutput("LOGIT_SCALE")]
        name = self._names["text"]
        result = self._call(lambda c: c.infer(name, [request], outputs=outputs, client_timeout=self.timeout_s),
                            f"encoding {len(texts)} texts")
        scale = float(result.as_numpy("LOGIT_SCALE").reshape(-1)[0])
        self._logit_scale = scale
        return result.as_numpy("EMBEDDINGS"), scale

    @property
    def logit_scale(self) -> float:
        if self._logit_scale is None:
            self._texts([""])
        return self._logit_scale

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        if self._regions is not None:
            self._regions.close(self._client)
            self._regions = None
        self._reset()


def _checked(embeddings: np.ndarray, n: int) -> np.ndarray:
    # numpy 2 in a server's python stub returns empty outputs without an error (docs/platform.md): never pass that on.
    if embeddings.shape[0] != n:
        raise RuntimeError(f"Triton returned {embeddings.shape[0]} embeddings for {n} inputs "
                           "(numpy>=2 in the server's python environment does this)")
    return embeddings.astype(np.float32, copy=False)


def _unavailable(message: str):
    from tritonclient.utils import InferenceServerException

    return InferenceServerException(message, status="StatusCode.UNAVAILABLE")
