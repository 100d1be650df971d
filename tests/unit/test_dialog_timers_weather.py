"""Timers fire exactly once across replicas (atomic claim) and reach the session's channel; the
Open-Meteo-format weather provider against a real local HTTP server speaking that format."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
import uuid
from http.server import ThreadingHTTPServer

import pytest
import redis.asyncio as aioredis

from bench.dialog_support import OpenMeteoHandler, expected_forecast
from rivulet.dialog.scheduler import TimerScheduler
from rivulet.dialog.skills.weather import OpenMeteoProvider, PlaceNotFound, ProviderError
from rivulet.dialog.state import Keys
from rivulet.dialog.store import SessionStore
from tests.support import free_port

# A database of its own on the session's redis-server: the dialog replicas of the integration
# tests (session-scoped, on database 0) run timer schedulers that would fire these timers first.
TIMER_TEST_DB = 9


@pytest.fixture
async def redis(redis_url):
    server = redis_url.split("://", 1)[1].split("/", 1)[0]
    client = aioredis.Redis.from_url(f"redis://{server}/{TIMER_TEST_DB}")
    yield client
    await client.aclose()


async def test_due_timer_is_fired_once_by_competing_replicas(redis):
    session = f"t-{uuid.uuid4().hex[:8]}"
    keys = Keys(session)
    timer = {
        "id": "abc",
        "session": session,
        "kind": "timer",
        "label": "5 seconds timer",
        "due": time.time() - 1,
    }
    member = json.dumps(timer, sort_keys=True)
    await redis.zadd(Keys.TIMERS, {member: timer["due"]})
    await redis.hset(keys.timers, "abc", member)
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.channel)
    replicas = [TimerScheduler(redis, 0.1, 600) for _ in range(4)]
    fired = await asyncio.gather(*(r.fire_due() for r in replicas))
    assert sum(fired) == 1
    message = None
    for _ in range(20):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message:
            break
    assert message and json.loads(message["data"])["text"] == "Your 5 seconds timer is done."
    await pubsub.aclose()
    store = SessionStore(redis, ttl_s=600)
    assert [a["timer_id"] for a in await store.take_announcements(session)] == ["abc"]
    assert await store.take_announcements(session) == []
    assert await redis.hlen(keys.timers) == 0
    assert [e["type"] for e in await store.read_log(session)] == ["announcement"]


async def test_future_timer_waits(redis):
    session = f"t-{uuid.uuid4().hex[:8]}"
    timer = {
        "id": "later",
        "session": session,
        "kind": "alarm",
        "label": "alarm for 7 AM",
        "due": time.time() + 60,
    }
    await redis.zadd(Keys.TIMERS, {json.dumps(timer): timer["due"]})
    assert await TimerScheduler(redis, 0.1, 600).fire_due() == 0
    assert await TimerScheduler(redis, 0.1, 600).fire_due(now=time.time() + 61) == 1


@pytest.fixture(scope="module")
def open_meteo():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), OpenMeteoHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_open_meteo_provider(open_meteo):
    provider = OpenMeteoProvider(f"{open_meteo}/v1/forecast")
    assert provider.geocoding_url == f"{open_meteo}/v1/search"
    day = dt.date(2026, 11, 24)
    forecast = await provider.forecast("Paris", day)
    t_min, t_max, condition = expected_forecast(day)
    assert (forecast.place, forecast.t_min, forecast.t_max, forecast.condition) == (
        "Paris",
        t_min,
        t_max,
        condition,
    )
    with pytest.raises(PlaceNotFound):
        await provider.forecast("Atlantis", day)
    broken = OpenMeteoProvider(f"{open_meteo}/v2/forecast", f"{open_meteo}/v1/search")
    with pytest.raises(ProviderError):
        await broken.forecast("Paris", day)  # 404 from the server
    dead = OpenMeteoProvider(f"http://127.0.0.1:{free_port()}/v1/forecast", timeout_s=0.5)
    with pytest.raises(ProviderError):
        await dead.forecast("Paris", day)
    for p in (provider, broken, dead):
        await p.close()
