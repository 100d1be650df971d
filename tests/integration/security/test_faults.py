"""Faults under load: Triton killed (SIGKILL) while 16 ASR streams run, then started again on the same
ports. Every stream must end with UNAVAILABLE within 1 s, health must turn NOT_SERVING, and new
streams must work again once Triton is back, without restarting the ASR service.

Figures go to RIVULET_FAULT_REPORT (JSON) when set (bench/faults.py)."""

from __future__ import annotations

import functools
import itertools
import json
import os
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest
from riva.proto import riva_asr_pb2 as rasr
from riva.proto import riva_asr_pb2_grpc

from rivulet.core import audio
from rivulet.core.processes import health_status, wait_for_health
from rivulet.core.tritonserver import TritonServer
from rivulet.voices import Voice, synthesize
from tests.integration.security.conftest import ASR
from tests.models_asr import committed_model
from tests.support import ROOT, ServiceProcess, free_port

pytestmark = pytest.mark.integration

STREAMS = 16
RATE = 16_000


@functools.cache
def speech_chunks() -> list[bytes]:
    """'seven three nine' spoken by flite, 16 kHz PCM, in 100 ms messages (then silence)."""
    samples, rate = synthesize(Voice.parse("flite:rms"), "seven three nine")
    pcm = audio.encode(audio.resample(samples, rate, RATE), audio.LINEAR_PCM, RATE) + b"\0" * 3200 * 10
    return [pcm[i : i + 3200] for i in range(0, len(pcm), 3200)]


class LiveStream:
    """One StreamingRecognize call fed 100 ms of audio every 100 ms until stopped or failed."""

    def __init__(self, stub: riva_asr_pb2_grpc.RivaSpeechRecognitionStub) -> None:
        self.stub = stub
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.failed_at = 0.0
        self.responses = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _requests(self):
        config = rasr.RecognitionConfig(encoding=1, sample_rate_hertz=RATE, language_code="en-US")
        yield rasr.StreamingRecognizeRequest(
            streaming_config=rasr.StreamingRecognitionConfig(config=config, interim_results=True)
        )
        chunks = itertools.cycle(speech_chunks())
        while not self.stop.wait(0.1):
            yield rasr.StreamingRecognizeRequest(audio_content=next(chunks))

    def _run(self) -> None:
        try:
            for _ in self.stub.StreamingRecognize(self._requests(), timeout=120):
                self.responses += 1
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            self.code, self.details = exc.code(), exc.details() or ""
        self.failed_at = time.monotonic()

    def start(self) -> LiveStream:
        self.thread.start()
        return self


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory):
    if committed_model() is None:
        pytest.skip("models/asr_streaming has no committed weights")
    directory = tmp_path_factory.mktemp("faults")
    triton = TritonServer(
        ROOT / "models",
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        log_file=directory / "tritonserver.log",
        extra_args=["--model-control-mode=explicit", "--load-model=asr_streaming"],
    )
    triton.start()
    triton.wait_ready(["asr_streaming"], timeout_s=300)
    env = {
        "triton_url": triton.grpc_url,
        "asr_model_repository": str(ROOT / "models"),
        "readiness_interval_s": 0.2,
        "log_format": "text",
    }
    asr = ServiceProcess("rivulet.asr", directory / "asr.log", env).start_serving(ASR)
    yield triton, asr
    asr.stop()
    triton.stop()


def _kill(triton: TritonServer) -> float:
    assert triton.process is not None
    os.killpg(triton.process.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    triton.process.wait()
    return killed_at


def test_triton_killed_under_16_streams_then_recovers(fault_stack):
    triton, asr = fault_stack
    channel = grpc.insecure_channel(asr.address)
    stub = riva_asr_pb2_grpc.RivaSpeechRecognitionStub(channel)
    streams = [LiveStream(stub).start() for _ in range(STREAMS)]
    time.sleep(2.5)
    assert all(s.responses > 0 for s in streams), "streams got no results before the fault"
    assert all(s.code is None for s in streams), [(s.code, s.details) for s in streams if s.code]

    killed_at = _kill(triton)
    for stream in streams:
        stream.thread.join(10)
    not_serving_at = None
    deadline = killed_at + 5
    while time.monotonic() < deadline:
        if health_status(asr.address, ASR) == "NOT_SERVING":
            not_serving_at = time.monotonic()
            break
        time.sleep(0.05)
    for stream in streams:
        stream.stop.set()

    codes = {s.code for s in streams}
    to_unavailable = sorted(s.failed_at - killed_at for s in streams)
    assert codes == {grpc.StatusCode.UNAVAILABLE}, [(s.code, s.details) for s in streams]
    assert all("riton" in s.details for s in streams), streams[0].details  # names the dependency
    assert to_unavailable[-1] <= 1.0, f"slowest stream learned of the outage after {to_unavailable[-1]:.2f} s"
    assert not_serving_at is not None, "health stayed SERVING with Triton dead"

    restarted_at = time.monotonic()
    triton.start()
    triton.wait_ready(["asr_streaming"], timeout_s=300)
    triton_ready_at = time.monotonic()
    wait_for_health(asr.address, service=ASR, timeout_s=30)
    serving_at = time.monotonic()
    after = [LiveStream(stub).start() for _ in range(4)]
    time.sleep(2.5)
    for stream in after:
        stream.stop.set()
    for stream in after:
        stream.thread.join(20)
    assert {s.code for s in after} == {grpc.StatusCode.OK}, [(s.code, s.details) for s in after]
    assert all(s.responses > 0 for s in after)
    channel.close()

    figures = {
        "streams": STREAMS,
        "kill_to_unavailable_s": {
            "min": to_unavailable[0],
            "median": to_unavailable[len(to_unavailable) // 2],
            "max": to_unavailable[-1],
        },
        "kill_to_not_serving_s": not_serving_at - killed_at,
        "triton_restart_to_ready_s": triton_ready_at - restarted_at,
        "triton_ready_to_asr_serving_s": serving_at - triton_ready_at,
        "streams_after_recovery_ok": len(after),
    }
    print(json.dumps(figures, indent=2))
    if os.environ.get("RIVULET_FAULT_REPORT"):
        Path(os.environ["RIVULET_FAULT_REPORT"]).write_text(json.dumps(figures, indent=2) + "\n")
