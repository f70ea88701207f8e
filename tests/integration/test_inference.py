"""The inference adapter on a real Triton server and in process: same embeddings, outages, bad names."""

from __future__ import annotations

import time

import numpy as np
import pytest

from conceptfreq.adapters.inference import open_inference
from conceptfreq.adapters.inference.embeddings import text_embeddings
from conceptfreq.adapters.inference.models import preprocess_config
from conceptfreq.adapters.inference.repository import PYTHON_MODEL_SHIM, write_model_repository
from conceptfreq.core.prompts import make_prompts
from conceptfreq.errors import UnavailableError, UserError
from conceptfreq.evaluator.synthetic import PALETTE, image_bytes
from tests.integration.conftest import triton_outage
from tests.paths import REPO



@pytest.fixture(scope="module")
def local(tiny_model):
    backend = open_inference("torch://cpu", *tiny_model)
    yield backend
    backend.close()


def _decode(data: bytes):
    from conceptfreq.adapters.images import open_image

    return open_image(data)[0]


def _pixels(backend, n: int) -> np.ndarray:
    images = [_decode(image_bytes(PALETTE[i % len(PALETTE)], 40 + i % 30, seed=i)) for i in range(n)]
    return np.stack([backend.preprocess(image) for image in images])


def test_triton_and_torch_give_the_same_embeddings(triton, tiny_model, local):
    remote = open_inference(triton.url, *tiny_model)
    try:
        for name in ("model_id", "image_size", "embed_dim", "precision"):
            assert getattr(remote, name) == getattr(local, name), name
        assert remote.logit_scale == pytest.approx(local.logit_scale) == pytest.approx(100.0, rel=1e-5)
        pixels = _pixels(local, 150)  # more than one max batch (64): chunked and pipelined
        np.testing.assert_array_equal(remote.preprocess(_image()), local.preprocess(_image()))
        images_remote, images_local = remote.encode_images(pixels), local.encode_images(pixels)
        assert images_remote.shape == (150, local.embed_dim) and images_remote.dtype == np.float32
        np.testing.assert_allclose(images_remote, images_local, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(images_remote, axis=1), 1.0, rtol=1e-5)
        texts = [f"a photo of a {w}." for w in ("dog", "cat", "great white shark", "café", "")] * 70
        np.testing.assert_allclose(remote.encode_texts(texts), local.encode_texts(texts), atol=1e-5)
        assert remote.encode_images(pixels[:0]).shape == (0, local.embed_dim)
    finally:
        remote.close()


def _image():
    return _decode(image_bytes((10, 200, 30), 70, seed=3))


def test_preprocess_is_open_clips_eval_transform(tiny_model, local):
    import open_clip

    _, _, transform = open_clip.create_model_and_transforms(*tiny_model)
    np.testing.assert_array_equal(local.preprocess(_image()), transform(_image()).numpy())
    # The config clients compute without weights (for Triton) is the one the model carries.
    assert preprocess_config(tiny_model[0], None) == local._loaded.preprocess_cfg
    import pickle

    clone = pickle.loads(pickle.dumps(local.preprocess))
    np.testing.assert_array_equal(clone(_image()), local.preprocess(_image()))


def test_class_embeddings_are_clip_zero_shot_and_cached(tmp_path, tiny_model, local):
    import open_clip
    import torch

    names = ["dog", "cat", "great white shark"]
    prompts = make_prompts("ensemble")
    ours = text_embeddings(local, names, prompts, cache_dir=tmp_path)
    model = local._loaded.module
    with torch.no_grad():
        reference = open_clip.build_zero_shot_classifier(model, open_clip.get_tokenizer(tiny_model[0]), names,
                                                         open_clip.OPENAI_IMAGENET_TEMPLATES, num_classes_per_batch=2)
    np.testing.assert_allclose(ours, reference.T.numpy(), atol=1e-5)
    cached = list((tmp_path / "embeddings").rglob("*.npy"))
    assert len(cached) == 1 and cached[0].with_suffix(".json").is_file()

    class NoEncoding:
        model_id, precision, embed_dim = local.model_id, local.precision, local.embed_dim

        def encode_texts(self, texts):
            raise AssertionError("the cache should have answered")

    np.testing.assert_array_equal(text_embeddings(NoEncoding(), names, prompts, cache_dir=tmp_path), ours)
    other = text_embeddings(local, names, make_prompts("simple"), cache_dir=tmp_path)
    assert len(list((tmp_path / "embeddings").rglob("*.npy"))) == 2 and not np.allclose(other, ours)


def test_triton_outage_is_unavailable_and_recovers(triton, tiny_model, local):
    remote = open_inference(f"{triton.url}?retries=1", *tiny_model)
    pixels = _pixels(local, 4)
    expected = remote.encode_images(pixels)
    try:
        with triton_outage(triton):
            started = time.monotonic()
            with pytest.raises(UnavailableError, match="unavailable"):
                remote.encode_images(pixels)
            with pytest.raises(UnavailableError):
                open_inference(triton.url, *tiny_model, retries=0)
            assert time.monotonic() - started < 30
        np.testing.assert_allclose(remote.encode_images(pixels), expected, atol=1e-6)
    finally:
        remote.close()


def test_bad_names_are_user_errors(triton, tiny_model, tmp_path):
    with pytest.raises(UserError, match="unknown model 'ViT-B-33'.*did you mean.*ViT-B-32.*valid models:.*RN50"):
        open_inference("torch://", "ViT-B-33", None)
    with pytest.raises(UserError, match="tags of ViT-B-32: openai, laion400m_e31, laion400m_e32"):
        open_inference("torch://", "ViT-B-32", "laion400m_e99")
    with pytest.raises(UserError) as offline:  # HF_HUB_OFFLINE=1 (tests/conftest.py): fails fast
        open_inference("torch://", "ViT-B-32", "laion400m_e32")
    assert str(offline.value).startswith("cannot fetch the weights of ViT-B-32/laion400m_e32") and "\n" not in str(offline.value)
    with pytest.raises(UserError, match="has no model 'RN50__openai__image'; it serves: conceptfreq-tiny"):
        open_inference(triton.url, "RN50", "openai")
    with pytest.raises(UserError, match="unknown precision"):
        open_inference("torch://", *tiny_model, precision="fp8")
    with pytest.raises(UserError, match="unknown inference URL"):
        open_inference("onnx://x", *tiny_model)
    with pytest.raises(UserError, match="takes no option colour"):
        open_inference("torch://?colour=red", *tiny_model)


def test_precisions_on_cpu(tiny_model, local):
    pixels = _pixels(local, 8)
    reference = local.encode_images(pixels)
    for precision in ("bf16", "fp16"):
        low = open_inference("torch://cpu", *tiny_model, precision=precision)
        assert low.model_id == local.model_id and low.precision == precision
        np.testing.assert_allclose(low.encode_images(pixels), reference, atol=0.05)
        np.testing.assert_allclose(low.encode_texts(["a dog"]), local.encode_texts(["a dog"]), atol=0.05)


def test_deploy_repository_is_current(tmp_path):
    """deploy/triton/models is written by write_model_repository; regenerate it rather than edit it."""
    names = write_model_repository(tmp_path, "ViT-B-32", "laion400m_e32", precision_name="fp16", kind="gpu")
    deployed = REPO / "deploy" / "triton" / "models"
    for name in names.values():
        assert (deployed / name / "config.pbtxt").read_text() == (tmp_path / name / "config.pbtxt").read_text(), \
            "stale: run python -m conceptfreq.adapters.inference.repository --model ViT-B-32 --pretrained laion400m_e32 --out deploy/triton/models"
        assert (deployed / name / "1" / "model.py").read_text() == PYTHON_MODEL_SHIM


def test_evaluation_through_triton_matches_in_process(capsys, tmp_path, triton, tiny_model, chdb_url):
    """The same evaluation on triton:// and torch:// gives the same per-class counts."""
    import json

    from conceptfreq.cli import main
    from conceptfreq.evaluator.synthetic import samples, write_wds

    names = ["dog", "cat", "tench", "goose"]
    data = write_wds(tmp_path / "wds", names, samples(4, 5, seed=5, size=40), shards=2)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(names) + "\n")
    results = {}
    for inference in ("torch://cpu", triton.url):
        status = main(["evaluate", "--model", tiny_model[0], "--pretrained", tiny_model[1], "--data", str(data), "--vocab", str(vocab),
                       "--inference", inference, "--store", chdb_url, "--prompts", "simple", "--force", "--json", "--no-progress",
                       "--cache-dir", str(tmp_path / inference.split(":")[0])])
        out, err = capsys.readouterr()
        assert status == 0, err
        results[inference] = json.loads(out)
    local, remote = results.values()
    assert remote["classes"] == local["classes"] and remote["model_ids"] == local["model_ids"] == [local_model_id(tiny_model)]


def local_model_id(tiny_model) -> str:
    from conceptfreq.adapters.inference.models import resolve

    return resolve(*tiny_model).model_id
