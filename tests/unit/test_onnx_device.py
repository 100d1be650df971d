"""Which onnxruntime providers a Triton model instance gets (pipelines/onnx_device.py and its copies)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines import onnx_device
from pipelines.onnx_device import CPU, CUDA, TENSORRT, Placement, placement_from_triton, providers_for

ROOT = Path(__file__).resolve().parents[2]
GPU_ORT = [TENSORRT, CUDA, CPU]
GPU_ARGS = {"model_instance_kind": "GPU", "model_instance_device_id": "3"}


def test_a_cpu_instance_gets_the_cpu_provider_alone_even_where_cuda_is_installed() -> None:
    placement = placement_from_triton({"model_instance_kind": "CPU"}, {"onnxruntime_tensorrt": "true"}, "/m")
    assert placement == onnx_device.CPU_PLACEMENT
    assert providers_for(placement, GPU_ORT) == [CPU]
    assert providers_for(placement_from_triton({}, {}, "/m"), GPU_ORT) == [CPU]


def test_a_gpu_instance_gets_cuda_on_its_device_then_the_cpu() -> None:
    placement = placement_from_triton(GPU_ARGS, {}, "/models/asr/1")
    assert placement.on_gpu and placement.device_id == 3 and not placement.tensorrt
    assert providers_for(placement, GPU_ORT) == [(CUDA, {"device_id": 3}), CPU]


def test_tensorrt_comes_first_with_fp16_an_engine_cache_and_the_profile(tmp_path: Path) -> None:
    parameters = {
        "onnxruntime_tensorrt": "true",
        "onnxruntime_tensorrt_fp16": "true",
        "onnxruntime_tensorrt_profile_min": "input_ids:1x1",
        "onnxruntime_tensorrt_profile_opt": "input_ids:32x24",
        "onnxruntime_tensorrt_profile_max": "input_ids:128x64",
    }
    placement = placement_from_triton(GPU_ARGS, parameters, str(tmp_path))
    chosen = providers_for(placement, GPU_ORT)
    assert [p if isinstance(p, str) else p[0] for p in chosen] == [TENSORRT, CUDA, CPU]
    options = chosen[0][1]
    assert options["device_id"] == 3 and options["trt_fp16_enable"] is True
    assert options["trt_engine_cache_enable"] is True
    assert options["trt_engine_cache_path"] == str(tmp_path / "trt_cache")
    assert (tmp_path / "trt_cache").is_dir()
    assert options["trt_profile_min_shapes"] == "input_ids:1x1"
    assert options["trt_profile_max_shapes"] == "input_ids:128x64"


def test_fp16_is_off_unless_asked_and_tensorrt_is_skipped_where_it_is_not_installed(tmp_path: Path) -> None:
    placement = placement_from_triton(GPU_ARGS, {"onnxruntime_tensorrt": "1"}, str(tmp_path))
    assert providers_for(placement, GPU_ORT)[0][1]["trt_fp16_enable"] is False
    assert providers_for(placement, [CUDA, CPU]) == [(CUDA, {"device_id": 3}), CPU]


def test_a_read_only_model_volume_moves_the_engine_cache_to_the_temp_directory() -> None:
    # /proc/sys is read-only for every user, root included (a chmod'ed folder is not, for root)
    placement = placement_from_triton(GPU_ARGS, {"onnxruntime_tensorrt": "true"}, "/proc/sys")
    cache = providers_for(placement, GPU_ORT, "encoder")[0][1]["trt_engine_cache_path"]
    assert cache.endswith(os.path.join("rivulet-trt-cache", "encoder"))


def test_the_engine_cache_falls_back_when_the_preferred_directory_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert onnx_device.writable_cache_dir(str(blocker / "trt_cache"), "model").endswith(
        os.path.join("rivulet-trt-cache", "model")
    )


def test_a_gpu_instance_without_the_cuda_provider_warns_and_runs_on_the_cpu() -> None:
    placement = Placement(kind="GPU")
    with pytest.warns(RuntimeWarning, match="onnxruntime-gpu"):
        assert providers_for(placement, [CPU]) == [CPU]


def test_the_session_really_gets_the_chosen_providers_here() -> None:
    """On this CPU machine: a CPU placement's session runs on the CPU provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    path = str(ROOT / "models" / "asr_streaming" / "1" / "frontend.onnx")
    session = onnx_device.create_session(path, options, onnx_device.CPU_PLACEMENT)
    assert session.get_providers() == [CPU]


@pytest.mark.parametrize(
    "copy",
    ["pipelines/onnx_device.py", "models/intent_assistant/1/onnx_device.py",
     "models/intent_atis/1/onnx_device.py"],
)  # fmt: skip
def test_every_model_serves_the_one_canonical_file(copy: str) -> None:
    """Links to the committed ASR model's copy (the model builder copies them with cp -RL); that one
    is a plain file, so copying the committed ASR model directory never leaves a dangling link."""
    canonical = ROOT / "models" / "asr_streaming" / "1" / "onnx_device.py"
    assert (ROOT / copy).is_symlink() and not canonical.is_symlink()
    assert os.path.samefile(ROOT / copy, canonical)
