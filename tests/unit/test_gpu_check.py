"""The prepared GPU check (bench/gpu_check) where there is no GPU: it refuses clearly, and its whole
flow runs with the CPU provider in the GPU's place (--cpu-dry-run), so the script is known to work
before a GPU machine runs it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from bench.gpu_check import __main__ as gpu_check
from bench.gpu_check import asr, nlu
from pipelines import onnx_device

ROOT = Path(__file__).resolve().parents[2]
NO_CUDA = "CUDAExecutionProvider" not in ort.get_available_providers()


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("OUT", None)
    return subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", "run", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a GPU")
def test_without_a_gpu_it_says_why_writes_so_and_measures_nothing(tmp_path: Path) -> None:
    proc = run_check("--out", str(tmp_path))
    assert proc.returncode == gpu_check.EXIT_NO_GPU, proc.stdout + proc.stderr
    assert "gpu_check: NO GPU: onnxruntime" in proc.stderr and "has no CUDAExecutionProvider" in proc.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["status"] == "NO GPU" and "onnxruntime-gpu" in report["reason"]
    assert not {"asr", "nlu", "tts"} & set(report), "nothing measured"
    assert (tmp_path / "gpu_check.md").read_text().startswith("# GPU check: NO GPU")


def _clips(path: Path) -> None:
    t = np.arange(16000 * 2) / 16000
    clips = {f"clip{i}": (0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.float32) for i in range(3)}
    np.savez_compressed(path / "asr_audio.npz", **clips)


def test_the_cpu_dry_run_goes_through_asr_parity_and_capacity(tmp_path: Path) -> None:
    inputs, out = tmp_path / "inputs", tmp_path / "out"
    inputs.mkdir()
    _clips(inputs)
    proc = run_check(
        "--cpu-dry-run", "--only", "asr", "--asr-levels", "2", "3", "--seconds", "1",
        "--inputs", str(inputs), "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == gpu_check.EXIT_PASSED, proc.stdout + proc.stderr
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["status"].startswith("CPU DRY RUN")
    parity = report["asr"]["parity"]
    assert parity["passed"] and parity["argmax_agreement"] == 1.0 and parity["max_abs_prob_diff"] == 0.0
    assert parity["caches_on"] == "cpu" and parity["same_greedy_transcripts"] == "3/3"
    levels = report["asr"]["capacity"]["levels"]
    assert levels[0]["streams"] == 2 and levels[0]["chunks_measured"] > 0
    assert report["asr"]["capacity"]["riva_published_streams_per_gpu"] == 270


def test_the_nlu_step_compares_and_measures_a_synthetic_model_of_the_served_architecture(
    tmp_path: Path,
) -> None:
    model = nlu.make_synthetic_model(tmp_path / "nlu", max_length=32, hidden=24, layers=1)
    assert {p.name for p in model.iterdir()} >= {"model.onnx", "tokenizer.json", "labels.json"}
    result = nlu.check(model, tmp_path, onnx_device.CPU_PLACEMENT, seconds=0.2)
    variant = result["variants"]["cuda_fp32"]
    assert result["passed"] and variant["parity"]["max_abs_prob_diff"] == 0.0
    assert variant["parity"]["same_intent"] == f"{4 * len(nlu.SENTENCES)}/{4 * len(nlu.SENTENCES)}"
    assert [row["batch"] for row in variant["throughput"]] == list(nlu.BATCHES)


def test_asr_parity_fails_when_the_gpu_path_differs(tmp_path: Path, monkeypatch) -> None:
    """A broken device path (caches of two streams swapped) is caught by the tolerances."""
    runtime = asr.load_runtime(gpu_check.ASR_MODEL)
    original = runtime.DeviceCaches.split

    def swapped(self, channel, time_cache, batch):
        channels, times = original(self, channel, time_cache, batch)
        return channels[::-1], times[::-1]

    monkeypatch.setattr(runtime.DeviceCaches, "split", swapped)
    audios, _ = asr.test_audio(None, count=3)
    assert not asr.parity(gpu_check.ASR_MODEL, onnx_device.CPU_PLACEMENT, audios)["passed"]


def test_stage_wheel_cuts_parts_that_join_back_to_the_checked_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(gpu_check, "PART_BYTES", 1000)
    wheel = tmp_path / "onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl"
    wheel.write_bytes(os.urandom(2500))
    gpu_check.main(["stage-wheel", str(wheel), "--out", str(tmp_path / "parts")])
    parts = sorted((tmp_path / "parts").glob("part-*"))
    assert [p.stat().st_size for p in parts] == [1000, 1000, 500]
    joined = b"".join(p.read_bytes() for p in parts)
    assert joined == wheel.read_bytes()
    digest, name = (tmp_path / "parts" / "SHA256").read_text().split()
    assert digest == hashlib.sha256(joined).hexdigest() and name == "ort.whl"
    assert (tmp_path / "parts" / "NAME").read_text().strip() == wheel.name


def test_the_tts_step_compares_and_measures_the_tiny_neural_voice(tmp_path: Path, model_cache_dir) -> None:
    from bench.gpu_check import tts
    from pipelines.tts.cache import tiny_model

    model = tiny_model(tmp_path, model_cache_dir) / "1"
    result = tts.check(model, onnx_device.CPU_PLACEMENT, seconds=0.3)
    assert result["passed"] and result["parity"]["max_abs_spect_diff"] == 0.0
    assert result["parity"]["audio_snr_db"] == float("inf")
    levels = result["gpu_concurrent"]["levels"]
    assert levels[0]["streams"] == 1 and levels[0]["sentences_per_s"] > 0
    assert result["gpu"]["audio_seconds"] > 0.5 and result["gpu"]["real_time_factor"] > 0
