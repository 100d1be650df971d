"""One user turn from text to reply: NLU (outside the session lock, it is stateless), then under the
session lock the policy and skills, committed atomically with the turn's log entries. Shared by the
`TextTurn` RPC and the `Converse` stream."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis.asyncio as aioredis

from rivulet.core.errors import invalid_argument
from rivulet.dialog.clients import NluClient
from rivulet.dialog.policy import Policy, PolicyReply
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.skills.base import SkillRegistry, TurnContext
from rivulet.dialog.state import HistoryEntry, Keys, check_session_id
from rivulet.dialog.store import Event, SessionStore
from rivulet.dialog.understanding import NluResult, NluSlot


@dataclass
class TurnResult:
    turn_id: str
    text: str
    nlu: NluResult
    reply: PolicyReply
    nlu_ms: float
    policy_ms: float
    announcements: list[dict] = field(default_factory=list)
    hints: tuple[str, ...] = ()  # what the user is likely to say next (for the ASR)
    replayed: bool = False  # a retry of a committed turn, answered from its stored outcome

    def outcome(self) -> dict:
        """What a retry of this turn is answered with (stored beside the commit)."""
        return {"text": self.text, "nlu": asdict(self.nlu), "reply": asdict(self.reply)}

    @classmethod
    def replay(cls, turn_id: str, outcome: dict) -> TurnResult:
        nlu = outcome["nlu"]
        slots = [NluSlot(**slot) for slot in nlu["slots"]]
        return cls(
            turn_id,
            outcome["text"],
            NluResult(nlu["intent"], nlu["score"], slots),
            PolicyReply(**outcome["reply"]),
            nlu_ms=0.0,
            policy_ms=0.0,
            replayed=True,
        )


def new_turn_id() -> str:
    return uuid.uuid4().hex[:16]


class DialogEngine:
    def __init__(
        self, settings: DialogSettings, redis: aioredis.Redis, registry: SkillRegistry, nlu: NluClient
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.registry = registry
        self.nlu = nlu
        self.store = SessionStore(
            redis,
            ttl_s=settings.dialog_session_ttl_s,
            log_maxlen=settings.dialog_log_maxlen,
            lock_timeout_s=settings.dialog_lock_timeout_s,
            lock_wait_s=settings.dialog_lock_wait_s,
        )
        self.policy = Policy(registry, settings.dialog_nlu_threshold, settings.dialog_out_of_scope_intent)

    def zone(self, name: str) -> ZoneInfo:
        name = name or self.settings.dialog_time_zone
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise invalid_argument(
                f"time_zone {name!r} is not an IANA time zone (e.g. 'Europe/Berlin')"
            ) from exc

    def check_text(self, text: str) -> str:
        text = " ".join(text.split())
        if not text:
            raise invalid_argument("text is empty: send what the user said")
        if len(text) > self.settings.dialog_max_text_chars:
            raise invalid_argument(
                f"text has {len(text)} characters; the limit is {self.settings.dialog_max_text_chars}"
            )
        return text

    async def understand(self, text: str, language_code: str = "en-US") -> tuple[NluResult, float]:
        start = time.perf_counter()
        result = await self.nlu.analyze(text, language_code or "en-US")
        return result, (time.perf_counter() - start) * 1000

    async def turn(
        self,
        session_id: str,
        text: str,
        *,
        zone: ZoneInfo,
        typed: bool,
        turn_id: str = "",
        language_code: str = "en-US",
        nlu: tuple[NluResult, float] | None = None,
        before_commit: Callable[[PolicyReply], Awaitable[None]] | None = None,
        idempotent: bool = False,
    ) -> TurnResult:
        """Run one turn. Raises DependencyError (NLU down, or `before_commit` failing) or RivuletError
        (Redis down → UNAVAILABLE); in every such case nothing of the turn was written.

        `idempotent` (a client-chosen `turn_id`): the turn's outcome is committed with it, and a turn
        whose id was already committed is answered from that outcome (`replayed`), changing nothing
        and calling neither NLU, the policy nor `before_commit`."""
        check_session_id(session_id)
        text = self.check_text(text)
        turn_id = turn_id or new_turn_id()
        if idempotent and (stored := await self.store.outcome(session_id, turn_id)):
            return TurnResult.replay(turn_id, stored)
        result, nlu_ms = nlu or await self.understand(text, language_code)
        start = time.perf_counter()
        async with self.store.turn(session_id) as txn:
            # a duplicate that raced this one in: it held the lock first and committed
            if idempotent and (stored := await self.store.outcome(session_id, turn_id)):
                txn.discard = True
                return TurnResult.replay(turn_id, stored)
            state = txn.state
            state.turns += 1
            ctx = TurnContext(
                session_id=session_id,
                keys=txn.keys,
                redis=txn.redis,
                tx=txn.tx,
                tz=zone,
                now=dt.datetime.now(zone),
                events=txn.events,
                turn_id=turn_id,
            )
            txn.events.append(Event("user", {"text": text, "typed": typed}, turn_id))
            txn.events.append(
                Event(
                    "nlu",
                    {
                        "intent": result.intent,
                        "score": round(result.score, 4),
                        "slots": [[s.name, s.value] for s in result.slots],
                    },
                    turn_id,
                )
            )
            reply = await self.policy.respond(text, result, state, ctx)
            hints = await self.policy.hints_with_known(state, ctx)
            state.remember(
                HistoryEntry(
                    turn_id=turn_id,
                    user_text=text,
                    intent=result.intent,
                    reply_text=reply.text,
                    action=reply.action,
                    time=time.time(),
                ),
                self.settings.dialog_history_limit,
            )
            if not reply.repeat:
                state.last_reply = reply.text
            if before_commit is not None:
                await before_commit(reply)
            txn.events.append(
                Event(
                    "reply",
                    {
                        "text": reply.text,
                        "action": reply.action,
                        "slots": reply.action_slots,
                        "expecting_slot": reply.expecting_slot,
                        "expecting_confirmation": reply.expecting_confirmation,
                    },
                    turn_id,
                )
            )
            turn = TurnResult(turn_id, text, result, reply, nlu_ms, 0.0, hints=hints)
            if idempotent:
                txn.outcome = (turn_id, turn.outcome())
        turn.policy_ms = (time.perf_counter() - start) * 1000
        return turn

    async def reprompt(self, session_id: str, *, zone: ZoneInfo, turn_id: str = "") -> PolicyReply:
        """The reply to a spoken turn that gave no words (the open question asked again). It reads
        the session and writes nothing: the state stays as the last turn left it. Raises
        RivuletError (Redis down → UNAVAILABLE)."""
        state = await self.store.load(session_id)
        ctx = TurnContext(
            session_id=session_id,
            keys=Keys(session_id),
            redis=self.redis,
            tx=None,  # nothing is written
            tz=zone,
            now=dt.datetime.now(zone),
            events=[],
            turn_id=turn_id,
        )
        return self.policy.reprompt(state, ctx)

    async def record_playback(self, session_id: str, turn_id: str, played_ms: int, interrupted: bool) -> None:
        """Store how much of a reply the user heard (and whether they cut it off)."""
        async with self.store.turn(session_id) as txn:
            entry = next((h for h in reversed(txn.state.history) if h.turn_id == turn_id), None)
            if not txn.existed or entry is None:
                txn.discard = True
                return
            entry.played_ms, entry.interrupted = played_ms, interrupted
            txn.events.append(
                Event("barge_in" if interrupted else "played", {"played_ms": played_ms}, turn_id)
            )
