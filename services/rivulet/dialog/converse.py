"""One `Converse` stream: audio → ASR → (final transcript) → NLU → policy/skills → reply text → TTS
audio, full duplex, with barge-in, proactive announcements and a latency breakdown per turn.

Everything a later turn needs is in Redis (see `engine`); this object only holds what belongs to
the open stream: the ASR call, the reply being spoken, timing marks. Tasks it owns: the request
reader, the ASR result reader, the turn worker (turns and announcements run one at a time, in
order), the announcement listener (Redis pub/sub), and small bookkeeping writes. `close()` cancels
and awaits all of them; it is the one place the stream is cleaned up.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from riva.proto import riva_audio_pb2 as ra

from rivulet.core.errors import RivuletError, invalid_argument
from rivulet.core.vad import SilenceTracker
from rivulet.dialog import metrics
from rivulet.dialog.clients import AsrClient, AsrStream, DependencyError, TtsClient, Voice
from rivulet.dialog.engine import DialogEngine, new_turn_id
from rivulet.dialog.policy import PolicyReply
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.state import Keys, check_session_id
from rivulet.dialog.v1 import dialog_pb2 as pb

log = logging.getLogger(__name__)

BYTES_PER_SAMPLE = {ra.LINEAR_PCM: 2, ra.MULAW: 1, ra.ALAW: 1}
ENCODINGS = {ra.LINEAR_PCM, ra.MULAW, ra.ALAW, ra.FLAC, ra.OGGOPUS}
# How long a speculation waits for the final transcript (holding the session lock).
SPECULATION_WAIT_S = 2.0
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
EOF = object()
ANNOUNCE = object()


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


@dataclass
class UserTurn:
    text: str
    turn_id: str
    typed: bool
    start_wall: float  # end of user speech (voice) or text arrival (typed)
    endpointing_ms: float = 0.0
    asr_final_ms: float = 0.0


@dataclass
class Speculation:
    """Words the ASR marked stable (its early end-of-utterance check) before the final: understood and
    answered during the endpointing wait, committed only if the final says the same."""

    text: str
    turn_id: str
    decided: asyncio.Future  # the final's UserTurn when it matches, None when it does not
    abandoned: bool = False  # gave up waiting: a later matching final is an ordinary turn


class Abandoned(Exception):
    """The final transcript did not confirm a speculation: nothing of it is committed."""


class Prefetch:
    """Reply audio synthesized ahead (while the final is awaited), handed over chunk by chunk."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.started = time.perf_counter()
        self.first = 0.0
        self.task = asyncio.create_task(self._run(chunks), name="converse-tts-prefetch")

    async def _run(self, chunks: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in chunks:
                self.first = self.first or time.perf_counter()
                self.queue.put_nowait(chunk)
        except Exception as exc:
            self.queue.put_nowait(exc)
        finally:
            self.queue.put_nowait(None)

    async def chunks(self) -> AsyncIterator[bytes]:
        while (item := await self.queue.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item

    async def cancel(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


@dataclass
class Speaking:
    """The reply currently being sent / played."""

    turn_id: str
    bytes_per_ms: float
    task: asyncio.Task | None = None
    first_wall: float = 0.0
    audio_ms_sent: float = 0.0
    client_played_ms: int = -1
    interrupted: bool = False
    finished: bool = False

    def played_ms(self, now: float) -> int:
        if self.client_played_ms >= 0:
            return self.client_played_ms
        if not self.first_wall:
            return 0
        return int(min((now - self.first_wall) * 1000, self.audio_ms_sent))

    def playing(self, now: float) -> bool:
        if self.interrupted or self.finished:
            return False
        if self.task and not self.task.done():
            return True
        # all audio sent: still playing at the client until its duration has elapsed
        return bool(self.first_wall) and (now - self.first_wall) * 1000 < self.audio_ms_sent


@dataclass
class StreamConfig:
    session_id: str
    encoding: int
    sample_rate_hz: int
    language_code: str
    voice: Voice | None
    barge_in: bool
    backchannels: frozenset[str]
    min_words: int
    stop_ms: int
    start_ms: int
    interim_results: bool
    zone: object = None


async def parse_config(
    config: pb.ConverseConfig, settings: DialogSettings, engine: DialogEngine, tts: TtsClient
) -> StreamConfig:
    check_session_id(config.session_id)
    encoding = config.audio.encoding or ra.LINEAR_PCM
    if encoding not in ENCODINGS:
        raise invalid_argument(
            f"audio.encoding {encoding} is not supported: use LINEAR_PCM, MULAW, ALAW, FLAC or OGGOPUS"
        )
    rate = config.audio.sample_rate_hz or 16000
    if not 8000 <= rate <= 48000:
        raise invalid_argument(f"audio.sample_rate_hz {rate} is out of range: send 8000-48000 Hz audio")
    if config.endpointing.stop_silence_ms < 0 or config.endpointing.stop_silence_ms > 5000:
        raise invalid_argument("endpointing.stop_silence_ms must be 0 (default) to 5000 ms")
    if config.barge_in.min_words < 0:
        raise invalid_argument("barge_in.min_words must be >= 0")
    voice = None
    language = config.language_code or "en-US"
    if config.voice.enabled:
        out_encoding = config.voice.encoding or ra.LINEAR_PCM
        if out_encoding != ra.LINEAR_PCM:
            raise invalid_argument("voice.encoding: reply audio is LINEAR_PCM (leave it unset)")
        name = config.voice.voice_name or settings.dialog_default_voice
        out_rate = config.voice.sample_rate_hz or settings.dialog_default_sample_rate_hz
        if out_rate and not 8000 <= out_rate <= 48000:
            raise invalid_argument(f"voice.sample_rate_hz {out_rate} is out of range (8000-48000, or 0)")
        voice = Voice(name, out_rate, out_encoding, language)
    backchannels = settings.backchannel_words
    if config.barge_in.backchannels:
        backchannels = frozenset(w for b in config.barge_in.backchannels for w in _words(b))
    return StreamConfig(
        session_id=config.session_id,
        encoding=encoding,
        sample_rate_hz=rate,
        language_code=language,
        voice=voice,
        barge_in=config.barge_in.enabled,
        backchannels=backchannels,
        min_words=config.barge_in.min_words or 1,
        stop_ms=config.endpointing.stop_silence_ms or settings.dialog_stop_silence_ms,
        start_ms=config.endpointing.start_speech_ms,
        interim_results=config.interim_results,
        zone=engine.zone(config.time_zone),
    )


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


class ConverseSession:
    def __init__(
        self,
        config: StreamConfig,
        settings: DialogSettings,
        engine: DialogEngine,
        asr: AsrClient,
        tts: TtsClient,
        redis: aioredis.Redis,
    ) -> None:
        self.cfg = config
        self.settings = settings
        self.engine = engine
        self.asr_client = asr
        self.tts = tts
        self.redis = redis
        self.sid = config.session_id
        self.out: asyncio.Queue = asyncio.Queue()
        self.work: asyncio.Queue = asyncio.Queue()
        self.tasks: set[asyncio.Task] = set()
        self.asr: AsrCall | None = None
        self.asr_task: asyncio.Task | None = None
        self.silence = (
            SilenceTracker(config.encoding, config.sample_rate_hz)
            if settings.dialog_vad_endpointing
            else None
        )
        self.asr_retry_at = 0.0
        self.audio_ms = 0.0
        self.first_audio_wall = 0.0
        self.arrival_ms: list[float] = []
        self.arrival_wall: list[float] = []
        self.in_speech = False
        self.pending_turn_id = ""
        self.speaking: Speaking | None = None
        self.speculation: Speculation | None = None
        self.cancelled_turns: set[str] = set()
        self.fatal: RivuletError | None = None
        self._speech_start_ms = 0.0
        self.hints: tuple[str, ...] = ()  # what the next user turn is likely to say (for the ASR)

    # -- lifecycle -----------------------------------------------------------------------------
    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=f"converse-{name}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(self._log_failure)
        return task

    def _log_failure(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("converse %s: %s failed", self.sid, task.get_name(), exc_info=task.exception())

    async def run(self, requests: AsyncIterator[pb.ConverseRequest]) -> AsyncIterator[pb.ConverseResponse]:
        # Redis down → UNAVAILABLE before anything starts; a session resumed on this replica gets
        # the hints of its open question
        self.hints = self.engine.policy.hints(await self.engine.store.load(self.sid))
        metrics.OPEN_CONVERSATIONS.inc()
        try:
            self._spawn(self._worker(), "worker")
            self._spawn(self._listen_announcements(), "announcements")
            self.work.put_nowait(ANNOUNCE)  # deliver what fired while no stream was open
            self._spawn(self._read_requests(requests), "reader")
            while True:
                message = await self.out.get()
                if message is None:
                    break
                if message.WhichOneof("response") == "audio" and message.turn_id in self.cancelled_turns:
                    continue  # barge-in: drop reply audio not yet written to the client
                yield message
            if self.fatal:
                raise self.fatal
        finally:
            metrics.OPEN_CONVERSATIONS.dec()
            await self.close()

    async def close(self) -> None:
        if self.asr:
            self.asr.stream.cancel()
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()
        for task in list(self.tasks):
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def send(self, turn_id: str, **field_value) -> None:
        self.out.put_nowait(pb.ConverseResponse(turn_id=turn_id, **field_value))

    def event(self, turn_id: str, kind: int, detail: str = "", played_ms: int = 0) -> None:
        self.send(
            turn_id,
            event=pb.TurnEvent(
                type=kind, detail=detail, played_ms=played_ms, stream_time_ms=int(self.audio_ms)
            ),
        )

    def error(self, turn_id: str, stage: str, code: str, message: str) -> None:
        metrics.DEPENDENCY_ERRORS.labels(stage, code).inc()
        log.warning("converse %s: %s %s: %s", self.sid, stage, code, message)
        self.send(turn_id, error=pb.DialogError(stage=stage, code=code, message=message))

    def _fail(self, error: RivuletError) -> None:
        """End the stream with a status (bad input): stop reading and let `run` raise it."""
        self.fatal = self.fatal or error
        self.out.put_nowait(None)

    # -- client messages -------------------------------------------------------------------------
    async def _read_requests(self, requests: AsyncIterator[pb.ConverseRequest]) -> None:
        try:
            async for request in requests:
                kind = request.WhichOneof("request")
                if kind == "audio":
                    self._on_audio(request.audio)
                elif kind == "text":
                    text = request.text.strip()
                    if not text:
                        raise invalid_argument("text is empty: send the user's words")
                    self._barge_in(text, typed=True)
                    turn_id = new_turn_id()
                    self.send(
                        turn_id,
                        transcript=pb.Transcript(text=text, is_final=True, confidence=1.0, typed=True),
                    )
                    self.work.put_nowait(UserTurn(text, turn_id, True, time.perf_counter()))
                elif kind == "playback":
                    self._on_playback(request.playback)
                elif kind == "config":
                    raise invalid_argument("config must be sent once, as the first message of the stream")
            # the client half-closed: flush the ASR (its last final becomes a turn), then finish
            if self.asr:
                self.asr.stream.close()
                if self.asr_task:
                    with contextlib.suppress(Exception):
                        await self.asr_task
            self.work.put_nowait(EOF)
        except RivuletError as exc:
            self._fail(exc)
        except grpc.RpcError:
            self.work.put_nowait(EOF)

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
        self.asr.stream.send(chunk)
        if not self.in_speech:
            self.asr.before_speech.append((chunk_start_ms, chunk))
        heard = self.in_speech or (self.silence and self.silence.speech_ms >= MIN_SPEECH_MS)
        if heard and silence_ms >= self.cfg.stop_ms:
            # end of turn by the audio's own silence: half-close the call, so the ASR flushes its
            # final at once; the next chunk opens a fresh call for the next turn. Also when the
            # VAD heard speech that the ASR has shown no words for yet: a short "yes" can be too
            # faint for its endpointer to start an utterance, and would never end otherwise.
            self.silence.mark()
            self.asr.vad_end = (self.audio_ms, float(silence_ms))
            self.asr.stream.close()
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
            self.hints,
            self.settings.dialog_asr_hint_boost,
        )
        self.asr = AsrCall(stream, offset_ms, self.hints)
        self.asr_task = self._spawn(self._read_asr(self.asr), "asr")
        if self.hints and self.settings.dialog_asr_hint_boost:
            metrics.ASR_HINTED_CALLS.labels(how).inc()

    def _asr_stop_ms(self) -> int:
        """The ASR's own end-of-utterance silence. Where the VAD ends turns, the ASR's endpointer
        (which counts CTC blank frames, and sees a stop consonant's closure as silence) only backs
        it up: with the same short window it split "seven p.m." into two turns."""
        if self.silence and self.silence.available:
            return max(self.cfg.stop_ms, ASR_BACKSTOP_MS)
        return self.cfg.stop_ms

    def _retune_asr(self) -> None:
        """The next turn's hints changed while the ASR call that will hear it has heard no speech
        yet (it opened at the end of the last turn, or goes on after its final): replace it by one
        with the new hints, replaying the audio the old one got since (so nothing said is lost)."""
        call = self.asr
        if call is None or call.hints == self.hints or self.in_speech:
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

    def _on_playback(self, playback: pb.PlaybackEvent) -> None:
        sp = self.speaking
        if not sp or playback.turn_id != sp.turn_id:
            return
        sp.client_played_ms = max(sp.client_played_ms, playback.played_ms)
        if playback.finished and not sp.finished and not sp.interrupted:
            sp.finished = True
            self._spawn(self._record(sp.turn_id, sp.client_played_ms, False), "record")

    async def _record(self, turn_id: str, played_ms: int, interrupted: bool) -> None:
        try:
            await self.engine.record_playback(self.sid, turn_id, played_ms, interrupted)
        except RivuletError as exc:
            log.warning("could not record playback of %s: %s", turn_id, exc.message)

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
            if exc.code == "INVALID_ARGUMENT":
                self._fail(invalid_argument(f"the audio was rejected by ASR: {exc.message}"))
            else:
                self.error(self.pending_turn_id, "asr", exc.code, exc.message)
            self.asr_retry_at = time.perf_counter() + 1.0
        finally:
            if self.asr is call:
                self.asr = None
            if self.asr is None:  # (a newer call may already be hearing the next turn)
                self.in_speech = False

    def _on_asr_result(self, result, call: AsrCall) -> None:
        text = result.alternatives[0].transcript.strip() if result.alternatives else ""
        if not result.is_final:
            if not text:
                return
            if not self.in_speech:
                self.in_speech = True
                self.pending_turn_id = new_turn_id()
                self.event(self.pending_turn_id, pb.TurnEvent.SPEECH_STARTED)
            if self.cfg.interim_results:
                self.send(
                    self.pending_turn_id, transcript=pb.Transcript(text=text, confidence=result.stability)
                )
            self._barge_in(text)
            if result.stability < 0.999 or self._is_backchannel(text):
                return
            if self.speculation and _words(self.speculation.text) != _words(text):
                self._decide(self.speculation, None)  # the words changed: that answer is moot
                self.speculation = None
            if self.speculation is None:
                loop = asyncio.get_running_loop()
                self.speculation = Speculation(text, self.pending_turn_id, loop.create_future())
                self.work.put_nowait(self.speculation)
            return
        final_wall = time.perf_counter()
        turn_id = self.pending_turn_id or new_turn_id()
        self.in_speech, self.pending_turn_id = False, ""
        call.before_speech.clear()  # a call that goes on after its final replays only what follows
        if self.silence:
            self.silence.mark()
        spec, self.speculation = self.speculation, None
        if not text:
            self._decide(spec, None)
            self.event(turn_id, pb.TurnEvent.NO_INPUT)
            return
        sp = self.speaking
        if sp and sp.playing(final_wall) and self._is_backchannel(text):
            self._decide(spec, None)
            return  # "uh-huh" over the reply: neither an interruption nor a turn
        self._barge_in(text)
        words = result.alternatives[0].words
        endpoint_ms = call.offset_ms + (result.audio_processed * 1000 if result.audio_processed else 0)
        if call.vad_end:
            endpoint_ms, silence_ms = call.vad_end
            speech_end_ms = endpoint_ms - silence_ms
        elif words:
            speech_end_ms = call.offset_ms + words[-1].end_time
            if not result.audio_processed:
                endpoint_ms = speech_end_ms + self.cfg.stop_ms
        else:
            endpoint_ms = endpoint_ms or self.audio_ms
            speech_end_ms = endpoint_ms - self.cfg.stop_ms
        endpointing = endpoint_ms - speech_end_ms
        if not 0 <= endpointing <= 10_000:
            endpointing, speech_end_ms = self.cfg.stop_ms, endpoint_ms - self.cfg.stop_ms
        endpoint_wall = min(self._wall_at(endpoint_ms), final_wall)
        self.event(turn_id, pb.TurnEvent.END_OF_TURN)
        confidence = result.alternatives[0].confidence
        self.send(turn_id, transcript=pb.Transcript(text=text, is_final=True, confidence=confidence))
        turn = UserTurn(
            text,
            turn_id,
            False,
            self._wall_at(speech_end_ms),
            endpointing,
            (final_wall - endpoint_wall) * 1000,
        )
        if spec and not spec.abandoned and not spec.decided.done() and _words(spec.text) == _words(text):
            spec.decided.set_result(turn)  # the speculative answer is committed and spoken
            return
        self._decide(spec, None)
        self.work.put_nowait(turn)

    @staticmethod
    def _decide(spec: Speculation | None, turn: UserTurn | None) -> None:
        if spec and not spec.decided.done():
            spec.decided.set_result(turn)

    @staticmethod
    async def _decision(spec: Speculation) -> UserTurn | None:
        try:
            return await asyncio.wait_for(asyncio.shield(spec.decided), SPECULATION_WAIT_S)
        except TimeoutError:
            spec.abandoned = True
            return None

    def _is_backchannel(self, text: str) -> bool:
        content = [w for w in _words(text) if w not in self.cfg.backchannels]
        return len(content) < self.cfg.min_words

    def _barge_in(self, text: str, typed: bool = False) -> None:
        sp = self.speaking
        now = time.perf_counter()
        if not sp or not sp.playing(now):
            return
        if not typed and (not self.cfg.barge_in or self._is_backchannel(text)):
            return
        sp.interrupted = True
        self.cancelled_turns.add(sp.turn_id)
        if sp.task and not sp.task.done():
            sp.task.cancel()  # cancels the SynthesizeOnline call upstream
        played = sp.played_ms(now)
        metrics.BARGE_INS.inc()
        self.event(sp.turn_id, pb.TurnEvent.BARGE_IN, detail=text, played_ms=played)
        self._spawn(self._record(sp.turn_id, played, True), "record")

    # -- turns -----------------------------------------------------------------------------------
    async def _worker(self) -> None:
        pending: list = []
        try:
            while True:
                item = pending.pop(0) if pending else await self.work.get()
                if item is EOF:
                    break
                if item is ANNOUNCE:
                    await self._announce()
                    continue
                if isinstance(item, UserTurn) and not item.typed:
                    item = self._merge_fragments(item, pending)
                await self._turn(item)
        finally:
            self.out.put_nowait(None)

    def _merge_fragments(self, turn: UserTurn, pending: list) -> UserTurn:
        """Finals that queued up while an earlier turn was answered are one user turn split by a
        pause longer than the end-of-turn silence: answer them together, once."""
        while not self.work.empty():
            pending.append(self.work.get_nowait())
        merged = False
        while pending and isinstance(pending[0], UserTurn) and not pending[0].typed:
            nxt = pending.pop(0)
            turn = UserTurn(
                f"{turn.text} {nxt.text}",
                nxt.turn_id,
                False,
                nxt.start_wall,
                nxt.endpointing_ms,
                nxt.asr_final_ms,
            )
            merged = True
        if merged:
            self.send(turn.turn_id, transcript=pb.Transcript(text=turn.text, is_final=True, confidence=1.0))
        return turn

    async def _turn(self, item: UserTurn | Speculation) -> None:
        spec = item if isinstance(item, Speculation) else None
        if spec and spec.decided.done() and spec.decided.result() is None:
            return  # the final differed before we started: it is queued as its own turn
        try:
            nlu = await self.engine.understand(item.text, self.cfg.language_code)
        except DependencyError as exc:
            turn = await self._decision(spec) if spec else item
            if turn is not None:
                self.error(turn.turn_id, exc.stage, exc.code, exc.message)
            return
        turn = None if spec else item
        prefetch: Prefetch | None = None
        waited = 0.0

        async def confirm(reply: PolicyReply) -> None:
            """Inside the turn's transaction: synthesize ahead, then commit only if the final agrees."""
            nonlocal turn, prefetch, waited
            if spec is None:
                return
            voice = self.cfg.voice
            if voice and voice.sample_rate_hz:
                prefetch = Prefetch(self.tts.synthesize(reply.text, voice))
            begin = time.perf_counter()
            turn = await self._decision(spec)
            waited = time.perf_counter() - begin
            if turn is None:
                raise Abandoned

        try:
            result = await self.engine.turn(
                self.sid,
                item.text,
                zone=self.cfg.zone,
                typed=not spec and item.typed,
                turn_id=item.turn_id,
                language_code=self.cfg.language_code,
                nlu=nlu,
                before_commit=confirm,
            )
        except Abandoned:
            if prefetch:
                await prefetch.cancel()
            return
        except RivuletError as exc:
            if prefetch:
                await prefetch.cancel()
            turn = turn or (await self._decision(spec) if spec else None)
            if turn is not None:
                self.error(turn.turn_id, "session", exc.code.name, exc.message)
            return
        result_nlu, nlu_ms = nlu
        low = result_nlu.score < self.settings.dialog_nlu_threshold
        self.send(
            turn.turn_id,
            understanding=pb.Understanding(
                intent=result_nlu.intent,
                score=result_nlu.score,
                low_confidence=low,
                slots=[pb.Slot(name=s.name, value=s.value, score=s.score) for s in result_nlu.slots],
            ),
        )
        reply = result.reply
        reply_wall = time.perf_counter()
        self.hints = result.hints
        self._retune_asr()
        self.send(
            turn.turn_id,
            reply=pb.Reply(
                text=reply.text,
                action=reply.action,
                action_slots=reply.action_slots,
                expecting_slot=reply.expecting_slot,
                expecting_confirmation=reply.expecting_confirmation,
            ),
        )
        metrics.TURNS.labels("text" if turn.typed else "voice", reply.action).inc()
        if self.cfg.voice:
            first_audio = await self._speak(turn.turn_id, reply.text, prefetch)
        else:
            first_audio = 0.0
        end = first_audio or reply_wall
        stages = {
            "endpointing": turn.endpointing_ms,
            "asr_final": turn.asr_final_ms,
            "nlu": nlu_ms,
            "policy": result.policy_ms - waited * 1000,  # not the wait for the final (speculation)
            "tts_first_audio": max(0.0, (first_audio - reply_wall) * 1000) if first_audio else 0.0,
            "total": max(0.0, (end - turn.start_wall) * 1000),
        }
        if prefetch and prefetch.first:
            stages["tts_first_audio"] = (prefetch.first - prefetch.started) * 1000
        metrics.observe_latency(stages)
        self.send(
            turn.turn_id,
            latency=pb.TurnLatency(
                endpointing_ms=stages["endpointing"],
                asr_final_ms=stages["asr_final"],
                nlu_ms=nlu_ms,
                policy_ms=stages["policy"],
                tts_first_audio_ms=stages["tts_first_audio"],
                total_ms=stages["total"],
                speculative=spec is not None,
            ),
        )

    async def _speak(self, turn_id: str, text: str, prefetch: Prefetch | None = None) -> float:
        """Stream the reply's audio; returns when the first chunk was sent (0: none was)."""
        voice = self.cfg.voice
        try:
            if not voice.sample_rate_hz:
                voice.sample_rate_hz = await self.tts.native_rate(voice.voice_name)
        except DependencyError as exc:
            self.error(turn_id, exc.stage, exc.code, exc.message)
            if prefetch:
                await prefetch.cancel()
            return 0.0
        bytes_per_ms = BYTES_PER_SAMPLE.get(voice.encoding, 2) * voice.sample_rate_hz / 1000
        sp = Speaking(turn_id, bytes_per_ms)
        self.speaking = sp
        sp.task = self._spawn(self._stream_tts(sp, text, prefetch), "tts")
        await asyncio.wait({sp.task})
        if sp.task.cancelled():
            return sp.first_wall
        exc = sp.task.exception()
        if isinstance(exc, DependencyError):
            self.error(turn_id, exc.stage, exc.code, exc.message)
        elif exc is not None:
            log.error("reply synthesis failed", exc_info=exc)
            self.error(turn_id, "tts", "INTERNAL", f"{type(exc).__name__}: {exc}")
        else:
            self.event(turn_id, pb.TurnEvent.REPLY_AUDIO_DONE)
        return sp.first_wall

    async def _stream_tts(self, sp: Speaking, text: str, prefetch: Prefetch | None) -> None:
        voice = self.cfg.voice
        source = prefetch.chunks() if prefetch else self.tts.synthesize(text, voice)
        lead_ms = self.settings.dialog_reply_lead_ms
        try:
            async for chunk in source:
                if sp.interrupted:
                    return
                if not sp.first_wall:
                    sp.first_wall = time.perf_counter()
                elif lead_ms:  # real-time pacing: stay at most lead_ms ahead of the client's playback
                    ahead_ms = sp.audio_ms_sent - (time.perf_counter() - sp.first_wall) * 1000
                    if ahead_ms > lead_ms:
                        await asyncio.sleep((ahead_ms - lead_ms) / 1000)
                    if sp.interrupted:
                        return
                self.send(
                    sp.turn_id,
                    audio=pb.ReplyAudio(
                        audio=chunk, sample_rate_hz=voice.sample_rate_hz, offset_ms=int(sp.audio_ms_sent)
                    ),
                )
                sp.audio_ms_sent += len(chunk) / sp.bytes_per_ms
        finally:
            if prefetch:  # barge-in cancels this task: the synthesis ahead stops too
                await prefetch.cancel()

    # -- announcements ---------------------------------------------------------------------------
    async def _announce(self) -> None:
        try:
            items = await self.engine.store.take_announcements(self.sid)
        except RivuletError as exc:
            log.warning("announcements of %s not read: %s", self.sid, exc.message)
            return
        for item in items:
            turn_id = f"announce-{item.get('timer_id', new_turn_id())}"
            self.event(turn_id, pb.TurnEvent.ANNOUNCEMENT, detail=item.get("label", ""))
            self.send(turn_id, reply=pb.Reply(text=item["text"], action=f"{item.get('kind', 'timer')}.fired"))
            if self.cfg.voice:
                await self._speak(turn_id, item["text"])

    async def _listen_announcements(self) -> None:
        channel = Keys(self.sid).channel
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(channel)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self.work.put_nowait(ANNOUNCE)
            except (RedisError, OSError) as exc:
                log.warning("announcement channel of %s lost (%s); resubscribing", self.sid, exc)
                await asyncio.sleep(1.0)
                self.work.put_nowait(ANNOUNCE)  # catch up on anything published meanwhile
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
