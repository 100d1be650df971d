"""Sessions in Redis: state, the event log, per-session serialization and atomic turn commits.

One turn = lock the session (a Redis lock with a random token and a short expiry, renewed while the
turn runs, so a crashed holder, e.g. a replica killed mid-turn, frees it within one expiry), WATCH the
session key, read the state, let the policy and skills queue their writes on a MULTI pipeline, then
EXEC the state, the skills' writes and the turn's log entries together (for a turn with a
client-chosen id also its outcome, so that a retry of the turn is answered from it, not applied
again). Either all of it lands or none of it does: a Redis failure (or a killed replica) mid-turn
leaves the session as it was. The
WATCH is a second guard: should the lock be lost under a very slow turn and another request commit
first, EXEC fails instead of overwriting that turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import redis.asyncio as aioredis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError, WatchError

from rivulet.core.errors import RivuletError, unavailable
from rivulet.dialog.state import Keys, SessionState

log = logging.getLogger(__name__)


def redis_unavailable(exc: BaseException) -> RivuletError:
    return unavailable(f"Redis is unavailable ({type(exc).__name__}: {exc}); the session was not changed")


@dataclass
class Event:
    """One entry of a conversation's append-only log."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)
    turn_id: str = ""

    def fields(self) -> dict[str, str]:
        return {
            "type": self.type,
            "turn": self.turn_id,
            "t": f"{time.time():.3f}",
            "data": json.dumps(self.data, ensure_ascii=False),
        }


@dataclass
class Transaction:
    """A turn being written: the state to change, a MULTI pipeline for skills' writes, log events."""

    keys: Keys
    state: SessionState
    tx: aioredis.client.Pipeline
    redis: aioredis.Redis
    events: list[Event] = field(default_factory=list)
    existed: bool = False
    discard: bool = False  # set by the body: commit nothing (e.g. the session did not exist)
    # set by the body: (turn id, outcome) kept with the commit, for retries of that turn
    outcome: tuple[str, dict[str, Any]] | None = None


class SessionStore:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        ttl_s: int,
        log_maxlen: int = 10_000,
        lock_timeout_s: float = 2.0,
        lock_wait_s: float = 10.0,
    ) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.log_maxlen = log_maxlen
        self.lock_timeout_s = lock_timeout_s
        self.lock_wait_s = lock_wait_s

    # -- reading -------------------------------------------------------------------------------
    async def load(self, session_id: str) -> SessionState | None:
        try:
            raw = await self.redis.hget(Keys(session_id).session, "state")
        except RedisError as exc:
            raise redis_unavailable(exc) from exc
        return SessionState.model_validate_json(raw) if raw else None

    async def inspect(self, session_id: str) -> tuple[SessionState | None, int, int, dict[str, Any]]:
        """State, TTL (s), event-log length and skill data of a session."""
        keys = Keys(session_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hget(keys.session, "state").ttl(keys.session).xlen(keys.log)
                pipe.hgetall(keys.data).hgetall(keys.timers)
                raw, ttl, events, data, timers = await pipe.execute()
        except RedisError as exc:
            raise redis_unavailable(exc) from exc
        state = SessionState.model_validate_json(raw) if raw else None
        decoded = {k.decode(): json.loads(v) for k, v in data.items()}
        if timers:
            decoded["timers"] = sorted((json.loads(v) for v in timers.values()), key=lambda t: t["due"])
        return state, max(int(ttl), 0), int(events), decoded

    async def read_log(self, session_id: str, start: str = "-", count: int | None = None) -> list[dict]:
        try:
            entries = await self.redis.xrange(Keys(session_id).log, min=start, count=count)
        except RedisError as exc:
            raise redis_unavailable(exc) from exc
        return [decode_event(entry_id, fields) for entry_id, fields in entries]

    async def outcome(self, session_id: str, turn_id: str) -> dict[str, Any] | None:
        """The stored outcome of a committed turn with a client-chosen id, or None."""
        try:
            raw = await self.redis.get(Keys(session_id).outcome(turn_id))
        except RedisError as exc:
            raise redis_unavailable(exc) from exc
        return json.loads(raw) if raw else None

    # -- writing -------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def turn(self, session_id: str) -> AsyncIterator[Transaction]:
        """Serialize against other requests on the session and commit everything queued atomically.

        The body reads `txn.state`, changes it, queues skill writes on `txn.tx` and events on
        `txn.events`; leaving the block without an exception commits. An exception commits nothing.
        """
        keys = Keys(session_id)
        lock = self.redis.lock(keys.lock, timeout=self.lock_timeout_s, blocking_timeout=self.lock_wait_s)
        try:
            acquired = await lock.acquire()
        except RedisError as exc:
            raise redis_unavailable(exc) from exc
        if not acquired:
            raise RivuletError(
                grpc.StatusCode.ABORTED,
                f"session {session_id!r} was busy with another request for {self.lock_wait_s:.0f}s; retry",
            )
        renewal = asyncio.create_task(self._keep_locked(lock, session_id), name="dialog-lock-renewal")
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(keys.session)
                raw = await pipe.hget(keys.session, "state")
                state = (
                    SessionState.model_validate_json(raw)
                    if raw
                    else SessionState(session_id=session_id, created=time.time())
                )
                pipe.multi()
                txn = Transaction(keys=keys, state=state, tx=pipe, redis=self.redis, existed=bool(raw))
                yield txn
                if not txn.discard:  # otherwise leaving the pipeline block discards the MULTI
                    self._queue_commit(txn)
                    await pipe.execute()
        except WatchError as exc:
            raise RivuletError(
                grpc.StatusCode.ABORTED,
                f"session {session_id!r} was changed by another request during this turn; retry",
            ) from exc
        except RedisError as exc:
            raise redis_unavailable(exc) from exc
        finally:
            renewal.cancel()  # (not awaited: that could swallow this task's own cancellation)
            with contextlib.suppress(LockError, RedisError):
                await lock.release()

    async def _keep_locked(self, lock: Lock, session_id: str) -> None:
        """Renew the session lock's expiry every third of it while the turn runs (a slow turn keeps
        it; a killed process stops renewing, so the lock frees itself). Gives up when the lock is
        lost: the WATCH then refuses the commit."""
        while True:
            await asyncio.sleep(self.lock_timeout_s / 3)
            try:
                await lock.reacquire()
            except (LockError, RedisError) as exc:
                log.warning("session %s: lock not renewed (%s: %s)", session_id, type(exc).__name__, exc)
                return

    def _queue_commit(self, txn: Transaction) -> None:
        keys, pipe = txn.keys, txn.tx
        pipe.hset(
            keys.session,
            mapping={"state": txn.state.model_dump_json(), "turns": txn.state.turns, "updated": time.time()},
        )
        for event in txn.events:
            pipe.xadd(keys.log, event.fields(), maxlen=self.log_maxlen, approximate=True)
        for key in (keys.session, keys.log, keys.data, keys.timers):
            pipe.expire(key, self.ttl_s)
        if txn.outcome is not None:
            turn_id, outcome = txn.outcome
            pipe.set(keys.outcome(turn_id), json.dumps(outcome, ensure_ascii=False), ex=self.ttl_s)

    async def log_events(self, session_id: str, events: list[Event]) -> None:
        """Append events that change no state (transcripts, errors, playback progress)."""
        if not events:
            return
        keys = Keys(session_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for event in events:
                    pipe.xadd(keys.log, event.fields(), maxlen=self.log_maxlen, approximate=True)
                pipe.expire(keys.log, self.ttl_s)
                await pipe.execute()
        except RedisError as exc:
            raise redis_unavailable(exc) from exc

    async def take_announcements(self, session_id: str) -> list[dict]:
        """Remove and return the announcements waiting for this session (each is delivered once)."""
        keys = Keys(session_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.lrange(keys.announcements, 0, -1).delete(keys.announcements)
                items, _ = await pipe.execute()
        except RedisError as exc:
            raise redis_unavailable(exc) from exc
        return [json.loads(item) for item in items]

    async def reset(self, session_id: str, clear_data: bool) -> bool:
        keys = Keys(session_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.exists(keys.session)
                pipe.delete(keys.session, keys.log)
                if clear_data:
                    timers = await self.redis.hvals(keys.timers)
                    if timers:
                        pipe.zrem(Keys.TIMERS, *timers)
                    pipe.delete(keys.data, keys.timers, keys.announcements)
                existed, *_ = await pipe.execute()
        except RedisError as exc:
            raise redis_unavailable(exc) from exc
        return bool(existed)


def decode_event(entry_id: bytes | str, fields: dict) -> dict[str, Any]:
    get = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }
    return {
        "id": entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
        "type": get.get("type", ""),
        "turn": get.get("turn", ""),
        "t": float(get.get("t", 0) or 0),
        "data": json.loads(get.get("data") or "{}"),
    }
