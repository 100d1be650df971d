"""Single-query latency of the serving runtime (intent_slot.py + onnxruntime, one thread)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

from pipelines.nlu.runtime import intent_slot

DEFAULT_QUERY = "turn on the kitchen lights"


def measure_latency(
    version_dir: Path, query: str = DEFAULT_QUERY, runs: int = 200, warmup: int = 20, graph: str = ""
) -> dict:
    """Median and p90 of `IntentSlotRuntime.analyze([query])` (split, tokenize, ONNX, decode), 1 thread,
    on `graph` (empty: the one the CPU serves)."""
    runtime = intent_slot().IntentSlotRuntime(str(version_dir), intra_op_num_threads=1, graph=graph)
    timed = time_calls(lambda: runtime.analyze([query]), runs, warmup)
    return {"query": query, "threads": 1, "graph": runtime.graph, **timed}


def time_calls(call: Callable[[], object], runs: int = 200, warmup: int = 20) -> dict:
    """Median, p90 and p95 in ms of `runs` calls of `call` after `warmup` unmeasured ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    times.sort()
    return {
        "runs": runs,
        "median_ms": statistics.median(times),
        "p90_ms": times[int(0.9 * (runs - 1))],
        "p95_ms": times[int(0.95 * (runs - 1))],
    }
