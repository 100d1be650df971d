"""Single-query latency of the serving runtime (intent_slot.py + onnxruntime, one thread)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from pipelines.nlu.runtime import intent_slot

DEFAULT_QUERY = "turn on the kitchen lights"


def measure_latency(version_dir: Path, query: str = DEFAULT_QUERY, runs: int = 200, warmup: int = 20) -> dict:
    """Median and p90 of `IntentSlotRuntime.analyze([query])` (split, tokenize, ONNX, decode), 1 thread."""
    runtime = intent_slot().IntentSlotRuntime(str(version_dir), intra_op_num_threads=1)
    for _ in range(warmup):
        runtime.analyze([query])
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runtime.analyze([query])
        times.append((time.perf_counter() - start) * 1000.0)
    times.sort()
    return {
        "query": query,
        "runs": runs,
        "threads": 1,
        "median_ms": statistics.median(times),
        "p90_ms": times[int(0.9 * (runs - 1))],
    }
