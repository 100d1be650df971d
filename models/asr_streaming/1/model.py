"""Triton python-backend model: streaming CTC speech recognition, one Triton sequence per audio stream.

A thin wrapper around ``asr_stream.StreamingRecognizer`` (next to this file). Each request carries
16 kHz float32 AUDIO of any length plus the sequence batcher's START/END/CORRID controls; the
response holds LOGPROBS [1, T, V] for the encoder frames completed so far and FRAME_START [1, 1].
All requests of one execute() are advanced together (one batched onnxruntime call per chunk step).
State is keyed by CORRID, freed on END and after the idle timeout. A bad request gets an error on
its own response; other streams carry on. Imports only numpy and onnxruntime (and onnx on a GPU
instance), so the same model runs in NVIDIA's Triton container, on its CPU or its GPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils


def _load_runtime_module():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "asr_stream.py")
    spec = importlib.util.spec_from_file_location("rivulet_asr_stream_runtime", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # registered before it runs: its dataclasses look it up
    spec.loader.exec_module(module)
    return module


def _scalar(request, name: str, default: int = 0) -> int:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return default
    values = tensor.as_numpy().reshape(-1)
    return int(values[0]) if values.size else default


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        threads = int(parameters.get("intra_op_num_threads", "1"))
        idle_us = int(config.get("sequence_batching", {}).get("max_sequence_idle_microseconds", 60_000_000))
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        self.runtime_module = _load_runtime_module()
        # KIND_CPU: the CPU provider (the embedded default); KIND_GPU: CUDA / TensorRT, caches on the GPU
        placement = self.runtime_module.onnx_device.placement_from_triton(args, parameters, version_dir)
        self.runtime = self.runtime_module.StreamingRecognizer(
            version_dir, intra_op_num_threads=threads, idle_timeout_s=idle_us / 1e6, placement=placement
        )

    def execute(self, requests: list) -> list:
        items: list[tuple[int, np.ndarray, bool, bool]] = []
        errors: dict[int, str] = {}
        for i, request in enumerate(requests):
            corrid = _scalar(request, "CORRID")
            start, end = bool(_scalar(request, "START")), bool(_scalar(request, "END"))
            tensor = pb_utils.get_input_tensor_by_name(request, "AUDIO")
            audio = np.zeros(0, dtype=np.float32)
            if tensor is None:
                errors[i] = "missing input AUDIO"
            else:
                values = tensor.as_numpy()
                if values.ndim > 2 or (values.ndim == 2 and values.shape[0] != 1):
                    errors[i] = (
                        f"AUDIO must have shape [1, N] (one stream per request), got {list(values.shape)}"
                    )
                else:
                    audio = values.reshape(-1).astype(np.float32, copy=False)
            if corrid == 0:
                errors[i] = "CORRID (the sequence id) must be set and non-zero"
            # a broken request still ends its stream, so its state is freed at once
            items.append((corrid, audio, start, end or i in errors))
        results = self.runtime.process(
            [item for i, item in enumerate(items) if i not in errors or items[i][0]]
        )
        responses = []
        position = 0
        for i in range(len(requests)):
            result = None
            if i not in errors or items[i][0]:
                result = results[position]
                position += 1
            if i in errors:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(errors[i])))
            elif isinstance(result, Exception):
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(result))))
            else:
                logprobs = result.logprobs[None]
                frame_start = np.array([[result.frame_start]], dtype=np.int64)
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[
                            pb_utils.Tensor("LOGPROBS", logprobs),
                            pb_utils.Tensor("FRAME_START", frame_start),
                        ]
                    )
                )
        return responses

    def finalize(self) -> None:
        self.runtime = None
