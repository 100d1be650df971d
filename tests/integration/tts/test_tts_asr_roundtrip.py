"""Round trip through Rivulet: our TTS speaks digits and short commands, our ASR transcribes them.

Both services run as real processes with riva.client against a real tritonserver: by default the
session one (its repository holds ``tts_embedded`` and ``asr_streaming`` from tests/models_*.py);
with RIVULET_ASR_TEST_REPOSITORY set (e.g. ``models`` with the trained ASR default), ASR uses a
tritonserver of its own on that repository, as tests/integration/asr does. The ASR acoustic model
must be the trained one for these transcripts to come out right; the quick untrained build that
tests/models_asr.py makes when no trained weights are committed fails these tests, as it should.

The voice is English-US.Male-1 (flite rms), which ASR training holds out, so this measures our
synthesized speech as a listener that never heard that voice would hear it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import riva.client

from rivulet.core import audio
from rivulet.core.tritonserver import TritonServer
from tests.support import ServiceProcess, free_port

pytestmark = pytest.mark.integration

ASR_SERVICE = "nvidia.riva.asr.RivaSpeechRecognition"
VOICE = "English-US.Male-1"
RATE = 16000


@pytest.fixture(scope="module")
def asr_triton_url(request, tmp_path_factory):
    override = os.environ.get("RIVULET_ASR_TEST_REPOSITORY")
    if not override:
        assert "asr_streaming" in request.getfixturevalue("test_models"), (
            "tests/models_asr.py adds no asr_streaming"
        )
        yield request.getfixturevalue("triton").grpc_url
        return
    log_dir = tmp_path_factory.mktemp("roundtrip-asr-triton")
    server = TritonServer(
        Path(override).resolve(),
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        log_file=log_dir / "tritonserver.log",
        extra_args=["--model-control-mode=explicit", "--load-model=asr_streaming"],
    )
    with server:
        server.wait_ready(["asr_streaming"], timeout_s=300)
        yield server.grpc_url


@pytest.fixture(scope="module")
def asr(asr_triton_url, tmp_path_factory):
    log = tmp_path_factory.mktemp("roundtrip-asr") / "asr.log"
    env = {"triton_url": asr_triton_url, "readiness_interval_s": 0.2}
    service = ServiceProcess("rivulet.asr", log, env).start_serving(ASR_SERVICE)
    try:
        yield riva.client.ASRService(riva.client.Auth(uri=service.address))
    finally:
        service.stop()


def spoken(client: riva.client.SpeechSynthesisService, text: str, online: bool) -> bytes:
    """Our TTS's audio for `text` (16 kHz PCM), with 0.3 s of silence around it as in a conversation."""
    if online:
        data = b"".join(
            r.audio for r in client.synthesize_online(text, voice_name=VOICE, sample_rate_hz=RATE)
        )
    else:
        data = client.synthesize(text, voice_name=VOICE, sample_rate_hz=RATE).audio
    pad = np.zeros(int(0.3 * RATE), dtype=np.float32)
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768
    return audio.encode(np.concatenate([pad, samples, pad]), audio.LINEAR_PCM, RATE)


@pytest.mark.parametrize(
    ("text", "expected", "online"),
    [
        ("3 7 1", "three seven one", False),
        ("6 8 2 4", "six eight two four", True),
        ("turn on the lights", "turn on the lights", True),
        ("what time is it", "what time is it", False),
    ],
)
def test_tts_speech_is_transcribed_by_rivulet_asr(client, asr, text, expected, online):
    config = riva.client.RecognitionConfig(
        encoding=riva.client.AudioEncoding.LINEAR_PCM, sample_rate_hertz=RATE, language_code="en-US",
        verbatim_transcripts=True,  # the spoken form: numbers as words
    )  # fmt: skip
    response = asr.offline_recognize(spoken(client, text, online), config)
    transcript = " ".join(r.alternatives[0].transcript for r in response.results).strip()
    assert transcript == expected
