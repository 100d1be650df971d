"""Where a Triton python model runs its ONNX graphs: onnxruntime's execution providers per instance.

This file (``models/asr_streaming/1/onnx_device.py``, beside the committed ASR model) is the one
copy: ``models/intent_*/1/onnx_device.py`` and ``pipelines/onnx_device.py`` link to it, and the
pipelines copy it next to every python model that runs onnxruntime (the NLU build, the TTS export;
the model builder copies the links as files), whose code loads it from its own directory, so a
model directory stays self-contained (Triton's python backend does not put the repository on
``sys.path``). Imports only onnxruntime.

- An instance of a ``KIND_CPU`` instance group (the embedded default) gets ``CPUExecutionProvider``
  alone, exactly as before.
- A ``KIND_GPU`` instance gets ``CUDAExecutionProvider`` on the GPU Triton assigned to it
  (``args["model_instance_device_id"]``), optionally preceded by ``TensorrtExecutionProvider``
  (parameter ``onnxruntime_tensorrt``; FP16 with ``onnxruntime_tensorrt_fp16``; an optimization
  profile from ``onnxruntime_tensorrt_profile_{min,opt,max}``; engines cached under the model
  directory, else under the temp directory when the volume is read-only), and
  followed by ``CPUExecutionProvider`` for the operators the GPU providers do not take.
- A GPU instance where the installed onnxruntime has no CUDA provider falls back to the CPU
  provider with a warning, so a misbuilt image serves slowly instead of not at all.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
TRUE_WORDS = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Placement:
    """Where one model instance runs: ``kind`` is "CPU" or "GPU" (Triton's instance kinds)."""

    kind: str = "CPU"
    device_id: int = 0
    tensorrt: bool = False
    tensorrt_fp16: bool = False
    engine_cache_dir: str = ""
    # TensorRT optimization profile: "name:AxB,name:AxB" for the min, opt and max shapes (or empty)
    tensorrt_profile: tuple[str, str, str] = ("", "", "")

    @property
    def on_gpu(self) -> bool:
        return self.kind == "GPU"


CPU_PLACEMENT = Placement()


def _flag(parameters: dict, key: str) -> bool:
    return str(parameters.get(key, "")).strip().lower() in TRUE_WORDS


def placement_from_triton(args: dict, parameters: dict, model_dir: str) -> Placement:
    """The placement of the instance Triton is initializing (``args`` of ``initialize``).

    ``parameters`` are the model's config.pbtxt string parameters; ``model_dir`` is where the
    TensorRT engine cache goes (``<model_dir>/<onnxruntime_tensorrt_cache>``, default ``trt_cache``).
    """
    if str(args.get("model_instance_kind", "CPU")).upper() != "GPU":
        return CPU_PLACEMENT
    cache = str(parameters.get("onnxruntime_tensorrt_cache", "trt_cache"))
    return Placement(
        kind="GPU",
        device_id=int(args.get("model_instance_device_id", 0) or 0),
        tensorrt=_flag(parameters, "onnxruntime_tensorrt"),
        tensorrt_fp16=_flag(parameters, "onnxruntime_tensorrt_fp16"),
        engine_cache_dir=os.path.join(model_dir, cache),
        tensorrt_profile=tuple(
            str(parameters.get(f"onnxruntime_tensorrt_profile_{key}", "")) for key in ("min", "opt", "max")
        ),
    )


def writable_cache_dir(preferred: str, name: str) -> str:
    """``preferred`` when it can be created and written, else a directory under the temp directory
    (the cluster mounts the model volume read-only into Triton: engines are then rebuilt per pod)."""
    for candidate in (preferred, os.path.join(tempfile.gettempdir(), "rivulet-trt-cache", name)):
        try:
            os.makedirs(candidate, exist_ok=True)
            if os.access(candidate, os.W_OK):
                return candidate
        except OSError:
            continue
    return ""


def providers_for(placement: Placement, available: list[str], graph_name: str = "model") -> list:
    """The ``providers`` argument of ``InferenceSession`` for this placement, given the providers
    the installed onnxruntime has (``onnxruntime.get_available_providers()``)."""
    if not placement.on_gpu:
        return [CPU]
    if CUDA not in available:
        warnings.warn(
            f"{graph_name}: the instance is KIND_GPU but this onnxruntime has no {CUDA} "
            f"(available: {available}); running on the CPU. Install onnxruntime-gpu.",
            RuntimeWarning,
            stacklevel=2,
        )
        return [CPU]
    chosen: list = []
    if placement.tensorrt and TENSORRT in available:
        options = {"device_id": placement.device_id, "trt_fp16_enable": placement.tensorrt_fp16}
        if all(placement.tensorrt_profile):
            for key, shapes in zip(("min", "opt", "max"), placement.tensorrt_profile, strict=True):
                options[f"trt_profile_{key}_shapes"] = shapes
        cache = placement.engine_cache_dir and writable_cache_dir(placement.engine_cache_dir, graph_name)
        if cache:
            options.update(
                {
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": cache,
                    "trt_timing_cache_enable": True,
                    "trt_timing_cache_path": cache,
                }
            )
        chosen.append((TENSORRT, options))
    chosen.append((CUDA, {"device_id": placement.device_id}))
    chosen.append(CPU)
    return chosen


def iobinding_device(placement: Placement) -> tuple[str, int]:
    """The (device type, id) of OrtValues and IOBinding outputs kept on this placement's device."""
    return ("cuda", placement.device_id) if placement.on_gpu else ("cpu", 0)


def create_session(path: str, options, placement: Placement = CPU_PLACEMENT):
    """An ``onnxruntime.InferenceSession`` of ``path`` on this placement."""
    import onnxruntime as ort

    name = os.path.splitext(os.path.basename(path))[0]
    providers = providers_for(placement, ort.get_available_providers(), name)
    return ort.InferenceSession(path, options, providers=providers)
