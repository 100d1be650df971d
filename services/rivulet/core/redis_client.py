"""asyncio Redis client shared by services that keep state."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from rivulet.core.metrics import DEPENDENCY_READY


def create_redis(url: str, *, timeout_s: float = 2.0) -> aioredis.Redis:
    """A pooled client; commands fail fast (`timeout_s`) so a Redis outage maps to UNAVAILABLE promptly."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=10,
        decode_responses=False,
    )


async def redis_ready(client: aioredis.Redis) -> bool:
    try:
        ready = bool(await client.ping())
    except (RedisError, OSError):
        ready = False
    DEPENDENCY_READY.labels("redis").set(1 if ready else 0)
    return ready
