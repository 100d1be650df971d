"""The skill registration API.

A skill is one module under `rivulet.dialog.skills` with a `create(settings) -> Skill`. It declares,
per intent it handles, which slots are required (with the question that asks for each and a parser
that normalizes the answer), optional slots, whether the action needs a yes/no confirmation, and
which slots carry over to a follow-up ("what about tomorrow?"). The policy does the asking,
confirming and carrying; the skill only acts once its frame is complete:

    class Timers(Skill):
        name = "timers"
        intents = {"SetTimer": IntentSpec(required=[SlotSpec("duration", "For how long?", parse=...)])}

        async def act(self, intent, slots, ctx) -> Outcome:
            ctx.tx.zadd(...)            # writes are queued on the turn's MULTI and land atomically
            return Outcome("Timer set for 5 minutes.", "timer.set", {"duration_s": "300"})

Reads go through `ctx.redis` (the lock taken for the turn keeps them consistent); writes go on
`ctx.tx` so they commit with the turn or not at all.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from rivulet.dialog.state import Keys
from rivulet.dialog.store import Event

Parser = Callable[[str, "TurnContext"], str | None]


@dataclass(frozen=True)
class SlotSpec:
    """A slot the frame needs. `labels` are the NLU slot labels that fill it (default: its name);
    `parse` normalizes a heard value (None: not such a value, ask again); `free_text` lets a bare
    answer to the question fill it when the NLU labels nothing; `hints` are words and phrases the
    answer is likely made of, boosted in the ASR while the question is open (`rivulet.dialog.hints`);
    `read_with` names other NLU slot labels said with this one that help read it: `parse` then gets
    the value, a newline, and their words (an alarm's "eight" with its date "tonight" is 8 pm).
    `spans`: which of the label's spans the slot reads when the NLU cuts it in several: "first",
    "whole" (from the first to the last as said: "tomorrow at seven" from "tomorrow" and "seven"), or
    "each" (every span parsed, the values joined by "|": the items of "add eggs and milk")."""

    name: str
    prompt: str
    labels: tuple[str, ...] = ()
    parse: Parser | None = None
    free_text: bool = True
    default: str | None = None
    hints: tuple[str, ...] = ()
    read_with: tuple[str, ...] = ()
    spans: Literal["first", "whole", "each"] = "first"

    @property
    def all_labels(self) -> tuple[str, ...]:
        return self.labels or (self.name,)


@dataclass(frozen=True)
class IntentSpec:
    required: list[SlotSpec] = field(default_factory=list)
    optional: list[SlotSpec] = field(default_factory=list)
    # Question asked before acting, formatted with the slots; None: act without confirming.
    confirm: Callable[[dict[str, str], TurnContext], str] | None = None
    # Slots a follow-up may replace while the rest carry over ("what about tomorrow?").
    date_slot: str = ""
    place_slot: str = ""
    # What the assistant is doing, for help while the frame is open ("booking a table").
    describe: str = ""


@dataclass
class Outcome:
    text: str
    action: str
    slots: dict[str, str] = field(default_factory=dict)
    # False: the frame stays open (e.g. the value was unusable and the slot is asked again).
    done: bool = True
    retry_slot: str = ""


@dataclass
class TurnContext:
    session_id: str
    keys: Keys
    redis: aioredis.Redis
    tx: aioredis.client.Pipeline
    tz: ZoneInfo
    now: dt.datetime
    events: list[Event]
    turn_id: str = ""

    @property
    def today(self) -> dt.date:
        return self.now.date()

    async def read_data(self, field_name: str, default: Any) -> Any:
        raw = await self.redis.hget(self.keys.data, field_name)
        return json.loads(raw) if raw else default

    def write_data(self, field_name: str, value: Any) -> None:
        self.tx.hset(self.keys.data, field_name, json.dumps(value, ensure_ascii=False))


class Skill:
    name: str = ""
    intents: dict[str, IntentSpec] = {}

    async def act(self, intent: str, slots: dict[str, str], ctx: TurnContext) -> Outcome:
        raise NotImplementedError

    async def known_answers(
        self, intent: str, slot: str, slots: dict[str, str], ctx: TurnContext
    ) -> tuple[str, ...]:
        """Answers to the open question that this session's own data names (the items on a list, the
        lists it has), sent to the ASR as hints beside the slot's fixed ones."""
        return ()

    async def close(self) -> None:
        """Release resources (HTTP clients); called when the service stops."""


class SkillRegistry:
    """Intent name -> (skill, spec)."""

    def __init__(self) -> None:
        self._by_intent: dict[str, tuple[Skill, IntentSpec]] = {}
        self.skills: list[Skill] = []

    def register(self, skill: Skill) -> None:
        for intent in skill.intents:
            if intent in self._by_intent:
                raise ValueError(
                    f"intent {intent} is handled by two skills: {self._by_intent[intent][0].name}"
                )
        for intent, spec in skill.intents.items():
            self._by_intent[intent] = (skill, spec)
        self.skills.append(skill)

    def get(self, intent: str) -> tuple[Skill, IntentSpec] | None:
        return self._by_intent.get(intent)

    @property
    def intents(self) -> list[str]:
        return list(self._by_intent)

    async def close(self) -> None:
        for skill in self.skills:
            await skill.close()
