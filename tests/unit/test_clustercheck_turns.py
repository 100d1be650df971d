"""rivulet.clustercheck smoke turns for ASR, TTS and Dialog: judgements over real response messages
(riva.client's protos, Rivulet's generated dialog protos, audio from a real offline voice), the
real clients against an address nobody serves, and the choice of turns per deployed API."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from riva.client.proto import riva_asr_pb2, riva_tts_pb2

from rivulet import voices
from rivulet.clustercheck import smoke
from rivulet.clustercheck.__main__ import parse_args, turn_options
from rivulet.clustercheck.report import Status
from rivulet.dialog.v1 import dialog_pb2


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


@pytest.fixture(scope="module")
def spoken() -> tuple[bytes, int]:
    """'Rivulet is ready.' spoken by flite's slt voice (an engine tts_embedded uses), as 16-bit PCM."""
    audio, rate = voices.synthesize(voices.Voice.parse("flite:slt"), "Rivulet is ready.")
    return pcm16(audio), rate


# ---- ASR ---------------------------------------------------------------------------------------------


def asr_config(*models: tuple[str, dict[str, str]]) -> riva_asr_pb2.RivaSpeechRecognitionConfigResponse:
    response = riva_asr_pb2.RivaSpeechRecognitionConfigResponse()
    for name, params in models:
        config = response.model_config.add(model_name=name)
        config.parameters.update(params)
    return response


def test_asr_config_lists_a_model() -> None:
    response = asr_config(("asr_streaming", {"language_code": "en-US", "type": "online"}))
    check = smoke.judge_asr_config(response, 0.004)
    assert (check.status, check.subject) == (Status.OK, "ASR GetRivaSpeechRecognitionConfig")
    assert check.detail == "-> 1 model: asr_streaming (language_code=en-US, type=online) in 4 ms"


def test_asr_config_without_models_or_without_the_expected_one_fails() -> None:
    empty = smoke.judge_asr_config(asr_config(), 0.01)
    assert empty.status is Status.FAIL and "no ASR model listed" in empty.detail
    other = smoke.judge_asr_config(asr_config(("asr_other", {})), 0.01, expect_model="asr_streaming")
    assert other.status is Status.FAIL and other.detail.endswith("expected asr_streaming")


# ---- TTS ---------------------------------------------------------------------------------------------


def test_synthesis_of_real_speech_passes(spoken: tuple[bytes, int]) -> None:
    audio, rate = spoken
    check = smoke.judge_synthesis(
        "Rivulet is ready.", riva_tts_pb2.SynthesizeSpeechResponse(audio=audio), rate, 0.2
    )
    assert check.status is Status.OK, check
    seconds = len(audio) / 2 / rate
    assert check.detail.startswith(f"-> {seconds:.2f} s of audio at {rate} Hz") and seconds > 0.5


@pytest.mark.parametrize(
    ("audio", "detail"),
    [
        (b"", "no audio"),
        (pcm16(np.zeros(16000)), "1.00 s of silence"),
        (pcm16(np.full(8000, 1e-4)), "of silence"),
    ],
)
def test_synthesis_without_audible_audio_fails(audio: bytes, detail: str) -> None:
    check = smoke.judge_synthesis("hi", riva_tts_pb2.SynthesizeSpeechResponse(audio=audio), 16000, 0.1)
    assert check.status is Status.FAIL and detail in check.detail, check


def test_audio_summary_level() -> None:
    seconds, dbfs = smoke.audio_summary(pcm16(0.5 * np.sin(np.linspace(0, 2000 * np.pi, 16000))), 16000)
    assert seconds == 1.0 and -10 < dbfs < -8  # a 0.5 sine is -9 dBFS RMS


# ---- Dialog ------------------------------------------------------------------------------------------


def text_turn(intent: str, reply: str, audio: bytes = b"", rate: int = 16000) -> dialog_pb2.TextTurnResponse:
    return dialog_pb2.TextTurnResponse(
        turn_id="t1",
        understanding=dialog_pb2.Understanding(intent=intent, score=0.98),
        reply=dialog_pb2.Reply(text=reply, action="time.tell"),
        audio=audio,
        sample_rate_hz=rate,
    )


def test_text_turn_understood_answered_and_spoken(spoken: tuple[bytes, int]) -> None:
    audio, rate = spoken
    check = smoke.judge_text_turn("what time is it", text_turn("GetTime", "It is 9:40.", audio, rate), 0.15)
    assert check.status is Status.OK and check.subject == 'Dialog TextTurn "what time is it"'
    assert check.detail.startswith("-> GetTime: 'It is 9:40.' + ") and check.detail.endswith("in 150 ms")


def test_text_turn_failures() -> None:
    no_intent = smoke.judge_text_turn("hm", text_turn("", "Sorry?"), 0.1, want_audio=False)
    assert no_intent.status is Status.FAIL and "(no intent)" in no_intent.detail
    no_reply = smoke.judge_text_turn("hm", text_turn("GetTime", ""), 0.1, want_audio=False)
    assert no_reply.status is Status.FAIL and "(no reply)" in no_reply.detail
    mute = smoke.judge_text_turn("what time is it", text_turn("GetTime", "It is 9:40."), 0.1)
    assert mute.status is Status.FAIL and mute.detail.endswith("no audio")
    text_only = smoke.judge_text_turn(
        "what time is it", text_turn("GetTime", "It is 9:40."), 0.1, want_audio=False
    )
    assert text_only.status is Status.OK
    wrong = smoke.judge_text_turn(
        "x", text_turn("Greet", "Hi!"), 0.1, want_audio=False, expect_intent="GetTime"
    )
    assert wrong.status is Status.FAIL and wrong.detail.endswith("expected GetTime")


# ---- the real clients, nobody listening ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "turn",
    [smoke.AsrConfigTurn(), smoke.TtsSynthesizeTurn(), smoke.DialogTextTurn()],
    ids=lambda t: t.name,
)
def test_turn_reports_an_unreachable_address_as_a_failed_check(turn: smoke.SmokeTurn) -> None:
    check = turn.run(smoke.Endpoint(f"127.0.0.1:{free_port()}", tls=False))
    assert check.status is Status.FAIL and check.detail.startswith("UNAVAILABLE"), check


def test_dialog_turn_uses_a_fresh_valid_session_each_time() -> None:
    from rivulet.dialog.state import check_session_id

    a, b = smoke.DialogTextTurn(), smoke.DialogTextTurn()
    assert a.session_id != b.session_id and a.session_id.startswith("clustercheck-")
    check_session_id(a.session_id)  # the dialog service's own validation accepts it


# ---- which turns run ---------------------------------------------------------------------------------------


def test_one_turn_per_deployed_api() -> None:
    every = [smoke.DIALOG_API, smoke.TTS_API, smoke.NLU_API, smoke.ASR_API]
    assert [t.name for t in smoke.turns_for(every)] == ["nlu-intent", "asr-config", "tts-synthesize",
                                                        "dialog-text-turn"]  # fmt: skip
    dialog = smoke.turns_for(every)[-1]
    assert isinstance(dialog, smoke.DialogTextTurn) and dialog.synthesize_audio
    without_tts = smoke.turns_for([smoke.NLU_API, smoke.DIALOG_API])
    assert [t.name for t in without_tts] == ["nlu-intent", "dialog-text-turn"]
    assert not without_tts[-1].synthesize_audio, "no TTS deployed: the typed turn asks for text only"
    assert smoke.turns_for([]) == []


def test_cli_flags_reach_the_turns() -> None:
    args = parse_args(["-n", "a", "-r", "b", "--asr-model", "asr_streaming", "--voice",
                       "English-US.Male-1", "--tts-text", "Hello there.",
                       "--dialog-text", "set a timer for 5 minutes"])  # fmt: skip
    turns = smoke.turns_for(
        [smoke.NLU_API, smoke.ASR_API, smoke.TTS_API, smoke.DIALOG_API], turn_options(args)
    )
    asr, tts, dialog = turns[1], turns[2], turns[3]
    assert isinstance(asr, smoke.AsrConfigTurn) and asr.expect_model == "asr_streaming"
    assert isinstance(tts, smoke.TtsSynthesizeTurn) and (tts.text, tts.voice) == (
        "Hello there.",
        "English-US.Male-1",
    )
    assert isinstance(dialog, smoke.DialogTextTurn) and dialog.text == "set a timer for 5 minutes"
