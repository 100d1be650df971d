"""Turn-taking decisions of a Converse stream from ASR results (real Riva result messages): the end
of a turn, speculation confirmed or dropped by the final, backchannels over a reply, barge-in."""

from __future__ import annotations

import time

from riva.proto import riva_asr_pb2 as asr

from rivulet.dialog.asr_listening import AsrCall
from rivulet.dialog.converse import ConverseSession
from rivulet.dialog.converse_config import StreamConfig
from rivulet.dialog.converse_turns import UserTurn
from rivulet.dialog.playback import Speaking
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.speculation import Speculation
from rivulet.dialog.v1 import dialog_pb2 as pb


def result(text: str, final: bool = False, stability: float = 0.5) -> asr.StreamingRecognitionResult:
    alt = asr.SpeechRecognitionAlternative(transcript=text, confidence=0.9)
    if final and text:
        alt.words.append(asr.WordInfo(word=text.split()[-1], start_time=100, end_time=900))
    return asr.StreamingRecognitionResult(
        alternatives=[alt], is_final=final, stability=0.0 if final else stability, audio_processed=1.1
    )


CALL = AsrCall(stream=None, offset_ms=0.0)  # the conversation's first ASR call


def session(barge_in: bool = True) -> ConverseSession:
    settings = DialogSettings()
    cfg = StreamConfig("s", 1, 16000, "en-US", None, barge_in, settings.backchannel_words, 1, 160, 0, True)
    return ConverseSession(cfg, settings, None, None, None, None)


def drain(s: ConverseSession) -> tuple[list, list]:
    work = []
    while not s.work.empty():
        work.append(s.work.get_nowait())
    out = []
    while not s.out.empty():
        out.append(s.out.get_nowait())
    return work, out


async def test_final_ends_the_turn_with_timing():
    s = session()
    now = time.perf_counter()  # 1.2 s of audio arrived, 100 ms a chunk
    s.arrival_ms, s.arrival_wall = (
        [100.0 * (i + 1) for i in range(12)],
        [now - 1.2 + 0.1 * (i + 1) for i in range(12)],
    )
    s.audio_ms = 1200.0
    s._on_asr_result(result("set a"), CALL)
    s._on_asr_result(result("set a timer", final=True), CALL)
    work, out = drain(s)
    kinds = [m.event.type if m.WhichOneof("response") == "event" else m.WhichOneof("response") for m in out]
    assert kinds == [pb.TurnEvent.SPEECH_STARTED, "transcript", pb.TurnEvent.END_OF_TURN, "transcript"]
    (turn,) = work
    assert isinstance(turn, UserTurn) and turn.text == "set a timer" and not turn.typed
    assert round(turn.endpointing_ms) == 200  # audio_processed 1100 ms - last word end 900 ms
    assert abs(turn.start_wall - s.arrival_wall[8]) < 1e-9  # when the audio at 900 ms arrived


async def test_a_turn_ended_by_the_audio_silence_times_the_endpointing_from_it():
    s = session()
    now = time.perf_counter()
    s.arrival_ms, s.arrival_wall = (
        [100.0 * (i + 1) for i in range(12)],
        [now - 1.2 + 0.1 * (i + 1) for i in range(12)],
    )
    s.audio_ms = 1200.0
    vad_call = AsrCall(stream=None, offset_ms=0.0, vad_end=(1100.0, 180.0))  # silent from 920 ms
    s._on_asr_result(result("set a"), vad_call)
    s._on_asr_result(result("set a timer", final=True), vad_call)
    (turn,), _ = drain(s)
    assert round(turn.endpointing_ms) == 180  # the silence heard, not the ASR's word end (900 ms)
    assert abs(turn.start_wall - s.arrival_wall[9]) < 1e-9  # when the audio at 920 ms arrived


async def test_speculation_is_confirmed_or_dropped_by_the_final():
    s = session()
    s._on_asr_result(result("what time is it", stability=1.0), CALL)
    (spec,) = drain(s)[0]
    assert isinstance(spec, Speculation) and spec.text == "what time is it"
    s._on_asr_result(result("What time is it?", final=True), CALL)
    assert drain(s)[0] == []  # no second turn: the speculation answers it
    assert spec.decided.result().text == "What time is it?"
    s._on_asr_result(result("add milk", stability=1.0), CALL)
    (spec2,) = drain(s)[0]
    s._on_asr_result(result("add milk to my list", final=True), CALL)
    (turn,) = drain(s)[0]
    assert spec2.decided.result() is None and turn.text == "add milk to my list"


async def test_backchannel_over_a_reply_neither_interrupts_nor_takes_a_turn():
    s = session()
    s.speaking = Speaking("r1", 32.0, first_wall=time.perf_counter(), audio_ms_sent=5000)
    s._on_asr_result(result("uh huh"), CALL)
    s._on_asr_result(result("okay", final=True), CALL)
    work, out = drain(s)
    assert work == [] and not s.speaking.interrupted
    assert pb.TurnEvent.BARGE_IN not in [m.event.type for m in out if m.WhichOneof("response") == "event"]


async def test_real_words_over_a_reply_barge_in_and_record_how_much_was_heard():
    s = session()
    s.speaking = Speaking("r1", 32.0, first_wall=time.perf_counter() - 0.8, audio_ms_sent=5000)
    s.speaking.client_played_ms = 640
    s._on_asr_result(result("stop that"), CALL)
    _, out = drain(s)
    (barge,) = [
        m for m in out if m.WhichOneof("response") == "event" and m.event.type == pb.TurnEvent.BARGE_IN
    ]
    assert barge.turn_id == "r1" and barge.event.played_ms == 640 and s.speaking.interrupted
    assert "r1" in s.cancelled_turns  # its queued audio is dropped before it reaches the client
    for task in list(s.tasks):  # the playback record write (no Redis here) is not under test
        task.cancel()


async def test_barge_in_off_keeps_the_reply():
    s = session(barge_in=False)
    s.speaking = Speaking("r1", 32.0, first_wall=time.perf_counter(), audio_ms_sent=5000)
    s._on_asr_result(result("stop that"), CALL)
    assert not s.speaking.interrupted
