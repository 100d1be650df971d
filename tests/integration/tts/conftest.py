"""TTS service fixtures: `python -m rivulet.tts` as a real process against the session tritonserver.

The session repository holds ``tts_embedded`` and ``tts_fastpitch_tiny`` (tests/models_tts.py).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
import riva.client

from tests.support import ServiceProcess

SERVICE = "nvidia.riva.tts.RivaSpeechSynthesis"


def start_tts(triton_url: str, log: Path, **settings) -> ServiceProcess:
    env = {"triton_url": triton_url, "readiness_interval_s": 0.2, "log_format": "text", **settings}
    return ServiceProcess("rivulet.tts", log, env).start_serving(SERVICE)


@pytest.fixture(scope="module")
def tts(triton, tmp_path_factory):
    service = start_tts(triton.grpc_url, tmp_path_factory.mktemp("tts") / "tts.log")
    yield service
    service.stop()


@pytest.fixture(scope="module")
def client(tts) -> riva.client.SpeechSynthesisService:
    return riva.client.SpeechSynthesisService(riva.client.Auth(uri=tts.address))


def pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


def wait_for_log(path: Path, pattern: str, timeout_s: float = 15.0) -> re.Match:
    """The first line of `path` matching `pattern` (polls until it is written; a deadline, not a guess)."""
    deadline = time.monotonic() + timeout_s
    while True:
        m = re.search(pattern, path.read_text(errors="replace")) if path.exists() else None
        if m:
            return m
        if time.monotonic() > deadline:
            raise AssertionError(f"no line matching {pattern!r} in {path}")
        time.sleep(0.1)
