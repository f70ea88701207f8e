"""Which open_clip model, with which weights, at which precision: resolved here once for both
backends, so `torch://` and `triton://` (whose server-side model.py calls `load_clip` too) build
exactly the same network and preprocessing.

- **Model names** are open_clip's (`open_clip.list_models()`) plus the project's own configs in
  `model_configs/` (`conceptfreq-tiny`: a 64 px, 2-layer CLIP for tests and demos).
- **`pretrained`** is an open_clip tag (`laion400m_e32`; downloaded by open_clip, so it works where
  the hub is reachable), a local checkpoint file, or None for random weights from a fixed seed
  (benchmarks; reproducible in every process).
- **`model_id`** names the weights for cache keys: `MODEL/TAG`, `MODEL/FILESTEM@sha256:PREFIX` or
  `MODEL/random-seed0`. A checkpoint is identified by its content, not its path, so a copy on
  another machine shares the caches.
- **Precisions** are a registry (PRECISIONS): on CUDA the weights are cast (fast kernels); on CPU
  the weights stay fp32 and autocast runs the matmuls in the low precision, because CPU half
  kernels are missing or slower than fp32 for many ops.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from conceptfreq.errors import UserError

log = logging.getLogger(__name__)

PROJECT_CONFIGS = Path(__file__).with_name("model_configs")
TINY_MODEL = "conceptfreq-tiny"
RANDOM_SEED = 0


@dataclass(frozen=True)
class Precision:
    name: str
    cuda_weights: str            # open_clip's `precision` argument when the model runs on CUDA
    cpu_autocast: str | None     # torch dtype name for CPU autocast; None: plain fp32


PRECISIONS: dict[str, Precision] = {
    "fp32": Precision("fp32", "fp32", None),
    "fp16": Precision("fp16", "fp16", "float16"),
    "bf16": Precision("bf16", "bf16", "bfloat16"),
}


def precision(name: str) -> Precision:
    try:
        return PRECISIONS[name]
    except KeyError:
        raise UserError(f"unknown precision {name!r}: choose one of {', '.join(PRECISIONS)}") from None


@lru_cache(maxsize=1)
def _open_clip():
    """open_clip with the project's model configs registered (once per process)."""
    import open_clip

    open_clip.add_model_config(PROJECT_CONFIGS)
    return open_clip


def list_models() -> list[str]:
    return _open_clip().list_models()


def check_model(model: str) -> None:
    names = list_models()
    if model not in names:
        close = difflib.get_close_matches(model, names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown model {model!r}{hint}; valid models: {', '.join(names)}")


@dataclass(frozen=True)
class Weights:
    """Resolved weights of one model; nothing downloaded yet."""

    model: str
    pretrained: str | None       # as the user gave it
    source: str                  # "tag" | "file" | "random"
    label: str                   # short name: the tag, the file stem, or "random-seed0"
    model_id: str

    @property
    def quick_gelu(self) -> bool:
        # Tags trained with QuickGELU (e.g. ViT-B-32/laion400m_e32) only match their weights with it;
        # open_clip merely warns, which silently costs accuracy.
        return self.source == "tag" and bool(_open_clip().get_pretrained_cfg(self.model, self.pretrained).get("quick_gelu"))


def resolve(model: str, pretrained: str | None) -> Weights:
    """Validate the model name and the weights; UserError lists the valid choices."""
    check_model(model)
    if not pretrained:
        return Weights(model, None, "random", f"random-seed{RANDOM_SEED}", f"{model}/random-seed{RANDOM_SEED}")
    open_clip = _open_clip()
    if open_clip.get_pretrained_cfg(model, pretrained):
        return Weights(model, pretrained, "tag", pretrained, f"{model}/{pretrained}")
    path = Path(pretrained).expanduser()
    if path.is_file():
        return Weights(model, str(path), "file", path.stem, f"{model}/{path.stem}@sha256:{file_digest(path)[:16]}")
    tags = open_clip.list_pretrained_tags_by_model(model)
    raise UserError(f"pretrained {pretrained!r} is neither a tag of {model} nor a checkpoint file; "
                    f"tags of {model}: {', '.join(tags) or 'none (use a checkpoint file)'}")


def file_digest(path: Path) -> str:
    stat = path.stat()
    return _digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(weights: Weights, cache_dir: str | None = None) -> None:
    """Download a tag's weights now, so that failure is one line, not open_clip's logged traceback."""
    if weights.source != "tag":
        return
    open_clip = _open_clip()
    try:
        open_clip.download_pretrained(open_clip.get_pretrained_cfg(weights.model, weights.pretrained), cache_dir=cache_dir)
    except Exception as error:  # noqa: BLE001 - hub and HTTP errors come in many types
        first = " ".join(str(error).split()).split(". ")[0][:160]
        raise UserError(f"cannot fetch the weights of {weights.model}/{weights.pretrained}: offline, or the hub is unreachable "
                        f"({type(error).__name__}: {first}); pass a local checkpoint file as --pretrained") from None


def preprocess_config(model: str, pretrained: str | None) -> dict[str, Any]:
    """open_clip's eval preprocessing for (model, weights), computed without building the model:
    defaults, then the tag's mean/std/resize settings, then the model's image size (as create_model does)."""
    open_clip = _open_clip()
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict
    from dataclasses import asdict

    cfg = asdict(PreprocessCfg())
    if pretrained:
        cfg = merge_preprocess_dict(cfg, open_clip.get_pretrained_cfg(model, pretrained))
    vision = (open_clip.get_model_config(model) or {}).get("vision_cfg", {})
    if "image_size" in vision:
        cfg["size"] = vision["image_size"]
    return _plain(cfg)


def _plain(cfg: dict) -> dict:
    """JSON-safe and comparable: tuples become lists, and the size is always [H, W]."""
    out = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
    if isinstance(out.get("size"), (int, float)):
        out["size"] = [int(out["size"])] * 2
    return out


def image_size(cfg: dict) -> tuple[int, int]:
    size = cfg["size"]
    return (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[1]))


class Preprocessor:
    """open_clip's eval transform as a picklable callable: PIL image -> float32 (3, H, W).

    Only the config travels when pickled (to worker processes); the torchvision pipeline is rebuilt
    lazily on first use, because Compose objects are neither small nor reliably picklable."""

    def __init__(self, cfg: dict[str, Any]):
        self.cfg = dict(cfg)
        self._transform = None

    def __call__(self, image) -> np.ndarray:
        if self._transform is None:
            open_clip = _open_clip()
            self._transform = open_clip.image_transform(
                self.cfg["size"], is_train=False, mean=tuple(self.cfg["mean"]), std=tuple(self.cfg["std"]),
                resize_mode=self.cfg.get("resize_mode"), interpolation=self.cfg.get("interpolation"),
                fill_color=self.cfg.get("fill_color", 0))
        return self._transform(image).numpy().astype(np.float32, copy=False)

    def __getstate__(self):
        return {"cfg": self.cfg}

    def __setstate__(self, state):
        self.cfg, self._transform = state["cfg"], None

    def __repr__(self) -> str:
        return f"Preprocessor({self.cfg})"


def pick_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for, but no CUDA device is available: use --device cpu (or auto)")
    return device


@dataclass
class LoadedModel:
    module: Any                  # open_clip CLIP in eval mode
    tokenizer: Any
    preprocess_cfg: dict[str, Any]
    input_dtype: Any             # torch dtype the image tower takes
    autocast: Any                # callable returning a context manager
    logit_scale: float
    embed_dim: int


def load_clip(weights: Weights, device: str, precision_name: str = "fp32", cache_dir: str | None = None) -> LoadedModel:
    """Build the open_clip model with its weights on `device`, in eval mode."""
    import torch

    open_clip = _open_clip()
    chosen = precision(precision_name)
    fetch(weights, cache_dir)
    on_cuda = device.startswith("cuda")
    cast = chosen.cuda_weights if on_cuda else "fp32"
    kwargs = dict(precision=cast, device=device, cache_dir=cache_dir, force_quick_gelu=weights.quick_gelu)
    if weights.source == "random":
        # fork_rng: seeding must not disturb the caller's random stream.
        with torch.random.fork_rng(devices=[]), _quiet_random_init():
            torch.manual_seed(RANDOM_SEED)
            module = open_clip.create_model(weights.model, pretrained=None, **kwargs)
    else:
        module = open_clip.create_model(weights.model, pretrained=weights.pretrained, **kwargs)
    module.eval()
    autocast_dtype = None if on_cuda or chosen.cpu_autocast is None else getattr(torch, chosen.cpu_autocast)

    def autocast():
        if autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=autocast_dtype)

    with torch.no_grad():
        scale = float(module.logit_scale.exp().float().item())
    return LoadedModel(module=module, tokenizer=open_clip.get_tokenizer(weights.model),
                       preprocess_cfg=_plain(dict(open_clip.get_model_preprocess_cfg(module))),
                       input_dtype=open_clip.get_input_dtype(cast) or torch.float32, autocast=autocast,
                       logit_scale=scale, embed_dim=int(getattr(module, "embed_dim", 0) or module.text_projection.shape[-1]))


class _DropRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()


@contextlib.contextmanager
def _quiet_random_init():
    """open_clip warns on the root logger that a model without weights is random; here that is the point."""
    root, quiet = logging.getLogger(), _DropRandomInitWarning()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


def tiny_checkpoint(directory: str | os.PathLike, seed: int = 0) -> Path:
    """Write (or reuse) the project's deterministic tiny CLIP checkpoint; returns its path.

    The weights depend only on `seed`, so every process (and the Triton server) that loads this
    file gets the same network. Use it as `pretrained` with model `conceptfreq-tiny`."""
    import torch

    path = Path(directory) / f"{TINY_MODEL}-seed{seed}.pt"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    open_clip = _open_clip()
    with torch.random.fork_rng(devices=[]), _quiet_random_init():
        torch.manual_seed(seed)
        module = open_clip.create_model(TINY_MODEL, pretrained=None)
        # A logit scale of 100 (CLIP's trained value) rather than the init's 14.3, so softmax-based
        # tagging rules behave as they would with real weights.
        module.logit_scale.data.fill_(float(np.log(100.0)))
    partial = path.with_suffix(".partial")
    torch.save(module.state_dict(), partial)
    partial.replace(path)  # atomic: concurrent test workers never read half a file
    return path
