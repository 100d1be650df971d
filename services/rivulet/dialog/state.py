"""What a session remembers between turns (stored as JSON in Redis, never in process memory)."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from rivulet.core.errors import invalid_argument

SESSION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
TURN_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def check_session_id(session_id: str) -> str:
    if not SESSION_ID.fullmatch(session_id or ""):
        raise invalid_argument(
            f"session_id {session_id!r} is invalid: use 1-128 characters of letters, digits and . _ : -"
        )
    return session_id


def check_turn_id(turn_id: str) -> str:
    """A client-chosen turn id (the key a retried turn is recognised by)."""
    if not TURN_ID.fullmatch(turn_id):
        raise invalid_argument(
            f"turn_id {turn_id!r} is invalid: use 1-64 characters of letters, digits and . _ : - "
            "(or leave it empty and the server picks one)"
        )
    return turn_id


class Frame(BaseModel):
    """A task in progress or just done: the intent and its slots (values as heard or normalized)."""

    intent: str = ""
    slots: dict[str, str] = Field(default_factory=dict)
    awaiting_slot: str = ""
    awaiting_confirmation: bool = False
    asked: int = 0  # how many times in a row the assistant asked for the same thing


class HistoryEntry(BaseModel):
    turn_id: str
    user_text: str
    intent: str = ""
    reply_text: str = ""
    action: str = ""
    played_ms: int = 0
    interrupted: bool = False
    time: float = 0.0


class SessionState(BaseModel):
    session_id: str
    created: float = 0.0
    turns: int = 0
    frame: Frame | None = None
    context: Frame | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    last_reply: str = ""

    def remember(self, entry: HistoryEntry, limit: int) -> None:
        self.history.append(entry)
        del self.history[:-limit]


class Keys:
    """Redis keys of one session. The `{session}` hash tag keeps a session's keys in one cluster slot."""

    TIMERS = "rivulet:dialog:timers"  # sorted set of every session's timers/alarms by due time

    def __init__(self, session_id: str) -> None:
        base = f"rivulet:dialog:{{{session_id}}}"
        self.session = f"{base}:session"  # hash: state (JSON), turns, updated
        self.log = f"{base}:log"  # stream: the append-only event log
        self.lock = f"{base}:lock"
        self.data = f"{base}:data"  # hash: skill data, one field per skill key (JSON values)
        self.timers = f"{base}:timers"  # hash: timer id -> JSON (this session's pending timers)
        self.announcements = f"{base}:announcements"  # list: announcements not yet delivered
        self.channel = f"rivulet:dialog:announce:{session_id}"  # pub/sub: "announcement waiting"
        self._base = base

    def outcome(self, turn_id: str) -> str:
        """string: the JSON outcome of a committed turn with a client-chosen id (for its retries)"""
        return f"{self._base}:turn:{turn_id}"

    def all(self) -> list[str]:
        return [self.session, self.log, self.data, self.timers, self.announcements]
