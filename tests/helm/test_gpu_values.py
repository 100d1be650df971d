"""values-gpu-cluster.yaml puts the models on the GPU: the GPU Triton image, and a model builder whose
last step writes KIND_GPU instance groups (run here for real on a copy of models/)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from tests.helm.charts import CHART, RELEASE, ROOT, by_kind, helm, one, render

TRITON = f"{RELEASE}-triton"
GPU_VALUES = CHART / "values-gpu-cluster.yaml"
KIND_GPU = model_config_pb2.ModelInstanceGroup.KIND_GPU
KIND_CPU = model_config_pb2.ModelInstanceGroup.KIND_CPU


def builder_script(objs) -> str:
    return by_kind(objs, "Job")[0]["spec"]["template"]["spec"]["containers"][0]["command"][-1]


def runs(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines() if line.strip().startswith("python -m pipelines.")]


def test_the_gpu_values_run_triton_from_the_gpu_image() -> None:
    triton = one(render("gpu-cluster"), "Deployment", TRITON)["spec"]["template"]["spec"]["containers"][0]
    assert triton["image"] == "registry.example.com/rivulet-ai/triton:0.1.0"
    assert int(triton["resources"]["limits"]["nvidia.com/gpu"]) == 1
    # that image is docker/triton.Dockerfile: NVIDIA's CUDA container with the GPU onnxruntime
    dockerfile = (ROOT / "docker" / "triton.Dockerfile").read_text()
    requirements = (ROOT / "docker" / "triton-requirements.txt").read_text()
    assert re.search(r"^onnxruntime-gpu==", requirements, re.M)
    assert not re.search(r"^onnxruntime==", requirements, re.M), "the CPU wheel would shadow the GPU one"
    assert re.search(r"^onnx==", requirements, re.M), (
        "asr_streaming stacks its device caches with onnx graphs"
    )
    assert "{'CUDAExecutionProvider', 'TensorrtExecutionProvider'} <= set(p)" in dockerfile


def test_the_gpu_builder_rewrites_every_config_for_the_gpu_after_the_builds() -> None:
    gpu, default = runs(builder_script(render("gpu-cluster"))), runs(builder_script(render("default")))
    assert gpu[-1] == "python -m pipelines.device_config '--device' 'gpu' --repository /models"
    assert gpu[:-1] == default, "the same builds as the default values, then the GPU rewrite"
    assert not any("device_config" in line for line in default), "the default values keep KIND_CPU"


def test_the_gpu_builder_script_writes_kind_gpu_configs_for_real(tmp_path: Path) -> None:
    src, repo = tmp_path / "app" / "models", tmp_path / "models"  # the builder image's /app layout
    repo.mkdir()
    shutil.copytree(
        ROOT / "models", src, ignore=shutil.ignore_patterns("__pycache__", "*.onnx"), symlinks=True
    )
    builds = yaml.safe_load(GPU_VALUES.read_text())["triton"]["modelBuilder"]["builds"]
    rewrite = [b for b in builds if b["module"] == "pipelines.device_config"]  # the others train models
    sets = ["--set", f"triton.modelRepository.mountPath={repo}", "--set-json",
            f"triton.modelBuilder.builds={json_list(rewrite)}"]  # fmt: skip
    out = helm("template", RELEASE, str(CHART), "-f", str(GPU_VALUES), *sets).stdout
    script = builder_script(tuple(d for d in yaml.safe_load_all(out) if d)).replace("/app/models", str(src))
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.run(
        ["/bin/sh", "-ec", script], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kinds = {}
    for model in ("asr_streaming", "intent_assistant", "intent_atis", "tts_embedded"):
        config = text_format.Parse(
            (repo / model / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()
        )
        kinds[model] = [g.kind for g in config.instance_group]
    assert kinds == {
        "asr_streaming": [KIND_GPU],
        "intent_assistant": [KIND_GPU],
        "intent_atis": [KIND_GPU],
        "tts_embedded": [KIND_CPU],  # speech engines: CPU programs
    }
    # cp -RL: the shared onnx_device.py links arrive as files the models can load on the volume
    for model in ("asr_streaming", "intent_assistant", "intent_atis"):
        copied = repo / model / "1" / "onnx_device.py"
        assert copied.is_file() and not copied.is_symlink(), model
        assert copied.read_bytes() == (ROOT / "pipelines" / "onnx_device.py").read_bytes()


def json_list(builds: list[dict]) -> str:
    import json

    return json.dumps(builds)
