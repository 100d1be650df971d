"""Small statistics shared by the checks."""

from __future__ import annotations

import numpy as np


def percentile_ms(seconds: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(seconds) * 1000.0, q)), 3) if seconds else float("nan")


def latency_summary(seconds: list[float]) -> dict[str, float]:
    return {f"p{q}_ms": percentile_ms(seconds, q) for q in (50, 95, 99)}
