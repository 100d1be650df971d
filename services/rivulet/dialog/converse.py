"""One `Converse` stream: audio → ASR → (final transcript) → NLU → policy/skills → reply text → TTS
audio, full duplex, with barge-in, proactive announcements and a latency breakdown per turn.

Everything a later turn needs is in Redis (see `engine`); the stream only holds what belongs to it
(`converse_stream`): the ASR call, the reply being spoken, timing marks. It is built from one module
per concept: `converse_config` (the first message, checked), `asr_listening` (audio to the ASR and
its results to turn-taking decisions), `speculation` (answering during the endpointing wait),
`playback` (what the client played; barge-in), `reply_speech` (reply audio from TTS),
`announcements` (timers that fired), and here the session that runs them: the request reader and
the turn worker (turns and announcements run one at a time, in order). Tasks it owns: the request
reader, the ASR result reader, the turn worker, the announcement listener (Redis pub/sub), and
small bookkeeping writes. `close()` cancels and awaits all of them; it is the one place the stream
is cleaned up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import grpc

from rivulet.core.errors import RivuletError, invalid_argument
from rivulet.dialog import metrics
from rivulet.dialog.announcements import Announcements
from rivulet.dialog.asr_listening import AsrListening
from rivulet.dialog.clients import DependencyError
from rivulet.dialog.converse_stream import reply_pb
from rivulet.dialog.converse_turns import ANNOUNCE, EOF, NoInput, UserTurn
from rivulet.dialog.engine import new_turn_id
from rivulet.dialog.policy import PolicyReply
from rivulet.dialog.speculation import Abandoned, Prefetch, Speculation, decision
from rivulet.dialog.v1 import dialog_pb2 as pb


class ConverseSession(AsrListening, Announcements):
    """One Converse stream, from its first request to `close()`."""

    # -- lifecycle -----------------------------------------------------------------------------
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
                if isinstance(item, NoInput):
                    await self._reprompt(item.turn_id)
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

    async def _reprompt(self, turn_id: str) -> None:
        """A spoken turn that gave no words (NO_INPUT): say so and ask the open question again,
        storing nothing; the stream goes on listening."""
        try:
            reply = await self.engine.reprompt(self.sid, zone=self.cfg.zone, turn_id=turn_id)
        except RivuletError as exc:
            self.error(turn_id, "session", exc.code.name, exc.message)
            return
        self.send(turn_id, reply=reply_pb(reply))
        metrics.TURNS.labels("voice", reply.action).inc()
        if self.cfg.voice:
            await self._speak(turn_id, reply.text)

    async def _turn(self, item: UserTurn | Speculation) -> None:
        spec = item if isinstance(item, Speculation) else None
        if spec and spec.decided.done() and spec.decided.result() is None:
            return  # the final differed before we started: it is queued as its own turn
        try:
            nlu = await self.engine.understand(item.text, self.cfg.language_code)
        except DependencyError as exc:
            turn = await decision(spec) if spec else item
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
            turn = await decision(spec)
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
            turn = turn or (await decision(spec) if spec else None)
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
        self.send(turn.turn_id, reply=reply_pb(reply))
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
