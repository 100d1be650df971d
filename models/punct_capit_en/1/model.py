"""Triton python-backend model: punctuation and capitalization of one UTF-8 TEXT per request.

A thin wrapper around `punct_capit.PunctCapitRuntime` (next to this file): one onnxruntime call for
the whole dynamic batch, one response per request (`PUNCTUATED`, the rewritten text), and an error
on a bad request's response only. The directory is self-contained (Triton's python backend does
not put the repository on `sys.path`): its siblings are loaded from files. A KIND_GPU instance runs
the graph on its GPU (onnx_device.py next to this file).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


def _load_sibling(file_name: str, module_name: str):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), file_name)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # before it runs: its dataclasses resolve their module there
    spec.loader.exec_module(module)
    return module


def _read_text(request) -> tuple[str | None, str | None]:
    tensor = pb_utils.get_input_tensor_by_name(request, "TEXT")
    if tensor is None:
        return None, "missing input TEXT"
    values = tensor.as_numpy().reshape(-1)
    if values.size != 1:
        return None, f"TEXT must hold exactly one string per request (got {values.size})"
    try:
        raw = values[0]
        return (raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else str(raw)), None
    except UnicodeDecodeError as error:
        return None, f"TEXT is not valid UTF-8: {error}"


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        threads = int(parameters.get("intra_op_num_threads", "1"))
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        device = _load_sibling("onnx_device.py", "rivulet_onnx_device")
        placement = device.placement_from_triton(args, parameters, version_dir)
        providers = device.providers_for(placement, ort.get_available_providers(), "punct_capit")
        runtime = _load_sibling("punct_capit.py", "rivulet_punct_capit_runtime")
        self.runtime = runtime.PunctCapitRuntime(
            version_dir, intra_op_num_threads=threads, providers=providers
        )

    def execute(self, requests: list) -> list:
        read = [_read_text(request) for request in requests]
        valid = [i for i, (_, error) in enumerate(read) if error is None]
        outputs: dict[int, str] = {}
        errors: dict[int, str] = {i: error for i, (_, error) in enumerate(read) if error is not None}
        try:
            outputs = dict(zip(valid, self.runtime.punctuate([read[i][0] for i in valid]), strict=True))
        except Exception as batch_error:  # one call per request to isolate the culprit
            for i in valid:
                try:
                    outputs[i] = self.runtime.punctuate([read[i][0]])[0]
                except Exception as error:
                    errors[i] = f"punct_capit failed: {error or batch_error}"
        responses = []
        for i in range(len(requests)):
            if i in errors:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(errors[i])))
            else:
                text = np.array([[outputs[i].encode("utf-8")]], dtype=np.object_)
                responses.append(
                    pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("PUNCTUATED", text)])
                )
        return responses

    def finalize(self) -> None:
        self.runtime = None
