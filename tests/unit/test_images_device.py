"""The accelerated image path, checked on the CPU: uint8 pixels, device decoding with per-image
fallback (adapters/images_device.py), scoring with top-k on the model's device
(adapters/inference/device_scoring.py), the tagger's choice of path, and the uint8/float16 wire
formats of the Triton client and the ONNX export. On CUDA the same code runs with nvJPEG, pinned
buffers and streams; `make bench-gpu` exercises that."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from conceptfreq.adapters.images import FastPreprocess, ImageDecoder, normalize_uint8
from conceptfreq.core.tagging import TopScores, top_scores
from conceptfreq.errors import UserError
from tests.tagger_support import torch_backend


def encoded(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def photo(seed: int, size=(96, 80), mode: str = "RGB") -> Image.Image:
    """Smooth colour fields plus a little noise: resizing them is stable, unlike pure noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size[1], 0:size[0]] / max(size)
    base = np.stack([np.sin(x * rng.uniform(1, 6) + rng.uniform(0, 6)), np.cos(y * rng.uniform(1, 6)), x * y], -1)
    pixels = np.clip(127 + 100 * base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB").convert(mode)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    backend = torch_backend(tmp_path_factory.mktemp("tiny"))
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def index(backend):
    from conceptfreq.tagger.stage import ConceptIndex

    rng = np.random.default_rng(3)
    embeddings = rng.normal(size=(40, backend.embed_dim)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return ConceptIndex("v-test", np.arange(500, 540, dtype=np.uint32), tuple(f"c{i}" for i in range(40)), embeddings)


def test_uint8_pixels_normalized_are_exactly_the_float_pixels(backend):
    preprocess = FastPreprocess.wrap(backend.preprocess)
    data = [encoded(photo(i, (120 + 9 * i, 90)), "JPEG", quality=90) for i in range(4)]
    floats = np.stack([ImageDecoder(preprocess)(d).pixels for d in data])
    bytes_ = np.stack([ImageDecoder(preprocess, pixel_format="uint8")(d).pixels for d in data])
    assert bytes_.dtype == np.uint8 and bytes_.shape == (4, *backend.image_size, 3)
    cfg = backend.preprocess.cfg
    np.testing.assert_array_equal(normalize_uint8(bytes_, cfg["mean"], cfg["std"]), floats)


def test_the_device_scorer_gives_the_host_top_k(backend, index):
    from conceptfreq.adapters.inference.device_scoring import DeviceScorer

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (21, *backend.image_size, 3), dtype=np.uint8)
    cfg = backend.preprocess.cfg
    expected = top_scores(backend.encode_images(normalize_uint8(pixels, cfg["mean"], cfg["std"])), index.embeddings,
                          index.concept_ids, logit_scale=backend.logit_scale, k=5)
    scorer = DeviceScorer(backend, index.embeddings, index.concept_ids, k=5, batch_size=8, in_flight=1)
    parts = []
    for start in range(0, 21, 8):
        scorer.submit_host(pixels[start:start + 8])
        parts.extend(scorer.finished())
        assert len(scorer._pending) <= 1  # at most in_flight batches wait on the device
    parts.extend(scorer.drain())
    assert [len(p) for p in parts] == [8, 8, 5]
    got = TopScores.concat(parts, k=5, logit_scale=backend.logit_scale, vocabulary_size=40)
    np.testing.assert_array_equal(got.concept_ids, expected.concept_ids)
    np.testing.assert_allclose(got.cosines, expected.cosines, atol=1e-5)
    np.testing.assert_allclose(got.lse, expected.lse, atol=1e-4)


def cmyk_jpeg() -> bytes:
    return encoded(photo(7).convert("CMYK"), "JPEG")


def shard_images() -> list[tuple[str, bytes | None]]:
    good = [encoded(photo(i, (100 + 13 * i, 70 + 5 * i)), "JPEG", quality=92) for i in range(10)]
    truncated = good[0][: len(good[0]) // 2]
    return ([(f"k{i:02d}", d) for i, d in enumerate(good)]
            + [("png", encoded(photo(20), "PNG")), ("grey", encoded(photo(21, mode="L"), "JPEG", quality=92)),
               ("cmyk", cmyk_jpeg()), ("truncated", truncated), ("garbage", b"\xff\xd8\xff" + b"\x00junk" * 20 + b"\xff\xd9"),
               ("empty", b""), ("missing", None), ("bomb", encoded(Image.new("RGB", (3000, 3000)), "JPEG"))])


def test_device_decoding_skips_and_notes_as_the_pillow_path_does_and_scores_alike(backend, index):
    from conceptfreq.tagger.stage import DecodeOptions, TagImages

    images = shard_images()
    results = {}
    for decoder in ("pil", "torchvision"):
        tagger = TagImages(backend, top_k=5, batch_size=6,
                           decode=DecodeOptions(workers=0, decoder=decoder, max_pixels=4_000_000, draft=False))
        assert tagger.path == ("host" if decoder == "pil" else "device")
        try:
            results[decoder] = tagger.run(images, index)
        finally:
            tagger.close()
    (keys_cpu, top_cpu, skipped_cpu, notes_cpu, seen_cpu), (keys_dev, top_dev, skipped_dev, notes_dev, seen_dev) = (
        results["pil"], results["torchvision"])
    assert seen_cpu == seen_dev == len(images)
    assert keys_dev == keys_cpu and len(top_dev) == len(keys_dev)
    assert skipped_dev == skipped_cpu == Counter({"truncated": 1, "undecodable": 1, "empty_image": 1, "no_image": 1,
                                                  "too_many_pixels": 1})
    assert notes_dev == notes_cpu and notes_dev["converted_grey"] == 1 and notes_dev["converted_cmyk"] == 1
    # Device resizing is antialiased bicubic, Pillow's is its own: scores agree closely, not bit for bit.
    np.testing.assert_allclose(top_dev.cosines[:, 0], top_cpu.cosines[:, 0], atol=0.02)
    assert (top_dev.concept_ids[:, 0] == top_cpu.concept_ids[:, 0]).mean() >= 0.8


def test_the_path_is_chosen_from_the_backend_and_the_flag(backend):
    from conceptfreq.tagger.stage import choose_path

    assert choose_path(backend, "auto") == "host"      # CPU: the unchanged Pillow path
    assert choose_path(backend, "pil") == "host"
    assert choose_path(backend, "torchvision") == "device"

    class RemoteBackend:
        scheme = "triton"

    with pytest.raises(UserError, match="torch://"):
        choose_path(RemoteBackend(), "torchvision")
    with pytest.raises(UserError, match="unknown image decoder"):
        choose_path(backend, "nvdec")


def triton_client_with(input_format: str, backend):
    """A TritonBackend's wire conversion without a server (the integration tests use a real one)."""
    from conceptfreq.adapters.inference.repository import input_format as wire
    from conceptfreq.adapters.inference.triton_backend import TritonBackend

    client = TritonBackend.__new__(TritonBackend)
    cfg = backend.preprocess.cfg
    client.image_size, client.input_format = backend.image_size, input_format
    client._wire_type, client._layout = wire(input_format)[1:]
    client._mean = np.asarray(cfg["mean"], np.float32)[:, None, None]
    client._std = np.asarray(cfg["std"], np.float32)[:, None, None]
    return client


def test_float_pixels_for_a_uint8_model_are_restored_exactly(backend):
    rng = np.random.default_rng(1)
    original = rng.integers(0, 256, (6, *backend.image_size, 3), dtype=np.uint8)
    cfg = backend.preprocess.cfg
    floats = normalize_uint8(original, cfg["mean"], cfg["std"])
    client = triton_client_with("uint8", backend)
    np.testing.assert_array_equal(client._wire_pixels(floats), original)
    np.testing.assert_array_equal(client._wire_pixels(original), original)
    assert triton_client_with("float16", backend)._wire_pixels(floats).dtype == np.float16
    np.testing.assert_array_equal(triton_client_with("float32", backend)._wire_pixels(original), floats)
    with pytest.raises(UserError, match="uint8 pixels must be"):
        client._wire_pixels(original[:, :10])


def test_the_onnx_tower_with_uint8_input_normalizes_inside(tmp_path, backend):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from conceptfreq.tagger.onnx_export import ExportPlan, export_repository

    written = export_repository(ExportPlan(backend.model, backend.pretrained, tmp_path, input_format="uint8", text_tower=False,
                                           max_batch_size=16))
    folder = written["image"]
    config = text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.input[0].data_type == model_config_pb2.TYPE_UINT8 and list(config.input[0].dims) == [*backend.image_size, 3]
    assert {k: v.string_value for k, v in config.parameters.items()}["input_format"] == "uint8"
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (3, *backend.image_size, 3), dtype=np.uint8)
    session = ort.InferenceSession(str(folder / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    cfg = backend.preprocess.cfg
    np.testing.assert_allclose(session.run(["EMBEDDINGS"], {"PIXELS": pixels})[0],
                               backend.encode_images(normalize_uint8(pixels, cfg["mean"], cfg["std"])), atol=1e-5)


def test_an_unknown_wire_format_is_a_user_error(tmp_path, backend):
    from conceptfreq.adapters.inference.repository import write_model_repository

    with pytest.raises(UserError, match="unknown image input format"):
        write_model_repository(tmp_path, backend.model, backend.pretrained, image_input="int4")
