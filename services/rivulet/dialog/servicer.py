"""`rivulet.dialog.v1.Dialog`: Converse (full-duplex voice), TextTurn, GetSession, ResetSession."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import grpc
import redis.asyncio as aioredis
from riva.proto import riva_audio_pb2 as ra

from rivulet.core.errors import RivuletError, invalid_argument, not_found, resource_exhausted
from rivulet.dialog.clients import AsrClient, DependencyError, TtsClient, Voice
from rivulet.dialog.converse import ConverseSession
from rivulet.dialog.converse_config import parse_config
from rivulet.dialog.converse_stream import reply_pb
from rivulet.dialog.engine import DialogEngine
from rivulet.dialog.metrics import TURNS, observe_latency
from rivulet.dialog.policy import PolicyReply
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.state import Frame, check_session_id, check_turn_id
from rivulet.dialog.v1 import dialog_pb2 as pb
from rivulet.dialog.v1 import dialog_pb2_grpc


def dependency_status(exc: DependencyError) -> RivuletError:
    """A dependency failure as the caller's status: bad input stays INVALID_ARGUMENT, the rest UNAVAILABLE."""
    code = grpc.StatusCode.INVALID_ARGUMENT if exc.code == "INVALID_ARGUMENT" else grpc.StatusCode.UNAVAILABLE
    return RivuletError(code, f"{exc.message} (the session was not changed)")


def frame_pb(frame: Frame | None) -> pb.Frame | None:
    if frame is None:
        return None
    return pb.Frame(
        intent=frame.intent,
        slots={k: v for k, v in frame.slots.items() if not k.startswith("_")},
        awaiting_slot=frame.awaiting_slot,
        awaiting_confirmation=frame.awaiting_confirmation,
    )


class DialogServicer(dialog_pb2_grpc.DialogServicer):
    def __init__(
        self,
        settings: DialogSettings,
        engine: DialogEngine,
        asr: AsrClient,
        tts: TtsClient,
        redis: aioredis.Redis,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.asr = asr
        self.tts = tts
        self.redis = redis
        self.open_streams = 0

    async def Converse(
        self, request_iterator: AsyncIterator[pb.ConverseRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ConverseResponse]:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("request") != "config":
            raise invalid_argument(
                "the first message of Converse must carry `config` (session id, audio format)"
            )
        config = await parse_config(first.config, self.settings, self.engine, self.tts)
        if self.open_streams >= self.settings.dialog_max_streams:
            raise resource_exhausted(
                f"{self.open_streams} conversations are open on this replica (limit "
                f"{self.settings.dialog_max_streams}, RIVULET_DIALOG_MAX_STREAMS); retry or use another one"
            )
        self.open_streams += 1
        try:
            session = ConverseSession(config, self.settings, self.engine, self.asr, self.tts, self.redis)
            async for message in session.run(request_iterator):
                yield message
        finally:
            self.open_streams -= 1

    async def TextTurn(
        self, request: pb.TextTurnRequest, context: grpc.aio.ServicerContext
    ) -> pb.TextTurnResponse:
        started = time.perf_counter()
        check_session_id(request.session_id)
        if request.turn_id:
            check_turn_id(request.turn_id)
        zone = self.engine.zone(request.time_zone)
        text = self.engine.check_text(request.text)
        voice = None
        if request.synthesize_audio:
            encoding = request.voice.encoding or ra.LINEAR_PCM
            if encoding != ra.LINEAR_PCM:
                raise invalid_argument("voice.encoding: reply audio is LINEAR_PCM (leave it unset)")
            rate = request.voice.sample_rate_hz or self.settings.dialog_default_sample_rate_hz
            if rate and not 8000 <= rate <= 48000:
                raise invalid_argument(f"voice.sample_rate_hz {rate} is out of range (8000-48000, or 0)")
            voice = Voice(
                request.voice.voice_name or self.settings.dialog_default_voice,
                rate,
                encoding,
                request.language_code or "en-US",
            )
        audio = bytearray()
        tts_ms = 0.0

        async def synthesize(reply: PolicyReply) -> None:
            """Inside the turn's transaction: a TTS failure leaves the session unchanged."""
            nonlocal tts_ms
            begin = time.perf_counter()
            if not voice.sample_rate_hz:
                voice.sample_rate_hz = await self.tts.native_rate(voice.voice_name)
            async for chunk in self.tts.synthesize(reply.text, voice):
                if not audio:
                    tts_ms = (time.perf_counter() - begin) * 1000
                audio.extend(chunk)

        try:
            result = await self.engine.turn(
                request.session_id,
                text,
                zone=zone,
                typed=True,
                turn_id=request.turn_id,
                language_code=request.language_code or "en-US",
                before_commit=synthesize if voice else None,
                idempotent=bool(request.turn_id),
            )
            if result.replayed and voice:  # a retry of a committed turn: speak its stored reply
                await synthesize(result.reply)
        except DependencyError as exc:
            raise dependency_status(exc) from exc
        announcements = await self.engine.store.take_announcements(request.session_id)
        total_ms = (time.perf_counter() - started) * 1000
        stages = {"nlu": result.nlu_ms, "policy": result.policy_ms, "tts_first_audio": tts_ms}
        if not result.replayed:
            observe_latency(stages)
            TURNS.labels("text", result.reply.action).inc()
        low = result.nlu.score < self.settings.dialog_nlu_threshold
        return pb.TextTurnResponse(
            turn_id=result.turn_id,
            understanding=pb.Understanding(
                intent=result.nlu.intent,
                score=result.nlu.score,
                low_confidence=low,
                slots=[pb.Slot(name=s.name, value=s.value, score=s.score) for s in result.nlu.slots],
            ),
            reply=reply_pb(result.reply),
            audio=bytes(audio),
            sample_rate_hz=voice.sample_rate_hz if voice else 0,
            latency=pb.TurnLatency(
                nlu_ms=result.nlu_ms, policy_ms=result.policy_ms, tts_first_audio_ms=tts_ms, total_ms=total_ms
            ),
            announcements=[a["text"] for a in announcements],
        )

    async def GetSession(
        self, request: pb.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.Session:
        check_session_id(request.session_id)
        state, ttl, events, data = await self.engine.store.inspect(request.session_id)
        if state is None and not data:
            raise not_found(f"no session {request.session_id!r} (never used, reset, or expired)")
        session = pb.Session(
            session_id=request.session_id,
            ttl_s=ttl,
            events=events,
            data_json=json.dumps(data, sort_keys=True),
        )
        if state is not None:
            session.turns = state.turns
            if state.frame:
                session.frame.CopyFrom(frame_pb(state.frame))
            if state.context:
                session.context.CopyFrom(frame_pb(state.context))
            session.history.extend(
                pb.HistoryTurn(
                    turn_id=h.turn_id,
                    user_text=h.user_text,
                    intent=h.intent,
                    reply_text=h.reply_text,
                    action=h.action,
                    played_ms=h.played_ms,
                    interrupted=h.interrupted,
                    time=h.time,
                )
                for h in state.history
            )
        return session

    async def ResetSession(
        self, request: pb.ResetSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResetSessionResponse:
        check_session_id(request.session_id)
        existed = await self.engine.store.reset(request.session_id, request.clear_data)
        return pb.ResetSessionResponse(existed=existed)


def register(server: grpc.aio.Server, servicer: DialogServicer) -> None:
    dialog_pb2_grpc.add_DialogServicer_to_server(servicer, server)
