"""Neural TTS (FastPitch + HiFi-GAN, pipelines/tts/runtime.py) on the GPU: parity and speed.

The model: an exported voice directory (``--tts-model``, or ``tts_fastpitch_tiny`` that ``prepare``
puts into the inputs: NeMo's real architectures with random weights). The embedded voices
(tts_embedded) are speech-engine programs that run on the CPU whatever the instance kind.
Tolerances: the same number of spectrogram frames (durations are rounded, so a tiny difference can
move a frame: then it fails and says so), spectrogram within 1e-2, and HiFi-GAN on the CPU's
spectrogram within 40 dB SNR of the CPU's audio. Speed: time to the first audio chunk and the
real-time factor of one 10-word sentence, one synthesis at a time, then with 1, 2, 4, ... at once
(threads sharing one runtime, as one instance's workers do): sentences/s and the most syntheses
whose p95 first audio stays within the goal of 60 ms.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.gpu_check.stats import latency_summary
from pipelines import onnx_device

TEXT = "Your table for four is booked for seven tonight at the harbour."
FIRST_AUDIO_GOAL_MS = 60.0
TOLERANCE = {"max_abs_spect_diff": 1e-2, "min_audio_snr_db": 40.0}


def load_runtime(model_dir: Path):
    name = "rivulet_tts_neural_runtime"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, model_dir / "runtime.py")
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


def snr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    noise = float(np.sum((reference - candidate) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(float(np.sum(reference**2)) / noise)


def speed(runtime, repeats: int = 20) -> dict:
    first, total, seconds_of_audio = [], [], 0.0
    for _ in range(repeats + 2):
        started = time.perf_counter()
        chunks = runtime.speak(TEXT)
        first_chunk = next(chunks)
        first.append(time.perf_counter() - started)
        samples = first_chunk.size + sum(c.size for c in chunks)
        total.append(time.perf_counter() - started)
        seconds_of_audio = samples / runtime.sample_rate
    first, total = first[2:], total[2:]
    return {
        "first_audio": latency_summary(first),
        "real_time_factor": round(float(np.median(total)) / seconds_of_audio, 4),
        "audio_seconds": round(seconds_of_audio, 2),
        "meets_first_audio_goal": latency_summary(first)["p95_ms"] <= FIRST_AUDIO_GOAL_MS,
    }


def _synthesize_until(runtime, deadline: float, first: list[float]) -> int:
    """Synthesize TEXT again and again until ``deadline``; appends each time to first audio."""
    sentences = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        chunks = runtime.speak(TEXT)
        next(chunks)
        first.append(time.perf_counter() - started)
        for _ in chunks:
            pass
        sentences += 1
    return sentences


def concurrent(runtime, streams: tuple[int, ...] = (1, 2, 4, 8, 16), seconds: float = 3.0) -> dict:
    """Syntheses at once (threads sharing the sessions: onnxruntime runs them in parallel) → first-audio
    p95 and sentences/s; the most streams whose first audio stays within the goal."""
    rows = []
    for count in streams:
        first: list[float] = []
        deadline = time.perf_counter() + seconds
        with ThreadPoolExecutor(count) as pool:
            futures = [pool.submit(_synthesize_until, runtime, deadline, first) for _ in range(count)]
            sentences = sum(future.result() for future in futures)
        summary = latency_summary(first)
        rows.append({"streams": count, "sentences_per_s": round(sentences / seconds, 1), **summary})
        if summary["p95_ms"] > FIRST_AUDIO_GOAL_MS:
            break
    held = max((r["streams"] for r in rows if r["p95_ms"] <= FIRST_AUDIO_GOAL_MS), default=0)
    return {"levels": rows, "streams_within_goal": held}


def check(model_dir: Path, placement: onnx_device.Placement, seconds: float = 3.0) -> dict:
    import onnxruntime as ort

    module = load_runtime(model_dir)
    providers = onnx_device.providers_for(placement, ort.get_available_providers(), "tts")
    cpu = module.FastPitchHifiGan(model_dir)
    gpu = module.FastPitchHifiGan(model_dir, providers=providers)
    spect_cpu, spect_gpu = cpu.spectrogram(TEXT), gpu.spectrogram(TEXT)
    parity: dict = {
        "frames": [spect_cpu.shape[1], spect_gpu.shape[1]],
        "providers": gpu.hifigan.get_providers(),
    }
    if spect_cpu.shape == spect_gpu.shape:
        parity["max_abs_spect_diff"] = float(np.abs(spect_cpu - spect_gpu).max())
        parity["audio_snr_db"] = round(snr_db(cpu.vocode(spect_cpu), gpu.vocode(spect_cpu)), 2)
        parity["passed"] = (
            parity["max_abs_spect_diff"] <= TOLERANCE["max_abs_spect_diff"]
            and parity["audio_snr_db"] >= TOLERANCE["min_audio_snr_db"]
        )
    else:
        parity["passed"] = False
        parity["error"] = "the spectrograms have different frame counts (a duration rounded differently)"
    result = {
        "model": str(model_dir),
        "parity": parity,
        "cpu": speed(cpu, repeats=5),
        "gpu": speed(gpu),
        "gpu_concurrent": concurrent(gpu, seconds=seconds),
        "tolerance": TOLERANCE,
        "passed": parity["passed"],
    }
    print(f"  tts: parity {'ok' if parity['passed'] else 'FAILED'}, gpu {result['gpu']}")
    return result
