"""JPEG decoding and open_clip's eval resize/crop on the model's torch device, in batches.

On CUDA, `torchvision.io.decode_jpeg(device="cuda")` decodes a whole batch with nvJPEG, and the
resize and crop run there too, so a GPU host is not limited by how many images its CPU cores can
decode (about 400/s per core with Pillow's draft mode for web-sized JPEGs). On the CPU the same
code runs through libjpeg-turbo; that is what the tests exercise, since the choice between the
two is only the device.

Only baseline JPEGs that are plain RGB or grey, within `max_pixels`, go to the device decoder; the
header is read by Pillow first (no pixels decoded), so bombs and odd modes are judged exactly as
adapters/images.py judges them. Everything else (PNG, WebP, CMYK JPEGs, bytes the device decoder
rejects) falls back, image by image, to adapters/images.py's ImageDecoder, which either decodes
it or gives its skip reason: a bad image is counted, never a crash.

The output is float32 (N, 3, H, W) in 0..255, rounded and clamped like Pillow's 8-bit resize, so
the scorer normalizes every image with the same arithmetic. Device resizing (antialiased bicubic)
is close to, not bit-equal with, Pillow's; stored top-k from this path can differ from the CPU
path's in the last digits of a score, which is why the CPU path stays the default without a GPU.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from conceptfreq.adapters.images import Decoded, ImageDecoder

log = logging.getLogger(__name__)

JPEG_MAGIC = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"
# Modes nvJPEG turns into RGB as Pillow would: grey is replicated, RGB is as is. CMYK/YCCK JPEGs
# need Adobe's inversion, which only the Pillow path applies.
DEVICE_MODES = {"RGB": None, "L": "converted_grey"}
RESIZE_MODES = ("shortest",)
INTERPOLATIONS = {"bicubic": "bicubic", "bilinear": "bilinear", None: "bicubic"}


def device_candidate(data: bytes | None, max_pixels: int) -> tuple[bool, str | None]:
    """(True, note) when `data` is a JPEG the device decoder should take; (False, None) otherwise."""
    # No end-of-image marker: a truncated file, which libjpeg would pad with grey and nvJPEG may
    # reject or not; Pillow's path calls it `truncated`, as for every other image.
    if not data or not data.startswith(JPEG_MAGIC) or not data.rstrip(b"\0")[-2:] == JPEG_END:
        return False, None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            mode = image.mode
    except Exception:  # noqa: BLE001 - whatever is wrong, the Pillow path says which reason
        return False, None
    if mode not in DEVICE_MODES or width <= 0 or height <= 0 or width * height > max_pixels:
        return False, None
    return True, DEVICE_MODES[mode]


@dataclass
class DeviceBatch:
    """One batch's outcome: `statuses[i]` is input i's Decoded (pixels None: they are rows of
    `pixels` in input order when not skipped); `pixels` is float32 (n_used, 3, H, W) on the device."""

    statuses: list[Decoded]
    pixels: object


class DeviceDecoder:
    """bytes -> resized, cropped pixels on `device`, in batches; per-image fallback to `fallback`
    (an ImageDecoder producing uint8 pixels, with the same preprocessing config)."""

    def __init__(self, preprocess_cfg: dict, device: str, fallback: ImageDecoder, *, max_pixels: int):
        from conceptfreq.adapters.inference.models import image_size

        resize_mode = preprocess_cfg.get("resize_mode") or "shortest"
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"device decoding supports resize modes {', '.join(RESIZE_MODES)}, not {resize_mode!r}")
        interpolation = preprocess_cfg.get("interpolation")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"device decoding supports interpolation {', '.join(i for i in INTERPOLATIONS if i)}, not {interpolation!r}")
        if fallback.pixel_format != "uint8":
            raise ValueError("the fallback decoder must produce uint8 pixels")
        self.height, self.width = image_size(preprocess_cfg)
        self.mode = INTERPOLATIONS[interpolation]
        self.device = device
        self.fallback = fallback
        self.max_pixels = int(max_pixels)

    def decode(self, items: Sequence[bytes | None]) -> DeviceBatch:
        import torch

        statuses: list[Decoded | None] = [None] * len(items)
        images: dict[int, object] = {}   # input index -> (3, H, W) float tensor on the device
        device_items, notes = [], {}
        for i, data in enumerate(items):
            ok, note = device_candidate(data, self.max_pixels)
            if ok:
                device_items.append(i)
                notes[i] = note
        decoded = self._device_decode([items[i] for i in device_items])
        for i, image in zip(device_items, decoded):
            if image is None:
                continue  # rejected by the device decoder: the fallback below decides
            images[i] = self._resize(image)
            statuses[i] = Decoded(None, None, notes[i])
        for i, data in enumerate(items):
            if statuses[i] is not None:
                continue
            result = self.fallback(data)
            if result.skipped:
                statuses[i] = result
            else:
                images[i] = torch.from_numpy(np.ascontiguousarray(result.pixels)).to(self.device).permute(2, 0, 1).float()
                statuses[i] = Decoded(None, None, result.note)
        used = [i for i in range(len(items)) if i in images]
        pixels = (torch.stack([images[i] for i in used]) if used
                  else torch.zeros((0, 3, self.height, self.width), dtype=torch.float32, device=self.device))
        return DeviceBatch(statuses, pixels)

    def _device_decode(self, datas: list[bytes]) -> list:
        """Decoded (3, h, w) uint8 tensors, None where the device decoder rejects one."""
        if not datas:
            return []
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg

        encoded = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
        try:
            return list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=self.device))
        except Exception as error:  # noqa: BLE001 - one bad image fails the whole batched call
            log.debug("batched device decode failed (%s): decoding one by one", error)
        out = []
        for data in encoded:
            try:
                out.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device))
            except Exception:  # noqa: BLE001 - the Pillow fallback gives the reason
                out.append(None)
        return out

    def _resize(self, image):
        """open_clip's "shortest" eval resize (torchvision Resize's output size) and CenterCrop."""
        import torch.nn.functional as F

        h, w = image.shape[-2:]
        if self.height == self.width:
            short, long = (h, w) if h <= w else (w, h)
            new_short, new_long = self.height, int(self.height * long / short)
            size = (new_short, new_long) if h <= w else (new_long, new_short)
        else:
            scale = max(self.height / h, self.width / w)
            size = (max(self.height, round(h * scale)), max(self.width, round(w * scale)))
        pixels = image[None].float()
        if tuple(size) != (h, w):
            pixels = F.interpolate(pixels, size=size, mode=self.mode, align_corners=False, antialias=True)
        top = int(round((size[0] - self.height) / 2.0))
        left = int(round((size[1] - self.width) / 2.0))
        crop = pixels[0, :, top:top + self.height, left:left + self.width]
        # Pillow resizes in 8 bits: round and clamp so both paths quantize alike.
        return crop.clamp(0, 255).round()


def torchvision_decodes_on(device: str) -> bool:
    """Whether decode_jpeg runs on `device` here (a CUDA build with nvJPEG, or the CPU)."""
    try:
        import numpy as np
        import torch
        from PIL import Image
        from torchvision.io import decode_jpeg

        buffer = io.BytesIO()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, format="JPEG")
        decode_jpeg(torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8), device=device)
        return True
    except Exception as error:  # noqa: BLE001 - no nvJPEG, no CUDA, an old torchvision: decode on the CPU then
        log.info("torchvision cannot decode JPEGs on %s (%s): decoding with Pillow", device, error)
        return False
