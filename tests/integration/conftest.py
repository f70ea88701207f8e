"""Fixtures for inference: the project's deterministic tiny CLIP, and a real Triton Inference Server
(the nvidia-pytriton wheel's tritonserver 2.51) serving it, started once per session.

    def test_something(triton, tiny_model):
        backend = open_inference(triton.url, *tiny_model)       # triton://127.0.0.1:PORT
        local = open_inference("torch://", *tiny_model)          # the same weights in process

`triton.stop()` / `triton.start()` simulate an outage on the same ports; a test that stops the
server must start it again (use the `triton_outage` context manager), since the session shares it.
"""

from __future__ import annotations

import contextlib

import pytest

from conceptfreq.adapters.inference.models import TINY_MODEL, tiny_checkpoint
from conceptfreq.adapters.inference.repository import write_model_repository
from conceptfreq.devservers import triton_server


@pytest.fixture(scope="session")
def tiny_checkpoint_path(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint_path) -> tuple[str, str]:
    """(model, pretrained) of the tiny CLIP: 64 px, 2 layers, fixed random weights, offline."""
    return TINY_MODEL, str(tiny_checkpoint_path)


@pytest.fixture(scope="session")
def triton_repository(tmp_path_factory, tiny_model):
    directory = tmp_path_factory.mktemp("triton-models")
    write_model_repository(directory, *tiny_model, kind="cpu", max_queue_delay_us=500)
    return directory


@pytest.fixture(scope="session")
def triton(triton_repository):
    with triton_server(triton_repository) as server:
        yield server


@contextlib.contextmanager
def triton_outage(server):
    """Triton down inside the block, up again after it (even if the block fails)."""
    server.stop()
    try:
        yield
    finally:
        server.start()
