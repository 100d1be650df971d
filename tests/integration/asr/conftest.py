"""ASR service fixtures: the service as a real process against a real tritonserver, test speech.

The acoustic model comes from the session `triton` (tests/models_asr.py puts `asr_streaming`
into the session repository). Set RIVULET_ASR_TEST_REPOSITORY to a model repository (e.g.
`models`, with the trained default) to run these tests against that model instead, on a
tritonserver of their own that loads only `asr_streaming`.

Speech is synthesized with a voice the acoustic model never heard in training (one of
pipelines.asr.data's held-out voices), resampled to 16 kHz.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest
import riva.client

from rivulet.core import audio
from rivulet.core.tritonserver import TritonServer
from rivulet.voices import Voice, synthesize
from tests.support import ServiceProcess, free_port

MODEL = "asr_streaming"
SERVICE = "nvidia.riva.asr.RivaSpeechRecognition"
RATE = 16_000
# Held out from ASR training by pipelines/asr/data.py (checked in test_voice_is_held_out).
VOICE = "flite:rms"
# Small limits so the limit tests are cheap.
MAX_STREAM_SECONDS = 30
MAX_STREAM_BYTES = 1024 * 1024  # 10.9 s at 48 kHz: under the duration limit


def explicit_asr_triton(repository: Path, log_dir: Path, ports: dict[str, int] | None = None) -> TritonServer:
    """A tritonserver of its own that loads only the ASR model of `repository`."""
    ports = ports or {"grpc_port": free_port(), "http_port": free_port(), "metrics_port": free_port()}
    return TritonServer(
        repository,
        log_file=log_dir / "tritonserver.log",
        extra_args=["--model-control-mode=explicit", f"--load-model={MODEL}"],
        **ports,
    )


@pytest.fixture(scope="session")
def asr_repository(request) -> Path:
    override = os.environ.get("RIVULET_ASR_TEST_REPOSITORY")
    if override:
        return Path(override).resolve()
    return request.getfixturevalue("nlu_repository")  # the session repository (all services)


@pytest.fixture(scope="session")
def asr_triton_url(request, tmp_path_factory) -> str:
    override = os.environ.get("RIVULET_ASR_TEST_REPOSITORY")
    if not override:
        triton = request.getfixturevalue("triton")
        assert MODEL in (request.getfixturevalue("test_models")), "tests/models_asr.py adds no asr_streaming"
        yield triton.grpc_url
        return
    server = explicit_asr_triton(Path(override).resolve(), tmp_path_factory.mktemp("asr-triton"))
    with server:
        server.wait_ready([MODEL], timeout_s=300)
        yield server.grpc_url


def start_service(triton_url: str, log: Path, repository: Path, **settings) -> ServiceProcess:
    env = {
        "triton_url": triton_url,
        "asr_model_repository": str(repository),
        "readiness_interval_s": 0.2,
        "asr_max_stream_seconds": MAX_STREAM_SECONDS,
        "asr_max_stream_bytes": MAX_STREAM_BYTES,
        # the tests check what the passes write, not how fast on a shared machine: a Whisper pass
        # slowed by other jobs must not leave the final to the streaming model
        "asr_second_pass_timeout_ms": 60000,
        **settings,
    }
    return ServiceProcess("rivulet.asr", log, env).start_serving(SERVICE)


@pytest.fixture(scope="module")
def asr(asr_triton_url, asr_repository, tmp_path_factory):
    service = start_service(asr_triton_url, tmp_path_factory.mktemp("asr") / "asr.log", asr_repository)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def client(asr) -> riva.client.ASRService:
    return riva.client.ASRService(riva.client.Auth(uri=asr.address))


@functools.cache
def speech(text: str, voice: str = VOICE, pad_s: float = 0.3) -> np.ndarray:
    """`text` spoken by `voice`: 16 kHz mono float32 with `pad_s` of silence on both sides."""
    samples, rate = synthesize(Voice.parse(voice), text)
    samples = audio.resample(samples, rate, RATE)
    samples = 0.7 * samples / max(1e-6, float(np.abs(samples).max()))
    pad = np.zeros(int(pad_s * RATE), dtype=np.float32)
    return np.concatenate([pad, samples.astype(np.float32), pad])


def pcm16(samples: np.ndarray, rate: int = RATE) -> bytes:
    return audio.encode(audio.resample(samples, RATE, rate), audio.LINEAR_PCM, rate)


def chunks(data: bytes, size: int = 3200) -> list[bytes]:
    """Audio messages of `size` bytes (3200 bytes = 100 ms of 16 kHz PCM: not the model's 160 ms)."""
    return [data[i : i + size] for i in range(0, len(data), size)]
