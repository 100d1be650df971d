"""Turn-taking decisions of a Converse stream from ASR results (real Riva result messages): the end
of a turn, speculation confirmed or dropped by the final, backchannels over a reply, barge-in."""

from __future__ import annotations

import asyncio
import time

from riva.proto import riva_asr_pb2 as asr

from rivulet.dialog import hints
from rivulet.dialog.asr_listening import AsrCall
from rivulet.dialog.clients import AsrClient, DependencyError
from rivulet.dialog.converse import ConverseSession
from rivulet.dialog.converse_config import StreamConfig
from rivulet.dialog.converse_turns import NoInput, UserTurn
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


def new_call() -> AsrCall:
    return AsrCall(stream=None, offset_ms=0.0)


def session(barge_in: bool = True, asr: AsrClient | None = None, vad: bool = True) -> ConverseSession:
    settings = DialogSettings(dialog_vad_endpointing=vad)
    cfg = StreamConfig("s", 1, 16000, "en-US", None, barge_in, settings.backchannel_words, 1, 160, 0, True)
    return ConverseSession(cfg, settings, None, asr, None, None)


def arrived_in_real_time(s: ConverseSession, chunk_ms: float) -> None:
    """1.2 s of the client's audio arrived at real-time pace, `chunk_ms` a message, the last just now."""
    now = time.perf_counter()
    n = round(1200 / chunk_ms)
    s.arrival_ms = [chunk_ms * (i + 1) for i in range(n)]
    s.arrival_wall = [now - 1.2 + chunk_ms / 1000 * (i + 1) for i in range(n)]
    s.audio_ms = 1200.0


class ScriptedStream:
    """An ASR call whose results the test gives (`result`, `end`, `fail`), in the order given."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.closed = False

    def send(self, chunk: bytes) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def cancel(self) -> None:
        self.queue.put_nowait(None)

    def result(self, r: asr.StreamingRecognitionResult) -> None:
        self.queue.put_nowait(asr.StreamingRecognizeResponse(results=[r]))

    def end(self) -> None:
        self.queue.put_nowait(None)

    def fail(self, code: str) -> None:
        self.queue.put_nowait(DependencyError("asr", code, "the ASR failed"))

    async def responses(self):
        while (item := await self.queue.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item


class ScriptedAsr:
    """The ASR client: every call it opens, in order. A call the dialog half-closes ends once the
    test has given its results (`end`)."""

    def __init__(self) -> None:
        self.calls: list[ScriptedStream] = []
        self.options: list[dict] = []  # each call's keyword arguments

    def open(self, *args, **kwargs) -> ScriptedStream:
        self.calls.append(ScriptedStream())
        self.options.append(kwargs)
        return self.calls[-1]


SILENCE = bytes(2 * 640)  # 40 ms of 16 kHz PCM


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def events(out: list) -> list[tuple[int, str]]:
    return [(m.event.type, m.turn_id) for m in out if m.WhichOneof("response") == "event"]


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
    call = new_call()
    arrived_in_real_time(s, 100.0)
    s._on_asr_result(result("set a"), call)
    s._on_asr_result(result("set a timer", final=True), call)
    work, out = drain(s)
    kinds = [m.event.type if m.WhichOneof("response") == "event" else m.WhichOneof("response") for m in out]
    assert kinds == [pb.TurnEvent.SPEECH_STARTED, "transcript", pb.TurnEvent.END_OF_TURN, "transcript"]
    (turn,) = work
    assert isinstance(turn, UserTurn) and turn.text == "set a timer" and not turn.typed
    assert round(turn.endpointing_ms) == 200  # audio_processed 1100 ms - last word end 900 ms
    assert abs(turn.start_wall - s.arrival_wall[8]) < 1e-9  # when the audio at 900 ms arrived


async def test_a_turn_ended_by_the_audio_silence_times_the_endpointing_from_it():
    s = session()
    arrived_in_real_time(s, 100.0)
    vad_call = AsrCall(stream=None, offset_ms=0.0, vad_end=(1100.0, 180.0))  # silent from 920 ms
    s._on_asr_result(result("set a"), vad_call)
    s._on_asr_result(result("set a timer", final=True), vad_call)
    (turn,), _ = drain(s)
    assert round(turn.endpointing_ms) == 180  # the silence heard, not the ASR's word end (900 ms)
    # 180 ms before the endpoint's audio (1100 ms) arrived: earlier than the chunk holding 920 ms
    # (it arrived at 1000 ms), and at real-time pace when the audio at 920 ms was spoken
    assert abs(turn.start_wall - (s.arrival_wall[10] - 0.18)) < 1e-9


async def test_word_times_are_asked_for_only_where_the_asr_ends_turns():
    """Where the VAD ends turns, the last word's end time is never read: the Whisper pass is not
    asked to align words (about 20 ms a pass); without the VAD, the ASR's endpoint ends turns and
    the end of speech is the last word's end."""
    for vad, word_times in ((True, False), (False, True)):
        scripted = ScriptedAsr()
        s = session(asr=scripted, vad=vad)
        s._on_audio(SILENCE)
        assert scripted.options[0]["word_times"] is word_times
        await s.close()


async def test_follow_ups_are_boosted_less_than_the_answers_to_a_question():
    """The answers to a question are expected; the follow-ups after an answer only possible: the
    ASR call hearing the next turn carries each with its own boost."""
    settings = DialogSettings()
    assert settings.dialog_asr_follow_up_boost < settings.dialog_asr_hint_boost
    for expected, boost in (
        (hints.CONFIRM, settings.dialog_asr_hint_boost),
        (hints.FOLLOW_UP, settings.dialog_asr_follow_up_boost),
        (("kitchen", "cancel"), settings.dialog_asr_hint_boost),
    ):
        scripted = ScriptedAsr()
        s = session(asr=scripted)
        s.hints = expected
        s._on_audio(SILENCE)
        assert scripted.options[0]["hints"] == expected and scripted.options[0]["boost"] == boost
        await s.close()


async def test_a_backstop_final_without_words_times_the_endpointing_by_the_asrs_own_silence():
    """A final the ASR's backstop endpoint gave (the VAD did not end the turn) with no word times:
    the end of speech is the endpoint less the silence that call's ASR waited for (800 ms), not
    the stream's end-of-turn silence (160 ms)."""
    s = session()
    arrived_in_real_time(s, 100.0)
    call = new_call()  # the VAD is available: the ASR's endpoint is the 800 ms backstop
    final = result("set a timer", final=True)
    del final.alternatives[0].words[:]
    s._on_asr_result(result("set a"), call)
    s._on_asr_result(final, call)
    (turn,), _ = drain(s)
    assert round(turn.endpointing_ms) == 800  # audio_processed 1100 ms, speech ended at 300 ms


async def test_speculation_is_confirmed_or_dropped_by_the_final():
    s = session()
    call = new_call()
    s._on_asr_result(result("what time is it", stability=1.0), call)
    (spec,) = drain(s)[0]
    assert isinstance(spec, Speculation) and spec.text == "what time is it"
    s._on_asr_result(result("What time is it?", final=True), call)
    assert drain(s)[0] == []  # no second turn: the speculation answers it
    assert spec.decided.result().text == "What time is it?"
    s._on_asr_result(result("add milk", stability=1.0), call)
    (spec2,) = drain(s)[0]
    s._on_asr_result(result("add milk to my list", final=True), call)
    (turn,) = drain(s)[0]
    assert spec2.decided.result() is None and turn.text == "add milk to my list"


async def test_backchannel_over_a_reply_neither_interrupts_nor_takes_a_turn():
    s = session()
    call = new_call()
    s.speaking = Speaking("r1", 32.0, first_wall=time.perf_counter(), audio_ms_sent=5000)
    s._on_asr_result(result("uh huh"), call)
    s._on_asr_result(result("okay", final=True), call)
    work, out = drain(s)
    assert work == [] and not s.speaking.interrupted
    assert pb.TurnEvent.BARGE_IN not in [m.event.type for m in out if m.WhichOneof("response") == "event"]


async def test_real_words_over_a_reply_barge_in_and_record_how_much_was_heard():
    s = session()
    call = new_call()
    s.speaking = Speaking("r1", 32.0, first_wall=time.perf_counter() - 0.8, audio_ms_sent=5000)
    s.speaking.client_played_ms = 640
    s._on_asr_result(result("stop that"), call)
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
    call = new_call()
    s.speaking = Speaking("r1", 32.0, first_wall=time.perf_counter(), audio_ms_sent=5000)
    s._on_asr_result(result("stop that"), call)
    assert not s.speaking.interrupted


async def test_one_turn_has_one_speech_started_while_its_ended_call_transcribes():
    """The VAD ends the turn (its call half-closed, still transcribing); the silence that follows
    goes to the next call, which heard no speech: it is neither ended by that silence (a call per
    chunk) nor does its end restart the turn, whose last interim and final come after."""
    scripted = ScriptedAsr()
    s = session(asr=scripted)
    s._on_audio(SILENCE)
    (first,) = scripted.calls
    first.result(result("four"))
    await settle()
    for _ in range(12):  # 480 ms of silence: the end of turn, then the next call's audio
        s._on_audio(SILENCE)
        await settle()
    assert first.closed and len(scripted.calls) == 2 and not scripted.calls[1].closed
    first.result(result("four"))
    first.result(result("four people", final=True))
    first.end()
    await settle()
    work, out = drain(s)
    (started,) = [e for e in events(out) if e[0] == pb.TurnEvent.SPEECH_STARTED]
    (turn,) = work
    assert turn.text == "four people" and turn.turn_id == started[1]
    await s.close()


async def test_a_turn_that_ends_without_words_says_no_input_and_is_reprompted():
    scripted = ScriptedAsr()
    s = session(asr=scripted)
    s._on_audio(SILENCE)
    scripted.calls[0].result(result("four", stability=1.0))  # speculated on, too
    await settle()
    for _ in range(6):  # the end of turn by the VAD
        s._on_audio(SILENCE)
    spec = s.speculation
    scripted.calls[0].end()  # the ASR closes the call with no final (Whisper heard no speech)
    await settle()
    work, out = drain(s)
    started, no_input = events(out)
    assert started[0] == pb.TurnEvent.SPEECH_STARTED and no_input == (pb.TurnEvent.NO_INPUT, started[1])
    assert work == [spec, NoInput(started[1])] and spec.decided.result() is None
    # the next turn is heard by a call of its own
    assert len(scripted.calls) == 2 and not scripted.calls[1].closed
    await s.close()


async def test_an_empty_final_after_words_is_no_input_and_noise_without_words_is_nothing():
    s = session()
    call = new_call()
    s._on_asr_result(result("um"), call)
    s._on_asr_result(result("", final=True), call)
    work, out = drain(s)
    (started, no_input) = events(out)
    assert no_input == (pb.TurnEvent.NO_INPUT, started[1]) and work == [NoInput(started[1])]
    s._on_asr_result(result("", final=True), call)  # a cough: no words ever shown
    assert drain(s) == ([], [])


async def test_a_call_the_asr_rejects_is_replaced_and_a_second_rejection_ends_the_stream():
    """A call that fails with INVALID_ARGUMENT (its Triton sequence expired in a long pause) gets an
    error event, and the next audio opens a new call; the stream ends only when that one is
    rejected too (the audio itself is bad)."""
    scripted = ScriptedAsr()
    s = session(asr=scripted)
    s._on_audio(SILENCE)
    scripted.calls[0].result(result("four"))
    scripted.calls[0].fail("INVALID_ARGUMENT")
    await settle()
    _, out = drain(s)
    (error,) = [m for m in out if m.WhichOneof("response") == "error"]
    assert error.error.code == "INVALID_ARGUMENT" and s.fatal is None
    s._on_audio(SILENCE)
    assert len(scripted.calls) == 2  # at once: no wait as for an ASR that is down
    scripted.calls[1].result(result("four people", final=True))
    scripted.calls[1].fail("INVALID_ARGUMENT")  # it answered between: still not the audio
    await settle()
    assert s.fatal is None
    s._on_audio(SILENCE)
    scripted.calls[2].fail("INVALID_ARGUMENT")
    await settle()
    s._on_audio(SILENCE)
    scripted.calls[3].fail("INVALID_ARGUMENT")
    await settle()
    assert s.fatal is not None and s.fatal.code.name == "INVALID_ARGUMENT"
    await s.close()


async def test_a_turn_answered_within_a_chunk_never_waits_less_than_its_endpointing():
    """The end of speech read from the arrival marks alone (a client chunk apart) once came out later
    than the endpoint less its silence: a turn answered within the chunk reported total 188 ms under
    endpointing 190 ms."""
    s = session()
    arrived_in_real_time(s, 40.0)
    vad_call = AsrCall(stream=None, offset_ms=0.0, vad_end=(1195.0, 190.0))  # speech ended at 1005 ms
    s._on_asr_result(result("set a"), vad_call)
    s._on_asr_result(result("set a timer", final=True), vad_call)
    (turn,), _ = drain(s)
    endpoint_wall = s.arrival_wall[-1]  # the audio at 1195 ms came with the last chunk
    assert (endpoint_wall - turn.start_wall) * 1000 >= turn.endpointing_ms - 1e-6
