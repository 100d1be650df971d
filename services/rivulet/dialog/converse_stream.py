"""What one open Converse stream holds (the ASR call, the reply being spoken, timing marks), the
tasks it owns, and its outbound queue of ConverseResponse messages. The concepts of the stream
(`asr_listening`, `playback`, `reply_speech`, `announcements`, `converse`) build on it."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from rivulet.core.errors import RivuletError
from rivulet.core.vad import SilenceTracker
from rivulet.dialog import metrics
from rivulet.dialog.clients import AsrClient, TtsClient
from rivulet.dialog.converse_config import StreamConfig
from rivulet.dialog.engine import DialogEngine
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.v1 import dialog_pb2 as pb

if TYPE_CHECKING:
    from rivulet.dialog.asr_listening import AsrCall
    from rivulet.dialog.playback import Speaking
    from rivulet.dialog.policy import PolicyReply
    from rivulet.dialog.speculation import Speculation

log = logging.getLogger(__name__)


def reply_pb(reply: PolicyReply) -> pb.Reply:
    """The Dialog API's Reply for a policy reply (Converse and TextTurn send the same)."""
    return pb.Reply(
        text=reply.text,
        action=reply.action,
        action_slots=reply.action_slots,
        expecting_slot=reply.expecting_slot,
        expecting_confirmation=reply.expecting_confirmation,
    )


class ConverseStream:
    """The state of one open stream, the tasks it owns, and what it sends the client."""

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
        # the last ASR call failed with INVALID_ARGUMENT and none has answered since
        self.asr_rejected = False
        self.audio_ms = 0.0
        self.first_audio_wall = 0.0
        self.arrival_ms: list[float] = []
        self.arrival_wall: list[float] = []
        self.speaking: Speaking | None = None
        self.speculation: Speculation | None = None
        self.cancelled_turns: set[str] = set()
        self.fatal: RivuletError | None = None
        self._speech_start_ms = 0.0
        self.hints: tuple[str, ...] = ()  # what the next user turn is likely to say (for the ASR)

    # -- owned tasks ---------------------------------------------------------------------------
    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=f"converse-{name}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(self._log_failure)
        return task

    def _log_failure(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("converse %s: %s failed", self.sid, task.get_name(), exc_info=task.exception())

    # -- outbound messages ---------------------------------------------------------------------
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
