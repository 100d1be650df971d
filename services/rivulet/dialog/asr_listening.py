"""Listening: the user's audio into ASR calls (opened, retuned with the next turn's hints, rotated,
half-closed at the end of turn the service's VAD hears), and the ASR's results into turn-taking
decisions: speech started, interim transcripts, barge-in, speculation, the end of the turn."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import deque
from dataclasses import dataclass, field

from rivulet.core.errors import invalid_argument
from rivulet.dialog import hints, metrics
from rivulet.dialog.clients import AsrStream, DependencyError
from rivulet.dialog.converse_config import BYTES_PER_SAMPLE
from rivulet.dialog.converse_turns import NoInput, UserTurn, spoken_words
from rivulet.dialog.engine import new_turn_id
from rivulet.dialog.playback import PlaybackTracking
from rivulet.dialog.speculation import Speculation, decide
from rivulet.dialog.v1 import dialog_pb2 as pb

# An ASR stream is replaced after a final once it has carried this much audio (the ASR limits
# the audio of one stream; a conversation may last longer).
ASR_ROTATE_MS = 120_000
# Audio an ASR call keeps while it hears no speech, to replay into the call that replaces it when
# the next turn's hints change (chunks; a few seconds at the usual 20-100 ms chunks).
REPLAY_CHUNKS = 100
# VAD speech (ms) that ends a turn at the end-of-turn silence even before the ASR shows a word.
MIN_SPEECH_MS = 120
# The ASR's end-of-utterance silence while the VAD ends turns (a backstop, e.g. for steady noise).
ASR_BACKSTOP_MS = 800


@dataclass
class AsrCall:
    """One StreamingRecognize call of this conversation and where it starts in the stream's audio."""

    stream: AsrStream
    offset_ms: float
    hints: tuple[str, ...] = ()
    # set when the dialog ended the call because the audio went silent (VAD): the stream time of
    # the end of turn and the silence before it
    vad_end: tuple[float, float] | None = None
    # (stream time, audio) of what it was sent before any speech: replayed if it is replaced
    before_speech: deque = field(default_factory=lambda: deque(maxlen=REPLAY_CHUNKS))
    # the turn this call's words started (SPEECH_STARTED sent) that no final has ended yet; "": none.
    # Per call: the call ended at the end of turn is still transcribing it while the next one hears
    # the audio that follows.
    turn_id: str = ""


class AsrListening(PlaybackTracking):
    """The user's audio to ASR calls, and their results to turn-taking decisions."""

    def _on_audio(self, chunk: bytes) -> None:
        now = time.perf_counter()
        if not self.first_audio_wall:
            self.first_audio_wall = now
        per_ms = BYTES_PER_SAMPLE.get(self.cfg.encoding)
        chunk_start_ms = self.audio_ms
        if per_ms:
            self.audio_ms += len(chunk) / (per_ms * self.cfg.sample_rate_hz / 1000)
        else:  # compressed: count wall time as audio time
            self.audio_ms = (now - self.first_audio_wall) * 1000
        self.arrival_ms.append(self.audio_ms)
        self.arrival_wall.append(now)
        if len(self.arrival_ms) > 20_000:  # keep the last few minutes of arrival marks
            del self.arrival_ms[:10_000], self.arrival_wall[:10_000]
        silence_ms = self.silence.feed(chunk) if self.silence else 0
        if self.asr is None:
            if now < self.asr_retry_at:
                return
            self._open_asr()
        call = self.asr
        call.stream.send(chunk)
        if not call.turn_id:
            call.before_speech.append((chunk_start_ms, chunk))
        # speech this call heard (not the turn an earlier call is still transcribing: that one was
        # ended already, and its silence must not end every call that follows it)
        heard = call.turn_id or (self.silence and self.silence.speech_ms >= MIN_SPEECH_MS)
        if heard and silence_ms >= self.cfg.stop_ms:
            # end of turn by the audio's own silence: half-close the call, so the ASR flushes its
            # final at once; the next chunk opens a fresh call for the next turn. Also when the
            # VAD heard speech that the ASR has shown no words for yet: a short "yes" can be too
            # faint for its endpointer to start an utterance, and would never end otherwise.
            self.silence.mark()
            call.vad_end = (self.audio_ms, float(silence_ms))
            call.stream.close()
            self.asr = None

    def _open_asr(self, offset_ms: float | None = None, how: str = "opened") -> None:
        if offset_ms is None:  # the new ASR stream starts with the chunk just received
            offset_ms = self.arrival_ms[-2] if len(self.arrival_ms) > 1 else 0.0
        stream = self.asr_client.open(
            self.cfg.encoding,
            self.cfg.sample_rate_hz,
            self.cfg.language_code,
            self._asr_stop_ms(),
            self.cfg.start_ms,
            hints=self.hints,
            boost=self._hint_boost(),
            # the last word's end time is read only where the ASR's endpoint ends turns; where the
            # VAD does, aligning Whisper's words would cost every turn's pass about 20 ms
            word_times=not self._vad_ends_turns(),
            early_final_ms=self.settings.dialog_early_final_ms,
        )
        self.asr = AsrCall(stream, offset_ms, self.hints)
        self.asr_task = self._spawn(self._read_asr(self.asr), "asr")
        if self.hints and self._hint_boost():
            metrics.ASR_HINTED_CALLS.labels(how).inc()

    def _hint_boost(self) -> float:
        s = self.settings
        return hints.boost(self.hints, s.dialog_asr_hint_boost, s.dialog_asr_follow_up_boost)

    def _asr_stop_ms(self) -> int:
        """The ASR's own end-of-utterance silence. Where the VAD ends turns, the ASR's endpointer
        (which counts CTC blank frames, and sees a stop consonant's closure as silence) only backs
        it up: with the same short window it split "seven p.m." into two turns."""
        if self._vad_ends_turns():
            return max(self.cfg.stop_ms, ASR_BACKSTOP_MS)
        return self.cfg.stop_ms

    def _vad_ends_turns(self) -> bool:
        return bool(self.silence and self.silence.available)

    def _retune_asr(self) -> None:
        """The next turn's hints changed while the ASR call that will hear it has heard no speech
        yet (it opened at the end of the last turn, or goes on after its final): replace it by one
        with the new hints, replaying the audio the old one got since (so nothing said is lost)."""
        call = self.asr
        if call is None or call.hints == self.hints or call.turn_id:
            return
        call.stream.cancel()
        self.asr = None
        if not call.before_speech:  # nothing to replay: the next chunk opens the new call
            metrics.ASR_HINTED_CALLS.labels("retuned").inc()
            return
        self._open_asr(call.before_speech[0][0], how="retuned")
        for _, chunk in call.before_speech:
            self.asr.stream.send(chunk)
        self.asr.before_speech = call.before_speech

    # -- ASR results -----------------------------------------------------------------------------
    def _wall_at(self, audio_ms: float) -> float:
        """When the client's audio reached `audio_ms` (stream time), from the arrival marks."""
        if not self.arrival_ms:
            return time.perf_counter()
        i = bisect.bisect_left(self.arrival_ms, audio_ms)
        return self.arrival_wall[min(i, len(self.arrival_wall) - 1)]

    async def _read_asr(self, call: AsrCall) -> None:
        try:
            async for response in call.stream.responses():
                self.asr_rejected = False
                for result in response.results:
                    self._on_asr_result(result, call)
                    if (
                        result.is_final
                        and self.asr is call
                        and self.audio_ms - call.offset_ms > ASR_ROTATE_MS
                    ):
                        call.stream.close()  # the next audio chunk opens a fresh stream
                        self.asr = None
        except DependencyError as exc:
            self._asr_failed(call, exc)
        else:
            self.asr_rejected = False
            if call.turn_id:  # words were shown (SPEECH_STARTED), and the call ended with no final
                self._no_input(call)
        finally:
            if self.asr is call:
                self.asr = None

    def _asr_failed(self, call: AsrCall, exc: DependencyError) -> None:
        """An ASR call failed: the turn it was hearing gets an error, and the next audio chunk opens
        a new call (after a second when the ASR is down). A call the ASR rejected (INVALID_ARGUMENT,
        e.g. its Triton sequence expired in a long pause) is replaced at once; only when the call
        replacing it is rejected too, with no result between, is the audio itself bad: the stream
        ends with INVALID_ARGUMENT."""
        turn_id, call.turn_id = call.turn_id, ""
        self._drop_speculation(turn_id)
        if exc.code == "INVALID_ARGUMENT" and self.asr_rejected:
            self._fail(invalid_argument(f"the audio was rejected by ASR: {exc.message}"))
            return
        self.asr_rejected = exc.code == "INVALID_ARGUMENT"
        self.error(turn_id, "asr", exc.code, exc.message)
        if not self.asr_rejected:
            self.asr_retry_at = time.perf_counter() + 1.0

    def _no_input(self, call: AsrCall) -> None:
        """The turn `call`'s words started ended with no words (Whisper heard no speech in it, or no
        final came): tell the client (NO_INPUT) and have the worker reprompt. Sound that never
        showed a word (a cough, noise the ASR ignored) started no turn, and gets neither."""
        turn_id, call.turn_id = call.turn_id, ""
        self._drop_speculation(turn_id)
        self.event(turn_id, pb.TurnEvent.NO_INPUT)
        self.work.put_nowait(NoInput(turn_id))

    def _take_speculation(self, turn_id: str) -> Speculation | None:
        """The speculation on `turn_id`'s words, if there is one, no longer pending."""
        spec = self.speculation
        if spec is None or spec.turn_id != turn_id:
            return None
        self.speculation = None
        return spec

    def _drop_speculation(self, turn_id: str) -> None:
        """Settle the speculation on `turn_id`'s words, if there is one, unconfirmed."""
        decide(self._take_speculation(turn_id), None)

    def _on_asr_result(self, result, call: AsrCall) -> None:
        text = result.alternatives[0].transcript.strip() if result.alternatives else ""
        if not result.is_final:
            if not text:
                return
            if not call.turn_id:
                call.turn_id = new_turn_id()
                self.event(call.turn_id, pb.TurnEvent.SPEECH_STARTED)
            if self.cfg.interim_results:
                self.send(call.turn_id, transcript=pb.Transcript(text=text, confidence=result.stability))
            self._barge_in(text)
            if result.stability < 0.999 or self._is_backchannel(text):
                return
            spec = self.speculation
            if spec and spec.turn_id == call.turn_id and spoken_words(spec.text) != spoken_words(text):
                self._drop_speculation(call.turn_id)  # the words changed: that answer is moot
            if self.speculation is None:
                loop = asyncio.get_running_loop()
                self.speculation = Speculation(text, call.turn_id, loop.create_future())
                self.work.put_nowait(self.speculation)
            return
        final_wall = time.perf_counter()
        call.before_speech.clear()  # a call that goes on after its final replays only what follows
        if self.silence:
            self.silence.mark()
        if not text:
            if call.turn_id:
                self._no_input(call)
            return
        turn_id, call.turn_id = call.turn_id or new_turn_id(), ""
        spec = self._take_speculation(turn_id)
        sp = self.speaking
        if sp and sp.playing(final_wall) and self._is_backchannel(text):
            decide(spec, None)
            return  # "uh-huh" over the reply: neither an interruption nor a turn
        self._barge_in(text)
        words = result.alternatives[0].words
        stop_ms = self._asr_stop_ms()  # what the call's ASR waited for (the stream's encoding decides)
        endpoint_ms = call.offset_ms + (result.audio_processed * 1000 if result.audio_processed else 0)
        if call.vad_end:
            endpoint_ms, silence_ms = call.vad_end
            speech_end_ms = endpoint_ms - silence_ms
        elif words:
            speech_end_ms = call.offset_ms + words[-1].end_time
            if not result.audio_processed:
                endpoint_ms = speech_end_ms + stop_ms
        else:  # the ASR's endpoint, after the silence it was asked to wait for
            endpoint_ms = endpoint_ms or self.audio_ms
            speech_end_ms = endpoint_ms - stop_ms
        endpointing = endpoint_ms - speech_end_ms
        if not 0 <= endpointing <= 10_000:
            endpointing, speech_end_ms = stop_ms, endpoint_ms - stop_ms
        endpoint_wall = min(self._wall_at(endpoint_ms), final_wall)
        self.event(turn_id, pb.TurnEvent.END_OF_TURN)
        confidence = result.alternatives[0].confidence
        self.send(turn_id, transcript=pb.Transcript(text=text, is_final=True, confidence=confidence))
        turn = UserTurn(
            text,
            turn_id,
            False,
            # when the audio of the end of speech arrived, or earlier if counting back from the
            # endpoint says so: the arrival marks are a client chunk apart, and the end of speech
            # read from them alone could make the whole wait shorter than its endpointing part
            min(self._wall_at(speech_end_ms), endpoint_wall - endpointing / 1000),
            endpointing,
            (final_wall - endpoint_wall) * 1000,
        )
        same_words = spec is not None and spoken_words(spec.text) == spoken_words(text)
        if spec and not spec.abandoned and not spec.decided.done() and same_words:
            decide(spec, turn)  # the speculative answer is committed and spoken
            return
        decide(spec, None)
        self.work.put_nowait(turn)
