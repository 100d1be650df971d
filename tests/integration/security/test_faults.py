"""Faults under load: Triton killed (SIGKILL) while 16 ASR streams and 4 spoken conversations run,
then started again on the same ports. Every ASR stream must end with UNAVAILABLE within 1 s, every
conversation must get a dialog error event within 1 s (its Converse stream staying open), health
must turn NOT_SERVING, and once Triton is back new ASR streams work and the same conversations are
answered again, without restarting any service; no acknowledged turn is lost.

The stack is the real voice stack (bench.dialog_support.SpeechStack) on a tritonserver of its own:
the streaming ASR model and Whisper, the tests' quick intent model, the embedded TTS; the ASR, NLU,
TTS and dialog services; Redis. Figures: `fault_figures` (RIVULET_FAULT_REPORT_DIR)."""

from __future__ import annotations

import functools
import itertools
import os
import signal
import statistics
import threading
import time
import uuid

import grpc
import pytest
from riva.proto import riva_asr_pb2 as rasr
from riva.proto import riva_asr_pb2_grpc

from bench.dialog_support import MODELS, SpeechStack, compose_repository, default_sources, user_speech
from rivulet.core import audio
from rivulet.core.processes import health_status, wait_for_health
from rivulet.core.tritonserver import TritonServer
from rivulet.dialog.v1 import dialog_pb2 as pb
from rivulet.dialog.v1 import dialog_pb2_grpc
from rivulet.voices import Voice, synthesize
from tests.integration.security.conftest import ASR
from tests.models_asr import committed_model
from tests.support import fault_figures

pytestmark = pytest.mark.integration

STREAMS = 16
CONVERSATIONS = 4
RATE = 16_000
CHUNK = 3200  # 100 ms of 16 kHz PCM16
SERVICES = {
    "asr": ASR,
    "nlu": "nvidia.riva.nlp.RivaLanguageUnderstanding",
    "tts": "nvidia.riva.tts.RivaSpeechSynthesis",
}


def chunks_of(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + CHUNK] for i in range(0, len(pcm), CHUNK)]


@functools.cache
def speech_chunks() -> list[bytes]:
    """'seven three nine' spoken by flite, 16 kHz PCM, in 100 ms messages (then silence)."""
    samples, rate = synthesize(Voice.parse("flite:rms"), "seven three nine")
    pcm = audio.encode(audio.resample(samples, rate, RATE), audio.LINEAR_PCM, RATE) + b"\0" * CHUNK * 10
    return chunks_of(pcm)


@functools.cache
def question_chunks() -> list[bytes]:
    """A user asking the time, then 3 s of silence while the answer plays (one turn per cycle)."""
    pcm, _ = user_speech("what time is it")
    return chunks_of(pcm + b"\0" * CHUNK * 30)


class LiveCall:
    """A streaming call on a thread of its own, fed 100 ms of audio every 100 ms until stopped or
    failed; every message it receives kept with its arrival time."""

    def __init__(self) -> None:
        self.received: list[tuple[float, object]] = []
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.failed_at = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _call(self):
        raise NotImplementedError

    def _run(self) -> None:
        try:
            for message in self._call():
                self.received.append((time.monotonic(), message))
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            self.code, self.details = exc.code(), exc.details() or ""
        self.failed_at = time.monotonic()

    def start(self):
        self.thread.start()
        return self


class LiveStream(LiveCall):
    """One StreamingRecognize call: 'seven three nine' and a second of silence, again and again."""

    def __init__(self, stub: riva_asr_pb2_grpc.RivaSpeechRecognitionStub) -> None:
        super().__init__()
        self.stub = stub

    def _requests(self):
        config = rasr.RecognitionConfig(encoding=1, sample_rate_hertz=RATE, language_code="en-US")
        yield rasr.StreamingRecognizeRequest(
            streaming_config=rasr.StreamingRecognitionConfig(config=config, interim_results=True)
        )
        chunks = itertools.cycle(speech_chunks())
        while not self.stop.wait(0.1):
            yield rasr.StreamingRecognizeRequest(audio_content=next(chunks))

    def _call(self):
        return self.stub.StreamingRecognize(self._requests(), timeout=120)


class LiveConversation(LiveCall):
    """One Converse stream with a microphone that asks a question every few seconds, and spoken
    replies."""

    def __init__(self, stub: dialog_pb2_grpc.DialogStub) -> None:
        super().__init__()
        self.stub, self.session_id = stub, f"fault-{uuid.uuid4().hex[:10]}"

    def _requests(self):
        yield pb.ConverseRequest(
            config=pb.ConverseConfig(
                session_id=self.session_id,
                audio=pb.AudioFormat(encoding=audio.LINEAR_PCM, sample_rate_hz=RATE),
                voice=pb.VoiceConfig(enabled=True, sample_rate_hz=RATE),
            )
        )
        chunks = itertools.cycle(question_chunks())
        while not self.stop.wait(0.1):
            yield pb.ConverseRequest(audio=next(chunks))

    def _call(self):
        return self.stub.Converse(self._requests(), timeout=600)

    def replies(self, since: float = 0.0) -> list[tuple[float, pb.ConverseResponse]]:
        """Acknowledged user turns: their reply reached the client (timer announcements excluded)."""
        return [
            (t, m)
            for t, m in list(self.received)
            if t >= since and m.WhichOneof("response") == "reply" and not m.turn_id.startswith("announce-")
        ]

    def first_error(self, since: float) -> tuple[float, pb.DialogError] | None:
        return next(
            (
                (t, m.error)
                for t, m in list(self.received)
                if t >= since and m.WhichOneof("response") == "error"
            ),
            None,
        )


def wait_until(condition, timeout_s: float, what: str) -> float:
    """Poll `condition` until it holds (a deadline, not a guess); returns when it held."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout_s:.0f} s"
        time.sleep(0.05)
    return time.monotonic()


@pytest.fixture(scope="module")
def fault_stack(redis_url, nlu_repository, tmp_path_factory):
    if committed_model() is None:
        pytest.skip("models/asr_streaming has no committed weights")
    workdir = tmp_path_factory.mktemp("faults")
    sources = default_sources(extra=(nlu_repository,))
    repository = compose_repository(workdir / "repository", sources)
    models = [m for m in MODELS.values() if m in sources]
    with SpeechStack(workdir / "stack", repository, models, redis_url) as stack:
        yield stack


def _kill(triton: TritonServer) -> float:
    assert triton.process is not None
    os.killpg(triton.process.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    triton.process.wait()
    return killed_at


def spread(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "min": round(values[0], 3),
        "median": round(statistics.median(values), 3),
        "max": round(values[-1], 3),
    }


def test_triton_killed_under_16_streams_and_4_conversations_then_recovers(fault_stack):
    stack: SpeechStack = fault_stack
    asr, triton = stack.services["asr"], stack.triton
    channel = grpc.insecure_channel(asr.address)
    stub = riva_asr_pb2_grpc.RivaSpeechRecognitionStub(channel)
    dialog_channel = grpc.insecure_channel(stack.dialogs[0].address)
    dialog = dialog_pb2_grpc.DialogStub(dialog_channel)
    streams = [LiveStream(stub).start() for _ in range(STREAMS)]
    talks = [LiveConversation(dialog).start() for _ in range(CONVERSATIONS)]
    wait_until(lambda: all(c.replies() for c in talks), 120, "every conversation answered before the fault")
    assert all(s.received for s in streams), "streams got no results before the fault"
    assert all(s.code is None for s in streams), [(s.code, s.details) for s in streams if s.code]

    killed_at = _kill(triton)
    for stream in streams:
        stream.thread.join(10)
    not_serving_at = wait_until(
        lambda: health_status(asr.address, ASR) == "NOT_SERVING", 5, "ASR health NOT_SERVING with Triton dead"
    )
    wait_until(
        lambda: all(c.first_error(killed_at) for c in talks), 10, "an error event in every conversation"
    )
    for stream in streams:
        stream.stop.set()

    codes = {s.code for s in streams}
    to_unavailable = [s.failed_at - killed_at for s in streams]
    assert codes == {grpc.StatusCode.UNAVAILABLE}, [(s.code, s.details) for s in streams]
    assert all("riton" in s.details for s in streams), streams[0].details  # names the dependency
    assert max(to_unavailable) <= 1.0, (
        f"slowest stream learned of the outage after {max(to_unavailable):.2f} s"
    )
    errors = [c.first_error(killed_at) for c in talks]
    to_error = [t - killed_at for t, _ in errors]
    assert {e.code for _, e in errors} == {"UNAVAILABLE"}, [e for _, e in errors]
    assert max(to_error) <= 1.0, f"slowest conversation learned of the outage after {max(to_error):.2f} s"
    assert all(c.code is None for c in talks), [(c.code, c.details) for c in talks]  # streams stay open

    restarted_at = time.monotonic()
    triton.start()
    triton.wait_ready(stack.models, timeout_s=300)
    triton_ready_at = time.monotonic()
    for kind, service in stack.services.items():
        wait_for_health(service.address, service=SERVICES[kind], timeout_s=30)
    serving_at = time.monotonic()
    after = [LiveStream(stub).start() for _ in range(4)]
    wait_until(
        lambda: all(c.replies(triton_ready_at) for c in talks), 120, "every conversation answered again"
    )
    answered_again = [c.replies(triton_ready_at)[0][0] - triton_ready_at for c in talks]
    # the new streams are stopped only once they have heard back (the conversations can answer
    # before a stream started after them has sent its first word)
    wait_until(lambda: all(s.received or s.code for s in after), 60, "every new stream got results")
    for stream in after:
        stream.stop.set()
    for stream in after:
        stream.thread.join(20)
    assert {s.code for s in after} == {grpc.StatusCode.OK}, [(s.code, s.details) for s in after]
    assert all(s.received for s in after)

    for talk in talks:
        talk.stop.set()
    for talk in talks:
        talk.thread.join(30)
    assert all(c.code == grpc.StatusCode.OK for c in talks), [(c.code, c.details) for c in talks]
    acknowledged = lost = 0
    for talk in talks:  # every turn whose reply reached the client is in the session, in order
        heard = [m.turn_id for _, m in talk.replies()]
        stored = dialog.GetSession(pb.GetSessionRequest(session_id=talk.session_id), timeout=10).history
        assert [h.turn_id for h in stored] == heard, talk.session_id
        acknowledged += len(heard)
        lost += len(set(heard) - {h.turn_id for h in stored})
    channel.close()
    dialog_channel.close()

    fault_figures(
        "triton_killed",
        {
            "asr_streams": STREAMS,
            "conversations": CONVERSATIONS,
            "kill_to_stream_unavailable_s": spread(to_unavailable),
            "kill_to_conversation_error_event_s": spread(to_error),
            "conversation_error_stages": sorted({e.stage for _, e in errors}),
            "kill_to_asr_not_serving_s": round(not_serving_at - killed_at, 3),
            "triton_restart_to_ready_s": round(triton_ready_at - restarted_at, 3),
            "triton_ready_to_services_serving_s": round(serving_at - triton_ready_at, 3),
            "triton_ready_to_conversation_answered_again_s": spread(answered_again),
            "streams_after_recovery_ok": len(after),
            "acknowledged_turns": acknowledged,
            "turns_lost": lost,
        },
    )
