"""What a Converse stream's turn worker is handed: user turns, and the markers on its queue."""

from __future__ import annotations

import re
from dataclasses import dataclass

EOF = object()  # the client half-closed: finish the turn in progress, then end the stream
ANNOUNCE = object()  # announcements may be waiting for the session: deliver them


@dataclass
class UserTurn:
    text: str
    turn_id: str
    typed: bool
    start_wall: float  # end of user speech (voice) or text arrival (typed)
    endpointing_ms: float = 0.0
    asr_final_ms: float = 0.0


@dataclass
class NoInput:
    """A spoken turn (SPEECH_STARTED sent) that ended with no words: reprompt."""

    turn_id: str


def spoken_words(text: str) -> list[str]:
    """Lower-case words, as transcripts are compared and backchannels recognised."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))
