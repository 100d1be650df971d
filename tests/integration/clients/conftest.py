"""The all-in-one stack (`python -m rivulet.stack`, what `make run` starts) for third-party clients.

One stack per test session on free ports, serving the session's test model repository (the
quick NLU model, the committed ASR model, the embedded TTS voices) with a Triton of its own, as
tests/integration/test_stack.py starts it. Clients reach it without TLS at `127.0.0.1:<port>`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.integration.asr.conftest import RATE, speech
from tests.integration.clients.client_venv import HERE, client_python
from tests.support import free_port, service_env, wait_for_health

SPOKEN = "three seven one"  # digits: what the ASR gets right from held-out voices
TO_SPEAK = "Your table is booked for four."


@pytest.fixture(scope="session")
def riva_stack(nlu_repository, test_models, redis_url, tmp_path_factory) -> str:
    log_dir = tmp_path_factory.mktemp("client-stack")
    port = free_port()
    env = service_env(
        grpc_port=port,
        metrics_port=free_port(),
        triton_grpc_port=free_port(),
        triton_http_port=free_port(),
        triton_metrics_port=free_port(),
        redis_url=redis_url,
        asr_model_repository=str(nlu_repository),
    )
    command = [sys.executable, "-m", "rivulet.stack", "--model-repository", str(nlu_repository)]
    with open(log_dir / "stack.log", "wb") as log:
        process = subprocess.Popen(
            [*command, "--log-dir", str(log_dir)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            try:
                wait_for_health(f"127.0.0.1:{port}", timeout_s=400)  # Triton loads every test model
            except Exception as exc:  # say why: the stack's own log
                tail = (log_dir / "stack.log").read_text(errors="replace")[-3000:]
                raise AssertionError(
                    f"the stack did not become healthy ({exc}); its log ends:\n{tail}"
                ) from exc
            yield f"127.0.0.1:{port}"
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(60)


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    """SPOKEN by a held-out voice, 16 kHz 16-bit mono, with 1 s of silence after it (an endpoint)."""
    path = tmp_path_factory.mktemp("client-speech") / "speech.wav"
    samples = np.concatenate([speech(SPOKEN), np.zeros(RATE, dtype=np.float32)])
    soundfile.write(path, samples, RATE, subtype="PCM_16")
    return path


def drive(client: str, *args: str, timeout_s: float = 240) -> dict:
    """Run tests/integration/clients/drive_<client>.py in the client's own virtualenv; its JSON."""
    python = client_python(client)
    done = subprocess.run(
        [str(python), str(HERE / f"drive_{client}.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def run_client(riva_stack, speech_wav):
    """run_client("pipecat" | "livekit"): its driver's JSON, run once per session against the stack."""
    results: dict[str, dict] = {}

    def run(client: str) -> dict:
        if client not in results:
            results[client] = drive(client, riva_stack, str(speech_wav), TO_SPEAK)
        return results[client]

    return run
