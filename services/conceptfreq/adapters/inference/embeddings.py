"""Class and concept text embeddings from prompts, computed once and cached on disk.

    embeddings = text_embeddings(backend, names, make_prompts("ensemble"), names_key=vocabulary.version)

The cache key is (model_id, precision, names_key, prompts.key): the weights, the numerics, the
exact list of names (a vocabulary version, or a hash of the class names) and the exact templates.
Any of them changing gives a new entry; nothing is ever invalidated in place. Entries are
`{key}.npy` (float32 (C, D), L2-normalized rows) and `{key}.json` (what the key stands for),
written atomically, so concurrent workers at worst compute the same entry twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from conceptfreq.core.prompts import Prompts, average_prompts

log = logging.getLogger(__name__)

# Names encoded per step: bounds memory at (step x templates x D) floats, however large the vocabulary.
_NAMES_PER_STEP = 128


def default_cache_dir() -> Path:
    """$CONCEPTFREQ_CACHE_DIR, else $XDG_CACHE_HOME/conceptfreq (~/.cache/conceptfreq)."""
    if os.environ.get("CONCEPTFREQ_CACHE_DIR"):
        return Path(os.environ["CONCEPTFREQ_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "conceptfreq"


def names_hash(names: Sequence[str]) -> str:
    return "names-" + hashlib.sha256(json.dumps(list(names), ensure_ascii=False).encode()).hexdigest()[:16]


def cache_key(model_id: str, precision: str, names_key: str, prompts: Prompts) -> str:
    return hashlib.sha256(json.dumps([model_id, precision, names_key, prompts.key]).encode()).hexdigest()[:24]


def encode_prompts(backend, names: Sequence[str], prompts: Prompts) -> np.ndarray:
    """(C, D) embeddings of `names` under `prompts`, averaged over templates; no cache."""
    n_templates = len(prompts.templates)
    parts = []
    for start in range(0, len(names), _NAMES_PER_STEP):
        chunk = names[start:start + _NAMES_PER_STEP]
        parts.append(average_prompts(backend.encode_texts(prompts.texts(chunk)), n_templates))
    return np.concatenate(parts) if parts else np.zeros((0, backend.embed_dim), np.float32)


def text_embeddings(backend, names: Sequence[str], prompts: Prompts, *, names_key: str | None = None,
                    cache_dir: str | Path | None = None, use_cache: bool = True) -> np.ndarray:
    """(C, D) float32 L2-normalized embeddings of `names` (class names, or a vocabulary's concept
    names) under `prompts`, from the cache when it has them. `names_key` names the list (e.g. the
    vocabulary version); by default a hash of the names themselves."""
    names = list(names)
    names_key = names_key or names_hash(names)
    if not use_cache:
        return encode_prompts(backend, names, prompts)
    folder = Path(cache_dir or default_cache_dir()) / "embeddings" / re.sub(r"[^A-Za-z0-9_.@-]+", "_", backend.model_id)
    key = cache_key(backend.model_id, backend.precision, names_key, prompts)
    array_path, meta_path = folder / f"{key}.npy", folder / f"{key}.json"
    if array_path.is_file() and meta_path.is_file():
        try:
            cached = np.load(array_path)
            if cached.shape == (len(names), backend.embed_dim):
                return cached
            log.warning("cached embeddings %s have shape %s, expected %s: recomputing", array_path, cached.shape,
                        (len(names), backend.embed_dim))
        except (OSError, ValueError) as error:
            log.warning("unreadable cached embeddings %s (%s): recomputing", array_path, error)
    started = time.perf_counter()
    embeddings = encode_prompts(backend, names, prompts)
    seconds = time.perf_counter() - started
    folder.mkdir(parents=True, exist_ok=True)
    suffix = f".{os.getpid()}.partial"
    with open(array_path.with_name(array_path.name + suffix), "wb") as stream:
        np.save(stream, embeddings)
    meta = {"model_id": backend.model_id, "precision": backend.precision, "names_key": names_key, "names": len(names),
            "prompts": prompts.mode, "prompts_key": prompts.key, "templates": list(prompts.templates),
            "template_source": prompts.source, "dim": int(embeddings.shape[1]) if embeddings.ndim == 2 else 0,
            "seconds": round(seconds, 3), "created_at_ms": time.time_ns() // 1_000_000}
    meta_path.with_name(meta_path.name + suffix).write_text(json.dumps(meta, indent=1))
    os.replace(array_path.with_name(array_path.name + suffix), array_path)
    os.replace(meta_path.with_name(meta_path.name + suffix), meta_path)
    log.info("encoded %d names x %d templates with %s in %.1fs", len(names), len(prompts.templates), backend.model_id, seconds)
    return embeddings
