"""Image bytes to model input: decode, make RGB, preprocess, in worker threads or processes.

A bad image never raises out of here: `decode_image` answers with a skip reason, counted per
shard like a bad caption is, and the shard goes on. The reasons (SKIP_REASONS):
- `no_image`: the sample has no image member; `empty_image`: zero bytes; `zero_size`: a 0-pixel side;
- `undecodable`: not an image Pillow knows, or broken inside (anything else that fails decoding);
- `truncated`: the file stops before the end of the image data (Pillow's "image file is truncated"),
  rather than being padded with grey as ImageFile.LOAD_TRUNCATED_IMAGES would do;
- `too_many_pixels`: a decompression bomb: width x height above `max_pixels`, judged from the header
  before any pixel is decoded (Pillow's own DecompressionBombError is caught as the same reason);
- `unsupported_mode`: a pixel format with no safe RGB conversion (float, LAB, HSV...).

Pixel formats that convert safely are converted and counted as notes (the sample is used):
CMYK (Pillow applies the Adobe inversion), palette, grey, 1-bit; transparency (RGBA, LA, PA, P with
a transparent colour) is composited over white, since transparent pixels' hidden colour is
arbitrary (often black) and a white page is what a browser shows; 16-bit and 32-bit integer grey is
scaled to 8 bits instead of clipped (Pillow's convert would make most of it white).

Pillow's process-wide settings (MAX_IMAGE_PIXELS, LOAD_TRUNCATED_IMAGES) are left alone: other
code in the process may rely on them, and the cap here is per decoder.

JPEGs are decoded with Pillow's draft mode at the model's input size: libjpeg then scales by
1/2, 1/4 or 1/8 while decoding, never below that size, which is most of the decode time saved on
web-sized photos. It changes pixels slightly against a full decode followed by the same resize;
`draft=False` turns it off where exact parity with open_clip's own loader matters.
"""

from __future__ import annotations

import io
import logging
from collections import deque
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

log = logging.getLogger(__name__)

SKIP_REASONS = ("no_image", "empty_image", "zero_size", "undecodable", "truncated", "too_many_pixels", "unsupported_mode")
# Far above any photo on the web (a 12 MP phone photo is 12M) and far below what hurts: one decode
# of 50M pixels takes 150 MB of RGB per worker. Pillow's own limit is 89M.
DEFAULT_MAX_PIXELS = 50_000_000
WHITE = (255, 255, 255)


class ImageSkipped(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def _alpha_over_white(image):
    from PIL import Image

    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, WHITE + (255,))
    canvas.alpha_composite(rgba)
    return canvas.convert("RGB")


def _palette(image):
    if "transparency" in image.info:
        return _alpha_over_white(image)
    return image.convert("RGB")


def _deep_grey(image):
    """16-/32-bit integer grey -> 8 bits, scaled by the bit depth rather than clipped."""
    from PIL import Image

    pixels = np.asarray(image)
    if pixels.dtype.kind not in "iu":
        raise ImageSkipped("unsupported_mode", f"{image.mode} pixels")
    # 16-bit files (I;16*, and "I" from 16-bit PNG/TIFF) use 0..65535; wider ranges are rare and scaled to fit.
    top = 65535.0 if pixels.max(initial=0) <= 65535 else float(pixels.max())
    grey = np.clip(pixels.astype(np.float64) * (255.0 / top), 0, 255).round().astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")


def _plain(image):
    return image.convert("RGB")


# Pillow mode -> (conversion to RGB, note counted when it was needed).
MODE_CONVERSIONS: dict[str, tuple[Callable, str | None]] = {
    "RGB": (lambda image: image, None),
    "L": (_plain, "converted_grey"),
    "1": (_plain, "converted_grey"),
    "CMYK": (_plain, "converted_cmyk"),
    "YCbCr": (_plain, "converted_ycbcr"),
    "P": (_palette, "converted_palette"),
    "RGBA": (_alpha_over_white, "converted_alpha"),
    "RGBa": (_alpha_over_white, "converted_alpha"),
    "LA": (_alpha_over_white, "converted_alpha"),
    "La": (_alpha_over_white, "converted_alpha"),
    "PA": (_alpha_over_white, "converted_alpha"),
    "RGBX": (_plain, None),
    "I;16": (_deep_grey, "converted_16bit"),
    "I;16L": (_deep_grey, "converted_16bit"),
    "I;16B": (_deep_grey, "converted_16bit"),
    "I;16N": (_deep_grey, "converted_16bit"),
    "I": (_deep_grey, "converted_16bit"),
}


def open_image(data: bytes | None, *, max_pixels: int = DEFAULT_MAX_PIXELS, draft_size: tuple[int, int] | None = None):
    """Decode to an RGB PIL image and say which conversion it took: (image, note or None).
    Raises ImageSkipped with one of SKIP_REASONS, and nothing else."""
    from PIL import Image, UnidentifiedImageError

    if data is None:
        raise ImageSkipped("no_image")
    if not len(data):
        raise ImageSkipped("empty_image")
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width <= 0 or height <= 0:
            raise ImageSkipped("zero_size", f"{width}x{height}")
        if width * height > max_pixels:
            raise ImageSkipped("too_many_pixels", f"{width}x{height} > {max_pixels:,}")
        if draft_size and image.format == "JPEG":
            image.draft(None, draft_size)
        image.load()
        conversion = MODE_CONVERSIONS.get(image.mode)
        if conversion is None:
            raise ImageSkipped("unsupported_mode", image.mode)
        convert, note = conversion
        return convert(image), note
    except ImageSkipped:
        raise
    except Image.DecompressionBombError as error:
        raise ImageSkipped("too_many_pixels", str(error)) from None
    except UnidentifiedImageError as error:
        raise ImageSkipped("undecodable", str(error)) from None
    except OSError as error:
        # Pillow says "image file is truncated" or "Truncated File Read", depending on the decoder.
        reason = "truncated" if "truncated" in str(error).lower() else "undecodable"
        raise ImageSkipped(reason, str(error)) from None
    except Exception as error:  # noqa: BLE001 - decoders fail in many ways (SyntaxError, ValueError, MemoryError...)
        raise ImageSkipped("undecodable", f"{type(error).__name__}: {error}") from None


class FastPreprocess:
    """open_clip's eval transform with its tensor tail (ToTensor, Normalize) done in numpy.

    The resize and crop steps are open_clip's own (PIL operations); only the last two steps, which
    would run torch kernels, are replaced by the same float32 arithmetic (x / 255 - mean) / std,
    which gives identical values. Why: torch runs even these small ops on its intra-op thread
    pool, and decode worker threads calling into that pool while the main thread runs the model
    oversubscribe the cores (measured: 224 px preprocessing went from 2 ms to 22 ms per image on
    2 cores). Picklable: only the config travels to worker processes."""

    def __init__(self, cfg: dict):
        self.cfg = dict(cfg)
        self._pil = None

    @classmethod
    def wrap(cls, preprocess: Callable) -> Callable:
        """A FastPreprocess for the inference adapter's Preprocessor (it has `cfg`); anything else as is."""
        cfg = getattr(preprocess, "cfg", None)
        return cls(cfg) if isinstance(cfg, dict) and {"size", "mean", "std"} <= cfg.keys() else preprocess

    def _build(self):
        import open_clip
        from torchvision.transforms import Compose, Normalize, ToTensor

        full = open_clip.image_transform(self.cfg["size"], is_train=False, mean=tuple(self.cfg["mean"]), std=tuple(self.cfg["std"]),
                                         resize_mode=self.cfg.get("resize_mode"), interpolation=self.cfg.get("interpolation"),
                                         fill_color=self.cfg.get("fill_color", 0))
        steps = list(full.transforms)
        if len(steps) < 2 or not isinstance(steps[-2], ToTensor) or not isinstance(steps[-1], Normalize):
            return full, None, None  # an unexpected pipeline: run it as it is
        mean = np.asarray(steps[-1].mean, np.float32)[:, None, None]
        std = np.asarray(steps[-1].std, np.float32)[:, None, None]
        return Compose(steps[:-2]), mean, std

    def __call__(self, image) -> np.ndarray:
        if self._pil is None:
            self._pil, self._mean, self._std = self._build()
        if self._mean is None:
            return self._pil(image).numpy().astype(np.float32, copy=False)
        pixels = np.asarray(self._pil(image), dtype=np.uint8)
        pixels = pixels.reshape(pixels.shape[0], pixels.shape[1], -1).transpose(2, 0, 1).astype(np.float32) / np.float32(255)
        return (pixels - self._mean) / self._std

    def uint8(self, image) -> np.ndarray:
        """The resized, cropped pixels before ToTensor and Normalize: uint8 (H, W, 3). A quarter of
        the float32 bytes to ship to a GPU or a Triton server, which then apply `normalize_uint8`'s
        arithmetic and get exactly the values `__call__` gives."""
        if self._pil is None:
            self._pil, self._mean, self._std = self._build()
        if self._mean is None:
            raise ValueError("this preprocessing does not end in ToTensor + Normalize: uint8 pixels are not available")
        pixels = np.asarray(self._pil(image), dtype=np.uint8)
        return pixels.reshape(pixels.shape[0], pixels.shape[1], -1)

    def __getstate__(self):
        return {"cfg": self.cfg}

    def __setstate__(self, state):
        self.cfg, self._pil = state["cfg"], None


def normalize_uint8(pixels: np.ndarray, mean, std) -> np.ndarray:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W), open_clip's ToTensor + Normalize with
    FastPreprocess's float32 arithmetic (x / 255 - mean) / std, so both give the same values."""
    mean = np.asarray(mean, np.float32)[:, None, None]
    std = np.asarray(std, np.float32)[:, None, None]
    scaled = np.asarray(pixels, np.uint8).transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    return (scaled - mean) / std


# What the decoder hands to the backend: model-ready float32 (3, H, W), or uint8 (H, W, 3) for
# backends that normalize themselves (a GPU, or a Triton model with uint8 input).
PIXEL_FORMATS = ("float32", "uint8")
# Who decodes for the tagger (tagger/stage.py choose_path): auto, Pillow in the pool, or
# torchvision on the in-process model's device (adapters/images_device.py).
IMAGE_DECODERS = ("auto", "pil", "torchvision")


@dataclass(frozen=True)
class Decoded:
    pixels: np.ndarray | None   # float32 (3, H, W) model-ready, or uint8 (H, W, 3); None when skipped
    skipped: str | None = None  # one of SKIP_REASONS
    note: str | None = None     # a conversion that was applied (the image was used)


class ImageDecoder:
    """bytes -> Decoded: decode, convert to RGB, then `preprocess` (PIL RGB image -> float32
    (3, H, W), e.g. the inference backend's open_clip transform). Picklable when `preprocess`
    is, so it runs in worker processes as well as threads."""

    def __init__(self, preprocess: Callable, *, max_pixels: int = DEFAULT_MAX_PIXELS, draft_size: tuple[int, int] | None = None,
                 pixel_format: str = "float32"):
        if pixel_format not in PIXEL_FORMATS:
            raise ValueError(f"unknown pixel format {pixel_format!r}: choose one of {', '.join(PIXEL_FORMATS)}")
        if pixel_format == "uint8" and not callable(getattr(preprocess, "uint8", None)):
            raise ValueError("uint8 pixels need a FastPreprocess (open_clip's transform ending in ToTensor + Normalize)")
        self.preprocess = preprocess
        self.max_pixels = int(max_pixels)
        self.draft_size = tuple(draft_size) if draft_size else None
        self.pixel_format = pixel_format

    def __call__(self, data: bytes | None) -> Decoded:
        try:
            image, note = open_image(data, max_pixels=self.max_pixels, draft_size=self.draft_size)
        except ImageSkipped as skipped:
            log.debug("image skipped: %s", skipped)
            return Decoded(None, skipped.reason)
        try:
            if self.pixel_format == "uint8":
                return Decoded(self.preprocess.uint8(image), None, note)
            return Decoded(np.asarray(self.preprocess(image), dtype=np.float32), None, note)
        except Exception as error:  # noqa: BLE001 - a transform failing on one odd image must not fail the shard
            log.debug("preprocessing failed: %s: %s", type(error).__name__, error)
            return Decoded(None, "undecodable")

    def many(self, items: Sequence[bytes | None]) -> list[Decoded]:
        """A chunk per task: one round trip per chunk, not per image, in process pools."""
        return [self(data) for data in items]


def _thread_pool(workers: int) -> Executor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")


def _process_pool(workers: int) -> Executor:
    import multiprocessing

    # spawn, not fork: the parent holds torch, gRPC and store threads that fork would copy mid-state.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


# Threads suit most hosts (Pillow and torch release the GIL while decoding and resizing);
# processes scale further on many-core hosts, at the cost of pickling each image's pixels back.
EXECUTORS: dict[str, Callable[[int], Executor]] = {"thread": _thread_pool, "process": _process_pool}


class DecodePool:
    """Decodes a stream of images with `workers` threads or processes, in order, holding at most
    `window` chunks in flight, so a shard of any size streams through bounded memory."""

    def __init__(self, decoder: ImageDecoder, *, workers: int = 2, executor: str = "thread", chunk: int = 16,
                 window: int | None = None):
        if executor not in EXECUTORS:
            raise ValueError(f"unknown executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
        self.decoder = decoder
        self.workers = max(0, int(workers))
        self.chunk = max(1, int(chunk))
        self.window = window or max(2, 2 * self.workers)
        self._executor = EXECUTORS[executor](self.workers) if self.workers else None

    def map(self, images: Iterable[bytes | None]) -> Iterator[Decoded]:
        chunks = _chunks(images, self.chunk)
        if self._executor is None:
            for chunk in chunks:
                yield from self.decoder.many(chunk)
            return
        pending: deque = deque()
        for chunk in chunks:
            pending.append(self._executor.submit(self.decoder.many, chunk))
            if len(pending) >= self.window:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> "DecodePool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
