"""Triton python-backend model: one open_clip tower (image or text) behind dynamic batching.

`write_model_repository` writes `<repository>/<name>/1/model.py` as a shim importing this class; the server's
python stub runs it with the same interpreter and packages as the client side (see
devservers/triton.py), and it delegates to TorchBackend, so `triton://` and `torch://` run the
same code and give the same embeddings.

Parameters (config.pbtxt): role ("image" | "text"), model, pretrained (tag, checkpoint path on the
server, or empty for seeded random weights), precision, model_id (checked against the weights
found here: a checkpoint replaced after the repository was written fails loudly, instead of
silently serving other embeddings under the old cache keys), cache_dir (where tags download),
input_format (the image tower's wire format: float32, float16, or uint8 (N, H, W, 3) pixels that
are normalized here with the client's arithmetic).
"""

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from conceptfreq.adapters.images import normalize_uint8
from conceptfreq.adapters.inference.torch_backend import TorchBackend


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {key: value.get("string_value", "") for key, value in config.get("parameters", {}).items()}  # proto3 drops ""
        self.role = params["role"]
        gpu = args.get("model_instance_kind") == "GPU"
        device = f"cuda:{args.get('model_instance_device_id', '0')}" if gpu else "cpu"
        self.backend = TorchBackend(params["model"], params.get("pretrained") or None, params.get("precision") or "fp32",
                                    device=device, batch_size=max(1, int(config.get("max_batch_size") or 1)),
                                    cache_dir=params.get("cache_dir") or None)
        self.input_format = params.get("input_format") or "float32"
        self.preprocess = json.loads(params["preprocess"]) if params.get("preprocess") else self.backend.loaded.preprocess_cfg
        expected = params.get("model_id")
        if expected and expected != self.backend.model_id:
            raise RuntimeError(f"weights changed since the repository was written: config says {expected}, "
                               f"found {self.backend.model_id}; regenerate the repository")
        pb_utils.Logger.log_info(f"{args['model_name']}: {self.role} tower of {self.backend.model_id} "
                                 f"({self.backend.precision}) on {device}")

    def execute(self, requests):
        try:
            return self._image(requests) if self.role == "image" else self._text(requests)
        except Exception as error:  # noqa: BLE001 - every request gets the reason instead of a dead stub
            message = f"{type(error).__name__}: {error}"
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(message)) for _ in requests]

    def _image(self, requests):
        # The dynamic batcher hands over several requests at once: one forward pass for all of them.
        arrays = [pb_utils.get_input_tensor_by_name(r, "PIXELS").as_numpy() for r in requests]
        pixels = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
        if self.input_format == "uint8":
            pixels = normalize_uint8(pixels, self.preprocess["mean"], self.preprocess["std"])
        embeddings = self.backend.encode_images(pixels.astype(np.float32, copy=False))
        return [pb_utils.InferenceResponse([pb_utils.Tensor("EMBEDDINGS", part)])
                for part in np.split(embeddings, np.cumsum([len(a) for a in arrays])[:-1])]

    def _text(self, requests):
        arrays = [pb_utils.get_input_tensor_by_name(r, "TEXT").as_numpy().reshape(-1) for r in requests]
        texts = [t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for a in arrays for t in a]
        embeddings = self.backend.encode_texts(texts)
        scale = np.float32(self.backend.logit_scale)
        return [pb_utils.InferenceResponse([pb_utils.Tensor("EMBEDDINGS", part),
                                            pb_utils.Tensor("LOGIT_SCALE", np.full((len(part), 1), scale, np.float32))])
                for part in np.split(embeddings, np.cumsum([len(a) for a in arrays])[:-1])]

    def finalize(self):
        self.backend.close()
