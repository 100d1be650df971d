"""Streaming ASR on the GPU: parity with the CPU path, then how many real-time streams one GPU holds.

Parity: the same streams (160 ms chunks, several streams batched per step) through the CPU path
(numpy caches) and the GPU path (CUDA provider, caches on the device). Tolerances: every frame's
best token the same in at least 99.5 % of frames, and no probability (exp of a log-probability)
more than 0.01 apart (TF32 matrix products and cuDNN convolutions round differently from the CPU).

Capacity: N streams send a 160 ms chunk every 160 ms, their phases spread over the period; one
server loop (one Triton instance of asr_streaming) takes whatever has arrived, up to the GPU
config's 256 per step, as Triton's sequence batcher would. A chunk's latency is from its arrival
to the end of the step that answered it. N passes while the p95 is under 100 ms. This is the model
code alone, without Triton's and gRPC's hops (bench/asr_latency.py measures the whole service).
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

from bench.gpu_check.stats import latency_summary
from pipelines import onnx_device

SAMPLE_RATE = 16000
CHUNK_S = 0.16
CHUNK = int(SAMPLE_RATE * CHUNK_S)
MAX_BATCH = 256  # pipelines.device_config: the GPU config's max_batch_size
GOAL_P95_MS = 100.0
TOLERANCE = {"min_argmax_agreement": 0.995, "max_abs_prob_diff": 0.01}
RIVA_STREAMS_PER_GPU = 270  # NVIDIA's published streaming ASR figure, for comparison


def load_runtime(model_dir: Path):
    name = "rivulet_asr_stream_runtime"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, model_dir / "asr_stream.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_audio(inputs: Path | None, count: int = 12) -> tuple[list[np.ndarray], str]:
    """Real speech clips from ``inputs/asr_audio.npz`` (written by ``prepare``), else synthetic sound."""
    if inputs and (inputs / "asr_audio.npz").is_file():
        with np.load(inputs / "asr_audio.npz") as data:
            clips = [data[key].astype(np.float32) for key in sorted(data.files)]
        return clips[:count], f"{min(count, len(clips))} recorded speech clips ({inputs / 'asr_audio.npz'})"
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE * 3) / SAMPLE_RATE
    clips = []
    for i in range(count):
        tone = np.sin(2 * np.pi * (150 + 40 * i) * t) * (np.sin(2 * np.pi * (2 + i % 3) * t) > 0)
        clips.append((0.3 * tone + 0.02 * rng.standard_normal(t.size)).astype(np.float32))
    return clips, "synthetic voiced tones and noise (no prepared speech clips)"


def run_interleaved(recognizer, audios: list[np.ndarray]) -> list[np.ndarray]:
    parts: list[list[np.ndarray]] = [[] for _ in audios]
    for offset in range(0, max(a.size for a in audios), CHUNK):
        requests = [
            (k + 1, a[offset : offset + CHUNK], offset == 0, offset + CHUNK >= a.size)
            for k, a in enumerate(audios)
            if offset < a.size
        ]
        for (key, *_), result in zip(requests, recognizer.process(requests), strict=True):
            parts[key - 1].append(result.logprobs)
    return [np.concatenate(p) for p in parts]


def parity(model_dir: Path, placement: onnx_device.Placement, audios: list[np.ndarray]) -> dict:
    runtime = load_runtime(model_dir)
    cpu = runtime.StreamingRecognizer(str(model_dir))
    gpu = runtime.StreamingRecognizer(str(model_dir), placement=placement, caches_on_device=True)
    expected, got = run_interleaved(cpu, audios), run_interleaved(gpu, audios)
    config = cpu.config
    frames = agree = same_text = 0
    max_logprob = max_prob = 0.0
    for a, b in zip(expected, got, strict=True):
        if a.shape != b.shape:
            return {"passed": False, "error": f"frame counts differ: {a.shape} vs {b.shape}"}
        frames += a.shape[0]
        agree += int((a.argmax(-1) == b.argmax(-1)).sum())
        max_logprob = max(max_logprob, float(np.abs(a - b).max(initial=0.0)))
        max_prob = max(max_prob, float(np.abs(np.exp(a) - np.exp(b)).max(initial=0.0)))
        decode = runtime.greedy_ctc
        same_text += decode(a, config.vocabulary, config.blank_index, config.tokenizer) == decode(
            b, config.vocabulary, config.blank_index, config.tokenizer
        )
    agreement = agree / max(frames, 1)
    return {
        "streams": len(audios),
        "frames": frames,
        "argmax_agreement": round(agreement, 5),
        "max_abs_prob_diff": max_prob,
        "max_abs_logprob_diff": max_logprob,
        "same_greedy_transcripts": f"{same_text}/{len(audios)}",
        "providers": gpu.encoder.get_providers(),
        "caches_on": gpu.device_caches.device[0] if gpu.device_caches else "host",
        "tolerance": TOLERANCE,
        "passed": agreement >= TOLERANCE["min_argmax_agreement"]
        and max_prob <= TOLERANCE["max_abs_prob_diff"],
    }


def simulate(
    recognizer, streams: int, audios: list[np.ndarray], seconds: float, warm_chunks: int = 3
) -> dict:
    """``streams`` real-time streams for ``seconds`` of audio each; the latency of every chunk after
    the first few (``warm_chunks``) of each stream."""
    n_chunks = max(warm_chunks + 2, int(seconds / CHUNK_S))
    looped = [np.resize(audios[i % len(audios)], n_chunks * CHUNK) for i in range(streams)]
    phases = np.arange(streams) / streams * CHUNK_S
    events = sorted((k * CHUNK_S + phases[i], i, k) for i in range(streams) for k in range(n_chunks))
    latencies: list[float] = []
    batches: list[int] = []
    start = time.perf_counter() + 0.05
    position = 0
    while position < len(events):
        now = time.perf_counter() - start
        if events[position][0] > now:
            time.sleep(min(events[position][0] - now, 0.002))
            continue
        batch = []
        while position < len(events) and events[position][0] <= now and len(batch) < MAX_BATCH:
            batch.append(events[position])
            position += 1
        requests = [
            (i + 1, looped[i][k * CHUNK : (k + 1) * CHUNK], k == 0, k == n_chunks - 1) for _, i, k in batch
        ]
        results = recognizer.process(requests)
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise RuntimeError(f"{len(errors)} chunks failed, first: {errors[0]}")
        done = time.perf_counter() - start
        latencies += [done - arrival for arrival, _, k in batch if k >= warm_chunks]
        batches.append(len(batch))
    summary = latency_summary(latencies)
    return {
        "streams": streams,
        "chunks_measured": len(latencies),
        **summary,
        "mean_batch": round(float(np.mean(batches)), 1),
        "steps": len(batches),
        "passed": summary["p95_ms"] < GOAL_P95_MS,
    }


def capacity(
    model_dir: Path,
    placement: onnx_device.Placement,
    audios: list[np.ndarray],
    levels: list[int],
    seconds: float,
) -> dict:
    runtime = load_runtime(model_dir)
    recognizer = runtime.StreamingRecognizer(str(model_dir), placement=placement, caches_on_device=True)
    simulate(recognizer, min(levels), audios, 1.0, warm_chunks=0)  # warm-up: allocations, cuDNN algorithms
    results = []
    for streams in levels:
        result = simulate(recognizer, streams, audios, seconds)
        results.append(result)
        print(f"  asr {streams:5d} streams: p95 {result['p95_ms']:.1f} ms, mean batch {result['mean_batch']}")
        if not result["passed"]:
            break
    held = max((r["streams"] for r in results if r["passed"]), default=0)
    return {
        "levels": results,
        "streams_held": held,
        "goal": f"p95 chunk latency < {GOAL_P95_MS:.0f} ms",
        "riva_published_streams_per_gpu": RIVA_STREAMS_PER_GPU,
        "note": "model code only (the Triton python model's path), no Triton or gRPC hops",
    }
