"""Endpointing on the acoustic model's own output, as Riva does: blank vs non-blank CTC frames.

A frame is non-speech when blank is its most likely token. Outside an utterance, a window of the
last `start_history` ms is watched: when at least `start_threshold` of its frames are speech an
utterance starts (the window's frames are decoded too, so the first word is not lost). Inside
one, when at least `stop_threshold` of the last `stop_history` ms are non-speech the utterance
ends: its final transcript is sent and the decoder starts afresh. `stop_history_eou` (> 0
enables it) is an earlier, shorter check that fires once per utterance: the service then sends
an interim result with stability 1.0 carrying the beam-decoded transcript so far (Riva's
"intermediate final"), while the final still waits for `stop_history`.

Riva's defaults (start 300 ms / 0.2, stop 800 ms / 0.98) need about 800 ms of silence for a
final; a voice dialog wants ~160 ms (`stop_history=160`), at the price of splitting on pauses.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum


class Event(Enum):
    START = "start"
    EOU = "eou"
    END = "end"


@dataclass(frozen=True)
class EndpointingParams:
    start_history_ms: int = 300
    start_threshold: float = 0.2
    stop_history_ms: int = 800
    stop_threshold: float = 0.98
    stop_history_eou_ms: int = -1
    stop_threshold_eou: float = 0.77

    def problems(self) -> list[str]:
        """What is wrong with these values, phrased as what to send instead (empty when fine)."""
        found = []
        if self.start_history_ms < 0:
            found.append(f"start_history={self.start_history_ms} must be ≥ 0 ms")
        if self.stop_history_ms <= 0:
            found.append(f"stop_history={self.stop_history_ms} must be > 0 ms")
        for name in ("start_threshold", "stop_threshold", "stop_threshold_eou"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                found.append(f"{name}={value} must be a fraction from 0.0 to 1.0")
        return found


def _frames(ms: int, frame_ms: float) -> int:
    return max(1, round(ms / frame_ms))


class Endpointer:
    def __init__(self, params: EndpointingParams, frame_ms: float) -> None:
        self.params = params
        self.start_frames = _frames(params.start_history_ms, frame_ms)
        self.stop_frames = _frames(params.stop_history_ms, frame_ms)
        eou = params.stop_history_eou_ms
        self.eou_frames = _frames(eou, frame_ms) if eou > 0 else 0
        self.active = False
        self._window: deque[bool] = deque()  # True = speech frame
        self._eou_sent = False

    def push(self, speech: bool) -> Event | None:
        """Feed one frame; returns the event it triggers, if any."""
        self._window.append(speech)
        p = self.params
        if not self.active:
            while len(self._window) > self.start_frames:
                self._window.popleft()
            voiced = sum(self._window)
            if voiced and voiced >= p.start_threshold * self.start_frames:
                self.active, self._eou_sent = True, False
                self._window.clear()
                return Event.START
            return None
        keep = max(self.stop_frames, self.eou_frames)
        while len(self._window) > keep:
            self._window.popleft()
        if len(self._window) >= self.stop_frames:
            silent = self.stop_frames - sum(list(self._window)[-self.stop_frames :])
            if silent >= p.stop_threshold * self.stop_frames:
                self.active = False
                self._window.clear()
                return Event.END
        if self.eou_frames and not self._eou_sent and len(self._window) >= self.eou_frames:
            silent = self.eou_frames - sum(list(self._window)[-self.eou_frames :])
            if silent >= p.stop_threshold_eou * self.eou_frames:
                self._eou_sent = True
                return Event.EOU
        return None
