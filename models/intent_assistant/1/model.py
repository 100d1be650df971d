"""Triton python-backend model: joint intent + slot classification of one UTF-8 TEXT per request.

A thin wrapper around `intent_slot.IntentSlotRuntime` (next to this file): one onnxruntime call for
the whole dynamic batch, one response per request, and an error on a bad request's response only.
Imports only numpy, onnxruntime and tokenizers (through intent_slot), so it runs in NVIDIA's Triton
container as well as in the local tritonserver; a KIND_GPU instance runs the graph on its GPU
(onnx_device.py next to this file).
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
    # Registered before it runs: its dataclasses resolve their module through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        threads = int(parameters.get("intra_op_num_threads", "1"))
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        # KIND_CPU: the CPU provider (the embedded default); KIND_GPU: CUDA (and TensorRT if configured)
        device = _load_sibling("onnx_device.py", "rivulet_onnx_device")
        placement = device.placement_from_triton(args, parameters, version_dir)
        providers = device.providers_for(placement, ort.get_available_providers(), "intent_slot")
        runtime = _load_sibling("intent_slot.py", "rivulet_intent_slot_runtime")
        # the graph a CPU instance runs (the build's int8 one unless the config says model.onnx)
        cpu_graph = parameters.get("cpu_graph", runtime.INT8_GRAPH)
        self.runtime = runtime.IntentSlotRuntime(
            version_dir, intra_op_num_threads=threads, providers=providers, cpu_graph=cpu_graph
        )

    def execute(self, requests: list) -> list:
        texts: list[str | None] = []
        errors: list[str | None] = []
        for request in requests:
            text, error = self._read_text(request)
            texts.append(text)
            errors.append(error)

        valid = [i for i, error in enumerate(errors) if error is None]
        analyses = {}
        if valid:
            try:
                for i, analysis in zip(valid, self.runtime.analyze([texts[i] for i in valid]), strict=True):
                    analyses[i] = analysis
            except Exception as batch_error:  # fall back to one call per request to isolate the culprit
                for i in valid:
                    try:
                        analyses[i] = self.runtime.analyze([texts[i]])[0]
                    except Exception as error:
                        errors[i] = f"intent_slot failed: {error}" if str(error) else str(batch_error)

        responses = []
        for i in range(len(requests)):
            if errors[i] is not None:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(errors[i])))
            else:
                responses.append(pb_utils.InferenceResponse(output_tensors=self._outputs(analyses[i])))
        return responses

    @staticmethod
    def _read_text(request) -> tuple[str | None, str | None]:
        tensor = pb_utils.get_input_tensor_by_name(request, "TEXT")
        if tensor is None:
            return None, "missing input TEXT"
        values = tensor.as_numpy().reshape(-1)
        if values.size != 1:
            return None, f"TEXT must hold exactly one string per request (got {values.size})"
        raw = values[0]
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else str(raw)
        except UnicodeDecodeError as error:
            return None, f"TEXT is not valid UTF-8: {error}"
        if not text.strip():
            return None, "TEXT is empty"
        return text, None

    @staticmethod
    def _outputs(analysis) -> list:
        spans = analysis.spans
        span_array = np.array([[s.start, s.end] for s in spans], dtype=np.int32).reshape(1, len(spans), 2)
        return [
            pb_utils.Tensor(
                "INTENT_LABELS", np.array([[s.encode("utf-8") for s in analysis.intents]], dtype=np.object_)
            ),
            pb_utils.Tensor("INTENT_SCORES", np.array([analysis.intent_scores], dtype=np.float32)),
            pb_utils.Tensor(
                "SLOT_LABELS",
                np.array([s.label.encode("utf-8") for s in spans], dtype=np.object_).reshape(1, len(spans)),
            ),
            pb_utils.Tensor(
                "SLOT_SCORES", np.array([s.score for s in spans], dtype=np.float32).reshape(1, len(spans))
            ),
            pb_utils.Tensor("SLOT_SPANS", span_array),
        ]

    def finalize(self) -> None:
        self.runtime = None
