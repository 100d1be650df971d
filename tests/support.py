"""Helpers for tests that start real servers (shared with bench/: see rivulet.core.processes)."""

import pytest

from rivulet.core.processes import (
    ROOT,
    ServiceProcess,
    free_port,
    health_status,
    service_env,
    wait_for_health,
)

__all__ = [
    "ASR_ACCURACY_XFAIL",
    "ROOT",
    "ServiceProcess",
    "free_port",
    "health_status",
    "service_env",
    "wait_for_health",
]

# Tests whose assertions need correct transcripts of sentences by held-out voices. The embedded
# ASR model (1.2 M params, 85 min of CPU training) with its domain LM gets digits right (6.7 % WER
# on real held-out speakers) but a fifth of the words of commands wrong (21.4 %,
# bench/reports/asr_accuracy.md), so these are expected to fail until a better model is
# committed; they are reported as xfailed/xpassed, never counted as passing.
ASR_ACCURACY_XFAIL = pytest.mark.xfail(
    reason="needs an ASR model that transcribes held-out voices' sentences correctly; the embedded "
    "asr_streaming gets 21 % of the words of held-out commands wrong (bench/reports/asr_accuracy.md)",
    strict=False,
)
