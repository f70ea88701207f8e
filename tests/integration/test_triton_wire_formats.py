"""The image tower's uint8 and float16 wire formats on a real Triton server (python backend, CPU):
the same embeddings as in process, and the tagger's stored top-k unchanged through uint8."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conceptfreq.adapters.images import FastPreprocess, ImageDecoder
from conceptfreq.adapters.inference import open_inference
from conceptfreq.adapters.inference.repository import write_model_repository
from conceptfreq.devservers import triton_server


@pytest.fixture(scope="module", params=["uint8", "float16"])
def served(request, tmp_path_factory, tiny_model):
    """(wire format, a Triton server whose image tower takes it)."""
    directory = tmp_path_factory.mktemp(f"triton-{request.param}")
    write_model_repository(directory, *tiny_model, kind="cpu", max_batch_size=32, max_queue_delay_us=500,
                           image_input=request.param)
    with triton_server(directory) as server:
        yield request.param, server


@pytest.fixture(scope="module")
def local(tiny_model):
    backend = open_inference("torch://cpu", *tiny_model)
    yield backend
    backend.close()


def jpegs(n: int) -> list[bytes]:
    rng = np.random.default_rng(5)
    out = []
    for i in range(n):
        y, x = np.mgrid[0:90, 0:110] / 110
        base = np.stack([np.sin(x * rng.uniform(1, 8)), np.cos(y * rng.uniform(1, 8)), x * y], -1)
        pixels = np.clip(127 + 100 * base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def test_the_wire_format_gives_the_in_process_embeddings(served, tiny_model, local):
    wire, server = served
    remote = open_inference(server.url, *tiny_model, in_flight=3)
    try:
        assert remote.input_format == wire
        preprocess = FastPreprocess.wrap(local.preprocess)
        data = jpegs(70)  # more than two max batches (32): chunked, several in flight
        floats = np.stack([ImageDecoder(preprocess)(d).pixels for d in data])
        expected = local.encode_images(floats)
        # float16 rounds the normalized pixels (about 3 significant digits); uint8 sends exactly what they came from.
        atol = 1e-5 if wire == "uint8" else 5e-3
        np.testing.assert_allclose(remote.encode_images(floats), expected, atol=atol)
        if wire == "uint8":
            uint8 = np.stack([ImageDecoder(preprocess, pixel_format="uint8")(d).pixels for d in data])
            np.testing.assert_allclose(remote.encode_images(uint8), expected, atol=1e-5)
    finally:
        remote.close()


def test_tagging_through_triton_stores_the_in_process_top_k(served, tiny_model, local):
    """uint8: the same top-k; float16: scores within its rounding (the order of near ties may differ)."""
    wire, server = served
    from conceptfreq.tagger.stage import ConceptIndex, DecodeOptions, TagImages

    rng = np.random.default_rng(3)
    concepts = rng.normal(size=(30, local.embed_dim)).astype(np.float32)
    index = ConceptIndex("v", np.arange(30, dtype=np.uint32), tuple(f"c{i}" for i in range(30)),
                         concepts / np.linalg.norm(concepts, axis=1, keepdims=True))
    images = [(f"k{i}", d) for i, d in enumerate(jpegs(75))] + [("bad", b"not an image")]
    remote = open_inference(server.url, *tiny_model, in_flight=3)
    results = {}
    try:
        for name, backend in (("local", local), ("triton", remote)):
            tagger = TagImages(backend, top_k=5, batch_size=16, decode=DecodeOptions(workers=2))
            try:
                results[name] = tagger.run(images, index)
            finally:
                tagger.close()
    finally:
        remote.close()
    (keys_l, top_l, skipped_l, _, seen_l), (keys_t, top_t, skipped_t, _, seen_t) = results["local"], results["triton"]
    assert keys_t == keys_l and seen_t == seen_l == 76 and skipped_t == skipped_l and skipped_t["undecodable"] == 1
    if wire == "uint8":
        np.testing.assert_array_equal(top_t.concept_ids, top_l.concept_ids)
        np.testing.assert_allclose(top_t.cosines, top_l.cosines, atol=1e-5)
        np.testing.assert_allclose(top_t.lse, top_l.lse, atol=1e-4)
    else:
        np.testing.assert_allclose(top_t.cosines, top_l.cosines, atol=5e-3)
        np.testing.assert_allclose(top_t.lse, top_l.lse, atol=0.5)


def test_system_shared_memory_gives_the_same_embeddings_and_survives_a_restart(served, tiny_model, local):
    import tritonclient.grpc as grpcclient

    wire, server = served
    preprocess = FastPreprocess.wrap(local.preprocess)
    floats = np.stack([ImageDecoder(preprocess)(d).pixels for d in jpegs(40)])
    over_wire = open_inference(server.url, *tiny_model, in_flight=2)
    shared = open_inference(f"{server.url}?shared_memory=system", *tiny_model, in_flight=2)
    address = server.url.removeprefix("triton://")
    try:
        np.testing.assert_array_equal(shared.encode_images(floats), over_wire.encode_images(floats))
        status = grpcclient.InferenceServerClient(address).get_system_shared_memory_status(as_json=True)
        assert len(status.get("regions", {})) == 4  # two per request in flight
        if wire == "uint8":
            # A restarted server has forgotten the regions: the client registers them again on a new channel.
            server.stop()
            server.start()
            np.testing.assert_array_equal(shared.encode_images(floats), over_wire.encode_images(floats))
    finally:
        shared.close()
        over_wire.close()
    assert not grpcclient.InferenceServerClient(address).get_system_shared_memory_status(as_json=True).get("regions")
