"""Training a small CLIP on image-caption shards, on the CPU: open_clip's model configs and its
`ClipLoss`, nothing hand-written. The checkpoint is a plain state dict, the format open_clip's
`create_model(..., pretrained=PATH)` loads, so the tagger and the evaluator take it by path
(`--model conceptfreq-world --pretrained ckpt.pt`) like the project's tiny test model.

Reproducible: the same shards, config and seed give the same weights (fixed torch seed, fixed
thread count, seeded batch order). Images are decoded once into memory (a 20k-pair world at 64 px
is 250 MB) and normalized exactly as open_clip's eval transform does, so training and inference
see the same pixels.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from conceptfreq.errors import UserError

# Short names for `--config`; any open_clip model name (or a project config) is accepted too.
CONFIG_ALIASES = {
    "world": "conceptfreq-world",   # 64 px, 2+2 layers of width 128, 32-token context: ~4 steps/s at batch 256 on 2 cores
    "tiny": "conceptfreq-tiny",     # the same towers with CLIP's 77-token context (the test model's config): ~3x slower
}


@dataclass(frozen=True)
class TrainConfig:
    model: str = "conceptfreq-world"
    steps: int = 600
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.1
    warmup: int = 50
    seed: int = 0
    threads: int = 1

    def validate(self) -> "TrainConfig":
        from conceptfreq.adapters.inference.models import check_model

        check_model(self.model)
        for name, low in (("steps", 1), ("batch_size", 2), ("threads", 1)):
            if getattr(self, name) < low:
                raise UserError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")
        if not self.lr > 0:
            raise UserError(f"--lr must be positive, got {self.lr}")
        return self


def resolve_config(name: str) -> str:
    return CONFIG_ALIASES.get(name, name)


@dataclass
class TrainResult:
    checkpoint: str
    config: dict
    pairs: int
    seconds: float
    steps_per_second: float
    load_seconds: float
    losses: list[tuple[int, float]] = field(default_factory=list)   # (step, mean loss since the previous entry)
    logit_scale: float = 0.0
    shards_digest: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def _digest(paths: list[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        stat = Path(path).stat()
        digest.update(f"{Path(path).name}:{stat.st_size}\n".encode())
    return digest.hexdigest()[:16]


def load_pairs(shards: list[str], size: tuple[int, int], progress: bool = True) -> tuple[np.ndarray, list[str]]:
    """Every decodable (image, caption) pair of the shards: uint8 (N, H, W, 3) and the captions."""
    from PIL import Image
    from tqdm import tqdm

    from conceptfreq.adapters.shards import ShardError, read_shard

    images, captions = [], []
    for url in tqdm(shards, unit="shard", desc="train-clip: reading", disable=not progress, dynamic_ncols=True):
        try:
            for sample in read_shard(url, with_images=True):
                if sample.image is None or not sample.caption:
                    continue
                image = Image.open(io.BytesIO(sample.image)).convert("RGB")
                if image.size != (size[1], size[0]):
                    image = image.resize((size[1], size[0]), Image.BICUBIC)
                images.append(np.asarray(image, np.uint8))
                captions.append(sample.caption)
        except ShardError as error:
            raise UserError(f"cannot read training shard {url}: {error}") from None
    if not images:
        raise UserError("the training shards hold no image-caption pairs")
    return np.stack(images), captions


def _param_groups(module, weight_decay: float) -> list[dict]:
    # As open_clip's training script: no decay on gains, biases, embeddings' scale or the logit scale.
    decay, plain = [], []
    for name, parameter in module.named_parameters():
        if not parameter.requires_grad:
            continue
        (plain if parameter.ndim < 2 or "logit_scale" in name or "ln" in name or "bn" in name else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def _lr_at(step: int, config: TrainConfig) -> float:
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return 0.5 * config.lr * (1 + math.cos(math.pi * progress))


def train(shards: list[str], out: str | Path, config: TrainConfig, progress: bool = True) -> TrainResult:
    """Train `config.model` from scratch on the shards; write the state dict to `out` (and a JSON
    record beside it, `out` with suffix .json)."""
    import torch
    from open_clip.loss import ClipLoss
    from tqdm import tqdm

    from conceptfreq.adapters.inference.models import _open_clip, _quiet_random_init, image_size, preprocess_config

    config = config.validate()
    open_clip = _open_clip()
    torch.set_num_threads(config.threads)
    started = time.monotonic()
    cfg = preprocess_config(config.model, None)
    pixels, captions = load_pairs(shards, image_size(cfg), progress)
    tokenizer = open_clip.get_tokenizer(config.model)
    tokens = tokenizer(captions)
    mean = torch.tensor(cfg["mean"], dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"], dtype=torch.float32).view(1, 3, 1, 1)
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2)  # uint8, normalized per batch to keep memory at a quarter
    load_seconds = time.monotonic() - started

    torch.manual_seed(config.seed)
    with _quiet_random_init():
        module = open_clip.create_model(config.model, pretrained=None)
    module.train()
    optimizer = torch.optim.AdamW(_param_groups(module, config.weight_decay), lr=config.lr, betas=(0.9, 0.98), eps=1e-6)
    loss_fn = ClipLoss()
    order = torch.Generator().manual_seed(config.seed)
    batch = min(config.batch_size, len(captions))
    permutation, cursor = torch.randperm(len(captions), generator=order), 0
    losses, window = [], []
    every = max(1, config.steps // 50)
    bar = tqdm(range(config.steps), unit="step", desc=f"train-clip {config.model}", disable=not progress, dynamic_ncols=True,
               mininterval=1.0)
    train_started = time.monotonic()
    for step in bar:
        if cursor + batch > len(permutation):
            permutation, cursor = torch.randperm(len(captions), generator=order), 0
        index = permutation[cursor:cursor + batch]
        cursor += batch
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config)
        x = (images[index].float() / 255.0 - mean) / std
        image_features, text_features, logit_scale = module(x, tokens[index])
        loss = loss_fn(image_features, text_features, logit_scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            module.logit_scale.clamp_(0, math.log(100))  # CLIP's cap
        window.append(float(loss.detach()))
        if (step + 1) % every == 0 or step + 1 == config.steps:
            losses.append((step + 1, round(sum(window) / len(window), 4)))
            bar.set_postfix(loss=f"{losses[-1][1]:.3f}", scale=f"{module.logit_scale.exp().item():.0f}")
            window = []
    seconds = time.monotonic() - train_started
    module.eval()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(module.state_dict(), partial)
    partial.replace(path)  # atomic: a cached checkpoint is never half written
    result = TrainResult(str(path), asdict(config), len(captions), round(seconds, 2), round(config.steps / seconds, 3),
                         round(load_seconds, 2), losses, round(float(module.logit_scale.detach().exp()), 3), _digest(shards))
    path.with_suffix(".json").write_text(json.dumps(result.to_json(), indent=1) + "\n", encoding="utf-8")
    return result
