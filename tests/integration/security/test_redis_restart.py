"""Redis SIGKILLed and restarted (AOF on, appendfsync everysec, as in the chart) in the middle of a
conversation driven through the real dialog engine, policy, skills, session store and timer
scheduler. Every turn that was acknowledged is in the session afterwards (state, history and event
log); every refused turn got UNAVAILABLE and left nothing behind; a timer set before the crash fires
after Redis is back. The NLU result is given to each turn (no NLU model needed): what is under test is
the dialog's state in Redis."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import pytest

from rivulet.core.errors import RivuletError
from rivulet.core.redis_client import create_redis
from rivulet.dialog.clients import NluClient
from rivulet.dialog.engine import DialogEngine
from rivulet.dialog.scheduler import TimerScheduler
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.skills import build_registry
from rivulet.dialog.understanding import NluResult, NluSlot
from tests.support import fault_figures, free_port

pytestmark = pytest.mark.integration

SESSION = "redis-crash-1"
UTC = ZoneInfo("UTC")


class AofRedis:
    """redis-server with append-only persistence in `directory`, restartable on the same port."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> float:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (make setup installs it)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return time.monotonic()
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not answer PING")

    def kill(self) -> float:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        return time.monotonic()


def _what_time() -> tuple[NluResult, float]:
    return NluResult("GetTime", 0.99, []), 1.0


async def test_redis_killed_mid_conversation_loses_no_acknowledged_turn(tmp_path):
    server = AofRedis(tmp_path)
    server.start()
    settings = DialogSettings(redis_url=server.url, dialog_scheduler_interval_s=0.05)
    redis = create_redis(server.url, timeout_s=0.5)
    engine = DialogEngine(
        settings, redis, build_registry(settings), NluClient("127.0.0.1:9", "assistant", 1.0)
    )
    scheduler = TimerScheduler(redis, 0.05, settings.dialog_session_ttl_s)
    scheduler.start()
    acked: list[str] = []
    refused: list[tuple[str, float]] = []
    try:
        timer = await engine.turn(
            SESSION, "set a timer for four seconds", zone=UTC, typed=True,
            nlu=(NluResult("SetTimer", 0.99, [NluSlot("duration", "four seconds")]), 1.0),
        )  # fmt: skip
        acked.append(timer.turn_id)
        timer_set_at = time.monotonic()
        killed_at = restarted_at = 0.0
        first_refusal = first_ack_after = 0.0
        attempt = 0
        while len(acked) < 30:
            attempt += 1
            if attempt == 10:
                killed_at = server.kill()
            if killed_at and not restarted_at and time.monotonic() - killed_at > 1.0:
                restarted_at = server.start()
            turn_id = f"turn-{attempt:03d}"
            try:
                result = await engine.turn(
                    SESSION,
                    f"what time is it {attempt}",
                    zone=UTC,
                    typed=True,
                    turn_id=turn_id,
                    nlu=_what_time(),
                )
            except RivuletError as exc:
                assert exc.code == grpc.StatusCode.UNAVAILABLE, exc
                assert "Redis is unavailable" in exc.message and "the session was not changed" in exc.message
                refused.append((turn_id, time.monotonic()))
                first_refusal = first_refusal or time.monotonic()
            else:
                acked.append(result.turn_id)
                if restarted_at and not first_ack_after:
                    first_ack_after = time.monotonic()
            await asyncio.sleep(0.05)
        assert refused, "no turn was attempted while Redis was down"

        state = await engine.store.load(SESSION)
        assert state is not None
        assert state.turns == len(acked), (state.turns, len(acked))
        assert [h.turn_id for h in state.history] == acked
        log = await engine.store.read_log(SESSION)
        by_turn: dict[str, set[str]] = {}
        for event in log:
            by_turn.setdefault(event.get("turn") or "", set()).add(event["type"])
        for turn_id in acked:
            assert {"user", "nlu", "reply"} <= by_turn.get(turn_id, set()), turn_id
        assert not {t for t, _ in refused} & set(by_turn), "a refused turn left events behind"

        # the timer, set before the crash, fires once Redis is back
        deadline = timer_set_at + 15
        fired = []
        while time.monotonic() < deadline and not fired:
            fired = await engine.store.take_announcements(SESSION)
            await asyncio.sleep(0.1)
        assert fired and "timer is done" in json.dumps(fired), fired
        fired_after = time.monotonic() - timer_set_at
    finally:
        await scheduler.stop()
        await redis.aclose()
        if server.process and server.process.poll() is None:
            server.process.terminate()
            server.process.wait(10)
    figures = {
        "acknowledged_turns": len(acked),
        "refused_turns": len(refused),
        "kill_to_first_unavailable_s": round(first_refusal - killed_at, 3),
        "restart_to_first_acknowledged_turn_s": round(first_ack_after - restarted_at, 3),
        "turns_lost": 0,
        "timer_due_s": 4,
        "timer_fired_after_s": round(fired_after, 2),
    }
    fault_figures("redis_restarted", figures)
