"""A Triton model repository for GPU backends: the open_clip image tower as ONNX.

    export_repository(ExportPlan("ViT-B-32", "laion400m_e32", out="deploy/triton/gpu"))

writes
- `<model>__<weights>__image/1/model.onnx` + `config.pbtxt`: the image tower for Triton's
  onnxruntime backend, KIND_GPU instances, dynamic batching, and fp16 in one of two ways:
  - `precision="fp16"` (default): TensorRT as the execution accelerator with precision_mode FP16;
    the ONNX file stays fp32 and TensorRT builds (and caches) fp16 engines when the model loads;
  - `fp16_weights=True`: the ONNX weights themselves converted to fp16 (inputs and outputs stay
    fp32), for the plain CUDA execution provider, where TensorRT is not wanted;
- `<model>__<weights>__text/`: the text tower, as the inference adapter's python-backend model
  (text is encoded once per vocabulary; it does not need an optimized graph);
- `<model>__<weights>__image/TENSORRT.md`: the trtexec command that turns the ONNX file into a
  TensorRT plan, and the config for Triton's tensorrt backend (see docs/tagging.md).

`input_format` picks the image tower's input on the wire (adapters/inference/repository.py
INPUT_FORMATS): float32 (N, 3, H, W) as before; float16, half the bytes; uint8 (N, H, W, 3), the
resized and cropped image with open_clip's normalization inside the graph, a quarter of the bytes.
The `input_format` parameter tells `triton://` clients which one to send.

The image model keeps the name, tensors (PIXELS -> EMBEDDINGS, L2-normalized) and config
parameters (model_id, preprocess, embed_dim...) of the python-backend repository
(adapters/inference/repository.py), so `triton://` clients use either without a change.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from conceptfreq.errors import UserError

log = logging.getLogger(__name__)

OPSET = 17  # LayerNormalization is a single op from 17 on; TensorRT 8.6+ and ORT 1.14+ take it


@dataclass
class ExportPlan:
    model: str
    pretrained: str | None
    out: str | Path
    format: str = "onnx"
    precision: str = "fp16"           # "fp16": TensorRT FP16 accelerator; "fp32": none
    fp16_weights: bool = False
    max_batch_size: int = 256
    instances: int = 1
    max_queue_delay_us: int = 2000
    text_tower: bool = True
    trt_workspace_bytes: int = 4 << 30
    trt_cache_path: str = "/tmp/triton-trt-cache"
    input_format: str = "float32"


def _pbtxt(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid pbtxt string literal for what we write


def image_config(name: str, plan: ExportPlan, *, height: int, width: int, embed_dim: int, parameters: dict[str, str]) -> str:
    from conceptfreq.adapters.inference.repository import input_dims, input_format

    preferred = sorted({b for b in (plan.max_batch_size // 4, plan.max_batch_size // 2, plan.max_batch_size) if b >= 1})
    lines = [
        "# Written by `conceptfreq export-triton`; regenerate rather than edit.",
        f"name: {_pbtxt(name)}",
        'backend: "onnxruntime"',
        f"max_batch_size: {int(plan.max_batch_size)}",
        f'input [ {{ name: "PIXELS" data_type: {input_format(plan.input_format)[0]} dims: [ {input_dims(plan.input_format, height, width)} ] }} ]',
        f'output [ {{ name: "EMBEDDINGS" data_type: TYPE_FP32 dims: [ {embed_dim} ] }} ]',
        "dynamic_batching {",
        f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]",
        f"  max_queue_delay_microseconds: {int(plan.max_queue_delay_us)}",
        "}",
        f"instance_group [ {{ kind: KIND_GPU count: {int(plan.instances)} }} ]",
    ]
    if plan.precision == "fp16":
        # TensorRT builds fp16 engines from the fp32 graph when the model loads (minutes for
        # ViT-L-14), and caches them, so a restart on the same GPU and TensorRT version is quick.
        accelerator = {"precision_mode": "FP16", "max_workspace_size_bytes": str(plan.trt_workspace_bytes),
                       "trt_engine_cache_enable": "1", "trt_engine_cache_path": f"{plan.trt_cache_path}/{name}"}
        lines += ["optimization { execution_accelerators {", "  gpu_execution_accelerator: [ {", '    name: "tensorrt"']
        lines += [f"    parameters {{ key: {_pbtxt(k)} value: {_pbtxt(v)} }}" for k, v in accelerator.items()]
        lines += ["  } ]", "} }"]
    lines += [f"parameters {{ key: {_pbtxt(k)} value: {{ string_value: {_pbtxt(v)} }} }}" for k, v in parameters.items()]
    return "\n".join(lines) + "\n"


def tensorrt_notes(name: str, plan: ExportPlan, *, height: int, width: int, embed_dim: int) -> str:
    from conceptfreq.adapters.inference.repository import input_dims, input_format

    opt = max(1, plan.max_batch_size // 2)
    dims = input_dims(plan.input_format, height, width).replace(", ", "x")
    shapes = lambda n: f"PIXELS:{n}x{dims}"  # noqa: E731
    return f"""# Building a TensorRT plan from model.onnx

On a machine with the target GPU and the TensorRT version of the Triton container that will serve
it (a plan only runs where it was built):

    trtexec --onnx=1/model.onnx --saveEngine=1/model.plan --fp16 \\
        --minShapes={shapes(1)} --optShapes={shapes(opt)} --maxShapes={shapes(plan.max_batch_size)}

Then serve the plan with Triton's tensorrt backend: in config.pbtxt replace the backend line and
drop the `optimization` block (the plan is already fp16):

    platform: "tensorrt_plan"
    max_batch_size: {plan.max_batch_size}
    input [ {{ name: "PIXELS" data_type: {input_format(plan.input_format)[0]} dims: [ {input_dims(plan.input_format, height, width)} ] }} ]
    output [ {{ name: "EMBEDDINGS" data_type: TYPE_FP32 dims: [ {embed_dim} ] }} ]

and remove 1/model.onnx. Keep the `parameters` entries: triton:// clients read them.
"""


def export_onnx(plan: ExportPlan) -> dict[str, Path]:
    import torch

    from conceptfreq.adapters.inference.models import _open_clip, image_size, load_clip, preprocess_config, resolve
    from conceptfreq.adapters.inference.repository import triton_model_name, write_model_repository

    weights = resolve(plan.model, plan.pretrained)
    loaded = load_clip(weights, "cpu", "fp32")
    preprocess = preprocess_config(plan.model, weights.pretrained if weights.source == "tag" else None)
    height, width = image_size(preprocess)
    embed_dim = int(_open_clip().get_model_config(plan.model)["embed_dim"])
    name = triton_model_name(plan.model, plan.pretrained, "image")
    folder = Path(plan.out) / name
    (folder / "1").mkdir(parents=True, exist_ok=True)
    path = folder / "1" / "model.onnx"
    tower = normalized_image_tower(loaded.module.visual, plan.input_format, preprocess).eval()
    example = {"uint8": torch.zeros(2, height, width, 3, dtype=torch.uint8),
               "float16": torch.zeros(2, 3, height, width, dtype=torch.float16)}.get(plan.input_format,
                                                                                     torch.zeros(2, 3, height, width))
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # The TorchScript exporter (the torch.export-based one needs onnxscript, which the image lacks)
    # cannot export MultiheadAttention's fused inference kernel: trace the plain ops instead.
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(tower, (example,), str(path), input_names=["PIXELS"],
                              output_names=["EMBEDDINGS"],
                              dynamic_axes={"PIXELS": {0: "batch"}, "EMBEDDINGS": {0: "batch"}}, opset_version=OPSET,
                              do_constant_folding=True, dynamo=False)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    if plan.fp16_weights:
        convert_to_fp16(path)
    import onnx

    onnx.checker.check_model(str(path))
    parameters = {"role": "image", "model": plan.model, "pretrained": weights.pretrained or "",
                  "precision": "fp16" if plan.precision == "fp16" or plan.fp16_weights else "fp32",
                  "model_id": weights.model_id, "weights_label": weights.label, "format": "onnx",
                  "input_format": plan.input_format,
                  "preprocess": json.dumps(preprocess, sort_keys=True), "embed_dim": str(embed_dim)}
    (folder / "config.pbtxt").write_text(image_config(name, plan, height=height, width=width, embed_dim=embed_dim,
                                                      parameters=parameters))
    (folder / "TENSORRT.md").write_text(tensorrt_notes(name, plan, height=height, width=width, embed_dim=embed_dim))
    written = {"image": folder}
    if plan.text_tower:
        text = write_model_repository(plan.out, plan.model, plan.pretrained, precision_name=plan.precision, kind="gpu",
                                      instances=plan.instances, towers=("text",))
        written["text"] = Path(plan.out) / text["text"]
    return written


def convert_to_fp16(path: Path) -> None:
    """fp16 weights and arithmetic, fp32 inputs and outputs (clients keep sending fp32 pixels)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
    onnx.save(model, str(path))


def normalized_image_tower(visual, input_format: str = "float32", preprocess: dict | None = None):
    """The visual tower with CLIP's L2 normalization, so Triton returns what the python-backend
    model and torch:// return; for uint8 input, open_clip's ToTensor + Normalize first, in
    FastPreprocess's float32 arithmetic. (A class made here, so that importing this module needs
    no torch.)"""
    import torch

    mean = torch.tensor((preprocess or {}).get("mean", (0.0, 0.0, 0.0)), dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor((preprocess or {}).get("std", (1.0, 1.0, 1.0)), dtype=torch.float32).view(1, 3, 1, 1)

    class NormalizedImageTower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = visual
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)

        def forward(self, pixels):
            if input_format == "uint8":
                pixels = (pixels.permute(0, 3, 1, 2).float() / 255.0 - self.mean) / self.std
            elif input_format == "float16":
                pixels = pixels.float()
            features = self.visual(pixels)
            return features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    return NormalizedImageTower()


EXPORT_FORMATS: dict[str, Callable[[ExportPlan], dict[str, Path]]] = {"onnx": export_onnx}


def export_repository(plan: ExportPlan) -> dict[str, Path]:
    exporter = EXPORT_FORMATS.get(plan.format)
    if exporter is None:
        raise UserError(f"unknown export format {plan.format!r}: choose one of {', '.join(EXPORT_FORMATS)} "
                        "(a TensorRT plan is built from the ONNX file on the serving GPU: see TENSORRT.md in the output)")
    if plan.precision not in ("fp16", "fp32"):
        raise UserError(f"precision must be fp16 or fp32, not {plan.precision!r}")
    from conceptfreq.adapters.inference.repository import input_format

    input_format(plan.input_format)
    if plan.max_batch_size < 1 or plan.instances < 1:
        raise UserError("max batch size and instances must be at least 1")
    return exporter(plan)
