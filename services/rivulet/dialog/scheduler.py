"""Fires due timers and alarms. Every replica runs one; a Lua script claims each due timer atomically
(ZREM succeeds for exactly one replica), queues its announcement on the session's list, logs it, and
publishes on the session's channel so whichever replica holds that session's Converse stream speaks
it at once. A session with no open stream gets it with its next turn (TextTurn `announcements`, or
when a stream opens). A replica that dies mid-claim loses nothing: the claim is one atomic script."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from rivulet.dialog.metrics import TIMERS_FIRED
from rivulet.dialog.state import Keys

log = logging.getLogger(__name__)

# KEYS: timers zset, session timers hash, announcements list, session log stream
# ARGV: member, timer id, announcement JSON, ttl, channel, now
CLAIM = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', '10000', '*', 'type', 'announcement', 'turn', '', 't', ARGV[6],
           'data', ARGV[3])
redis.call('PUBLISH', ARGV[5], ARGV[3])
return 1
"""


def announcement_text(timer: dict) -> str:
    if timer["kind"] == "alarm":
        return f"Your {timer['label']} is going off."
    return f"Your {timer['label']} is done."


class TimerScheduler:
    def __init__(self, redis: aioredis.Redis, interval_s: float, ttl_s: int) -> None:
        self.redis = redis
        self.interval_s = interval_s
        self.ttl_s = ttl_s
        self._claim = redis.register_script(CLAIM)
        self._task: asyncio.Task | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="dialog-timer-scheduler")

    async def stop(self) -> None:
        # the flag as well as the cancel: a cancel that lands inside a Redis call can come out of
        # redis-py as a connection error, which the loop below would treat as an outage and retry
        self._stopping = True
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def fire_due(self, now: float | None = None) -> int:
        """Claim and announce every timer due by `now`; returns how many this replica fired."""
        now = time.time() if now is None else now
        due = await self.redis.zrangebyscore(Keys.TIMERS, "-inf", now, start=0, num=100)
        fired = 0
        for member in due:
            timer = json.loads(member)
            keys = Keys(timer["session"])
            announcement = json.dumps(
                {
                    "text": announcement_text(timer),
                    "kind": timer["kind"],
                    "timer_id": timer["id"],
                    "label": timer["label"],
                    "due": timer["due"],
                    "fired": now,
                },
            )
            claimed = await self._claim(
                keys=[Keys.TIMERS, keys.timers, keys.announcements, keys.log],
                args=[member, timer["id"], announcement, self.ttl_s, keys.channel, f"{now:.3f}"],
            )
            if claimed:
                fired += 1
                TIMERS_FIRED.labels(timer["kind"]).inc()
                log.info("fired %s %s of session %s", timer["kind"], timer["id"], timer["session"])
        return fired

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.fire_due()
            except (RedisError, OSError) as exc:
                log.warning("timer scheduler: Redis unavailable (%s); retrying", exc)
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("timer scheduler failed; retrying")
                await asyncio.sleep(1.0)
            await asyncio.sleep(self.interval_s)
