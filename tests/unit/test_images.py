"""Bad images are skipped with a counted reason; odd pixel formats are converted (adapters/images.py)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conceptfreq.adapters.images import SKIP_REASONS, DecodePool, ImageDecoder, open_image


def encoded(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def noise(mode: str = "RGB", size=(48, 32), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB").convert(mode)


def png_with_size(width: int, height: int) -> bytes:
    """A valid small PNG whose header claims another size: what a decompression bomb looks like
    before decoding (the pixels are never read)."""
    data = encoded(Image.new("RGB", (8, 8)), "PNG")
    header = bytearray(data[16:29])
    header[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(header)) & 0xFFFFFFFF)
    return data[:16] + bytes(header) + crc + data[33:]


def small(image: Image.Image) -> np.ndarray:
    """A stand-in for open_clip's transform: RGB image -> float32 (3, 8, 8)."""
    assert image.mode == "RGB"
    return np.asarray(image.resize((8, 8)), dtype=np.float32).transpose(2, 0, 1) / 255


JPEG = encoded(noise(size=(256, 256)), "JPEG", quality=90)

BAD = {
    "no_image": None,
    "empty_image": b"",
    "undecodable": b"GIF89a but not really an image" * 3,
    "truncated": JPEG[: len(JPEG) // 2],
    "too_many_pixels": png_with_size(9000, 9000),  # 81 MP: under Pillow's own limit, over ours
}


@pytest.mark.parametrize("reason", sorted(BAD))
def test_each_bad_image_is_skipped_with_its_reason(reason):
    decoded = ImageDecoder(small)(BAD[reason])
    assert decoded.pixels is None and decoded.skipped == reason and reason in SKIP_REASONS


def test_a_bomb_beyond_pillows_own_limit_is_the_same_reason():
    decoded = ImageDecoder(small)(png_with_size(100_000, 100_000))
    assert decoded.skipped == "too_many_pixels"


def test_the_pixel_cap_is_per_decoder():
    assert ImageDecoder(small, max_pixels=100)(encoded(noise(size=(11, 10)), "PNG")).skipped == "too_many_pixels"
    assert ImageDecoder(small, max_pixels=110)(encoded(noise(size=(11, 10)), "PNG")).skipped is None


def rgba_half_transparent() -> Image.Image:
    image = Image.new("RGBA", (16, 16), (255, 0, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, 8, 16))  # left half: transparent black
    return image


def sixteen_bit_grey() -> Image.Image:
    ramp = np.tile(np.linspace(0, 65535, 16, dtype=np.uint16), (16, 1))
    return Image.fromarray(ramp)  # mode I;16


@pytest.mark.parametrize("make, format, note", [
    (lambda: noise("CMYK"), "JPEG", "converted_cmyk"),
    (lambda: noise("L"), "PNG", "converted_grey"),
    (lambda: noise("1"), "PNG", "converted_grey"),
    (lambda: noise("P"), "PNG", "converted_palette"),
    (lambda: noise("P"), "GIF", "converted_palette"),
    (rgba_half_transparent, "PNG", "converted_alpha"),
    (lambda: noise("LA"), "PNG", "converted_alpha"),
    (sixteen_bit_grey, "PNG", "converted_16bit"),
    (lambda: noise("RGB"), "WEBP", None),
])
def test_odd_pixel_formats_are_converted_and_noted(make, format, note):
    decoded = ImageDecoder(small)(encoded(make(), format))
    assert decoded.skipped is None and decoded.note == note
    assert decoded.pixels.shape == (3, 8, 8) and decoded.pixels.dtype == np.float32


def test_transparency_is_composited_over_white_and_16_bit_is_scaled_not_clipped():
    image, _ = open_image(encoded(rgba_half_transparent(), "PNG"))
    assert image.getpixel((2, 2)) == (255, 255, 255) and image.getpixel((12, 2)) == (255, 0, 0)
    grey, _ = open_image(encoded(sixteen_bit_grey(), "PNG"))
    row = [grey.getpixel((x, 0))[0] for x in range(16)]
    assert row[0] == 0 and row[-1] == 255 and row == sorted(row) and len(set(row)) > 10


def test_a_palette_image_with_a_transparent_colour_is_composited():
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    decoded, note = open_image(encoded(image, "PNG", transparency=1))
    assert note == "converted_palette"
    assert decoded.getpixel((0, 0)) == (255, 255, 255)


def test_unsupported_modes_are_skipped():
    floats = Image.fromarray(np.ones((8, 8), np.float32), "F")
    assert ImageDecoder(small)(encoded(floats, "TIFF")).skipped == "unsupported_mode"


def test_a_failing_transform_is_a_skip_not_an_exception():
    def broken(image):
        raise RuntimeError("boom")
    assert ImageDecoder(broken)(JPEG).skipped == "undecodable"


def test_jpeg_draft_decodes_at_reduced_size_but_never_below_the_target():
    seen = []
    decoder = ImageDecoder(lambda image: seen.append(image.size) or small(image), draft_size=(64, 64))
    assert decoder(JPEG).skipped is None
    assert seen == [(64, 64)]  # 256 -> 1/4 scale
    ImageDecoder(lambda image: seen.append(image.size) or small(image))(JPEG)
    assert seen[-1] == (256, 256)


@pytest.mark.parametrize("workers, executor", [(0, "thread"), (3, "thread")])
def test_the_pool_keeps_order_and_bounds_work_in_flight(workers, executor):
    images = [encoded(noise(seed=i), "PNG") if i % 5 else b"" for i in range(41)]
    with DecodePool(ImageDecoder(small), workers=workers, executor=executor, chunk=4) as pool:
        decoded = list(pool.map(iter(images)))
    assert [d.skipped for d in decoded] == [None if i % 5 else "empty_image" for i in range(41)]
    expected = small(noise(seed=7))
    np.testing.assert_array_equal(decoded[7].pixels, expected)


def test_the_process_pool_gives_the_same_pixels():
    images = [encoded(noise(seed=i), "JPEG") for i in range(6)] + [None]
    with DecodePool(ImageDecoder(small), workers=2, executor="process", chunk=2) as pool:
        decoded = list(pool.map(images))
    for image, result in zip(images[:-1], decoded):
        np.testing.assert_array_equal(result.pixels, ImageDecoder(small)(image).pixels)
    assert decoded[-1].skipped == "no_image"


@pytest.mark.parametrize("model", ["conceptfreq-tiny", "ViT-B-32"])
def test_the_numpy_preprocessing_tail_gives_open_clips_exact_values(model):
    from conceptfreq.adapters.images import FastPreprocess
    from conceptfreq.adapters.inference.models import Preprocessor, preprocess_config

    reference = Preprocessor(preprocess_config(model, None))
    fast = FastPreprocess.wrap(reference)
    assert isinstance(fast, FastPreprocess)
    for size in [(256, 256), (300, 200), (123, 457), (7, 5)]:
        image = noise(size=size, seed=size[0])
        np.testing.assert_array_equal(fast(image), reference(image))
    import pickle
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fast))(image), reference(image))
