"""The session lock on a real Redis: short-lived so that a killed replica frees it soon
(test_dialog_failover), yet kept for as long as a live turn runs (renewed), so a slow turn is
never overtaken by the next request on its session."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from rivulet.core.redis_client import create_redis
from rivulet.dialog.state import Keys
from rivulet.dialog.store import SessionStore

pytestmark = pytest.mark.integration

EXPIRY_S = 0.3


async def test_a_turn_longer_than_the_lock_expiry_keeps_the_session(redis_url):
    redis = create_redis(redis_url)
    store = SessionStore(redis, ttl_s=60, lock_timeout_s=EXPIRY_S, lock_wait_s=10)
    session_id = f"lock-{uuid.uuid4().hex[:10]}"
    order: list[str] = []
    slow_holds_the_lock = asyncio.Event()

    async def slow_turn() -> None:
        async with store.turn(session_id) as txn:
            order.append("slow begins")
            slow_holds_the_lock.set()
            await asyncio.sleep(4 * EXPIRY_S)  # e.g. a long reply being synthesized before the commit
            txn.state.turns += 1
            order.append("slow commits")

    async def next_turn() -> None:
        await slow_holds_the_lock.wait()
        async with store.turn(session_id) as txn:
            order.append("next runs")
            txn.state.turns += 1

    try:
        await asyncio.gather(slow_turn(), next_turn())
        assert order == ["slow begins", "slow commits", "next runs"]
        assert (await store.load(session_id)).turns == 2
        assert not await redis.exists(Keys(session_id).lock)  # released, not left to expire
    finally:
        await redis.aclose()
