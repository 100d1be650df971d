"""Triton python model: FastPitch + HiFi-GAN (ONNX, onnxruntime), streamed chunk by chunk.

Written into a model repository by `python -m pipelines.tts export`. Text arrives as a script
(rivulet.tts.frontend), is cut into pieces (sentences, clauses, a short first phrase), and each
piece's mel spectrogram is vocoded in overlapping chunks (runtime.py next to this file), each
chunk sent as soon as it is ready. Requests, cancellation and ordering: rivulet.tts.triton_model
(Triton's python models get services/ on PYTHONPATH from Rivulet's tritonserver).
"""

from __future__ import annotations

import importlib.util
import os
import sys

# The python backend stub does not apply PYTHONPATH itself; Rivulet's tritonserver sets it.
for _path in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    if _path and _path not in sys.path:
        sys.path.append(_path)

import onnxruntime  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402

from rivulet.tts.triton_model import SynthesizerModel  # noqa: E402


def _load_sibling(directory: str, file_name: str, module_name: str):
    spec = importlib.util.spec_from_file_location(module_name, os.path.join(directory, file_name))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # registered before it runs (dataclasses resolve through it)
    spec.loader.exec_module(module)
    return module


class TritonPythonModel(SynthesizerModel):
    pb_utils = pb_utils

    def load(self, args: dict) -> None:
        directory = os.path.join(args["model_repository"], args["model_version"])
        p = self.parameters
        # KIND_CPU: the CPU provider (the default); KIND_GPU: CUDA on the instance's GPU
        device = _load_sibling(directory, "onnx_device.py", "rivulet_onnx_device")
        placement = device.placement_from_triton(args, p, directory)
        providers = device.providers_for(placement, onnxruntime.get_available_providers(), "tts")
        self.runtime = _load_sibling(directory, "runtime.py", "rivulet_tts_neural_runtime").FastPitchHifiGan(
            directory,
            threads=int(p.get("intra_op_num_threads", "1")),
            chunk_frames=int(p.get("chunk_frames", "64")),
            first_chunk_frames=int(p.get("first_chunk_frames", "16")),
            overlap_frames=int(p.get("overlap_frames", "12")),
            providers=providers,
        )

    def synthesize(self, item, job):
        return self.runtime.speak(item.text, item.rate, item.pitch)
