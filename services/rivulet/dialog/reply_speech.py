"""Speaking a reply: its audio streamed from TTS (or from the synthesis started ahead), paced to
stay a little ahead of the client's playback, cancelled by a barge-in."""

from __future__ import annotations

import asyncio
import logging
import time

from rivulet.dialog.clients import DependencyError
from rivulet.dialog.converse_config import BYTES_PER_SAMPLE
from rivulet.dialog.converse_stream import ConverseStream
from rivulet.dialog.playback import Speaking
from rivulet.dialog.speculation import Prefetch
from rivulet.dialog.v1 import dialog_pb2 as pb

log = logging.getLogger(__name__)


class ReplySpeech(ConverseStream):
    """Reply audio from TTS to the client."""

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
