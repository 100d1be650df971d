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

# Tests whose assertions need correct transcripts of held-out voices. The embedded ASR model
# (1.2 M params trained for 55 min on 2 shared CPU cores) does not yet transcribe them reliably
# (bench/reports/asr_train.md, asr_accuracy.md), so they are expected to fail until a better
# model is committed; they are reported as xfailed/xpassed, never counted as passing.
ASR_ACCURACY_XFAIL = pytest.mark.xfail(
    reason="needs an ASR model that transcribes held-out voices correctly; the embedded asr_streaming "
    "(56.7 % dev WER) does not yet (bench/reports/asr_accuracy.md)",
    strict=False,
)
