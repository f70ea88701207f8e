"""`conceptfreq export-triton`: the ONNX image tower matches torch numerically, and the config is a
valid Triton ModelConfig for GPU backends (tiny model, fixed random weights; no GPU needed)."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import text_format

pytest.importorskip("onnxruntime")

from conceptfreq.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from conceptfreq.adapters.inference.models import tiny_checkpoint

    root = tmp_path_factory.mktemp("export")
    checkpoint = tiny_checkpoint(root / "weights")
    out = root / "repo"
    assert main(["export-triton", "--model", "conceptfreq-tiny", "--pretrained", str(checkpoint), "--out", str(out),
                 "--max-batch-size", "64"]) == 0
    return out, checkpoint


def test_the_onnx_image_tower_matches_torch(exported):
    import onnxruntime as ort

    from conceptfreq.adapters.inference import open_inference

    out, checkpoint = exported
    (image_model,) = [p for p in out.iterdir() if p.name.endswith("__image")]
    session = ort.InferenceSession(str(image_model / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    backend = open_inference("torch://cpu", "conceptfreq-tiny", str(checkpoint))
    pixels = np.random.default_rng(0).normal(size=(5, 3, *backend.image_size)).astype(np.float32)
    onnx_embeddings = session.run(["EMBEDDINGS"], {"PIXELS": pixels})[0]
    np.testing.assert_allclose(onnx_embeddings, backend.encode_images(pixels), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(onnx_embeddings, axis=1), 1.0, atol=1e-5)
    # the batch axis is dynamic
    assert session.run(["EMBEDDINGS"], {"PIXELS": pixels[:1]})[0].shape == (1, backend.embed_dim)


def test_the_config_is_a_gpu_model_config_with_dynamic_batching_and_tensorrt_fp16(exported):
    from tritonclient.grpc import model_config_pb2

    out, _ = exported
    (image_model,) = [p for p in out.iterdir() if p.name.endswith("__image")]
    config = text_format.Parse((image_model / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.name == image_model.name and config.backend == "onnxruntime" and config.max_batch_size == 64
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert list(config.dynamic_batching.preferred_batch_size) == [16, 32, 64]
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP16"
    assert [t.name for t in config.input] == ["PIXELS"] and list(config.input[0].dims) == [3, 64, 64]
    params = {k: v.string_value for k, v in config.parameters.items()}
    assert params["model"] == "conceptfreq-tiny" and params["model_id"].startswith("conceptfreq-tiny/") and params["embed_dim"] == "64"
    assert "trtexec --onnx=1/model.onnx" in (image_model / "TENSORRT.md").read_text()
    # the text tower comes along as the inference adapter's python-backend model
    (text_model,) = [p for p in out.iterdir() if p.name.endswith("__text")]
    text_config = text_format.Parse((text_model / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert text_config.backend == "python" and text_config.parameters["model_id"].string_value == params["model_id"]


def test_fp16_weights_stay_close_to_fp32(exported, tmp_path):
    import onnxruntime as ort

    from conceptfreq.tagger.onnx_export import convert_to_fp16

    out, _ = exported
    (image_model,) = [p for p in out.iterdir() if p.name.endswith("__image")]
    fp16 = tmp_path / "model.onnx"
    fp16.write_bytes((image_model / "1" / "model.onnx").read_bytes())
    convert_to_fp16(fp16)
    # onnxruntime's CPU graph optimizer crashes on some fp16 graphs; GPUs serve them with the CUDA provider.
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    pixels = np.random.default_rng(1).normal(size=(4, 3, 64, 64)).astype(np.float32)
    full = ort.InferenceSession(str(image_model / "1" / "model.onnx"), providers=["CPUExecutionProvider"]).run(None, {"PIXELS": pixels})[0]
    half = ort.InferenceSession(str(fp16), options, providers=["CPUExecutionProvider"]).run(None, {"PIXELS": pixels})[0]
    assert half.dtype == np.float32
    np.testing.assert_allclose(half, full, atol=5e-3)


def test_unknown_format_is_a_user_error(tmp_path):
    from conceptfreq.errors import UserError
    from conceptfreq.tagger.onnx_export import ExportPlan, export_repository

    with pytest.raises(UserError, match="unknown export format"):
        export_repository(ExportPlan("conceptfreq-tiny", None, tmp_path, format="plan"))
