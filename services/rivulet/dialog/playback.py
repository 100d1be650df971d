"""The reply being played at the client: how much was heard (the client's playback events, else
the audio time sent), and barge-in, the user speaking over it, which cancels it."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from rivulet.core.errors import RivuletError
from rivulet.dialog import metrics
from rivulet.dialog.converse_stream import ConverseStream
from rivulet.dialog.converse_turns import spoken_words
from rivulet.dialog.v1 import dialog_pb2 as pb

log = logging.getLogger(__name__)


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


class PlaybackTracking(ConverseStream):
    """The client's playback progress, and barge-in over the reply being played."""

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

    def _is_backchannel(self, text: str) -> bool:
        content = [w for w in spoken_words(text) if w not in self.cfg.backchannels]
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
