"""rivulet.core.grpc_calls: a caller that gives up on a grpc.aio call leaves it running, and so the
client keeps no memory for it (a cancelled grpc.aio call leaks about 1 KiB in grpcio 1.85)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import grpc
import pytest

from rivulet.core.grpc_calls import CallsInFlight
from tests.support import ROOT, free_port, service_env


async def test_a_caller_giving_up_does_not_cancel_the_call():
    ended: list[str] = []

    async def answer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise
        ended.append("answered")
        return request

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(answer)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.Slow", {"Answer": handler}),))
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        method, calls = channel.unary_unary("/t.Slow/Answer"), CallsInFlight()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(calls.uncancelled(method(b"one")), 0.05)
        assert len(calls) == 1
        await calls.wait(5.0)
        assert len(calls) == 0 and ended == ["answered"]
        # the same give-up without it cancels the call: the server sees the cancellation
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(method(b"two"), 0.05)
        for _ in range(100):
            if len(ended) == 2:
                break
            await asyncio.sleep(0.05)
        assert ended == ["answered", "cancelled"]
    finally:
        await channel.close()
        await server.stop(None)


def test_calls_given_up_through_it_keep_no_memory():
    """bench.grpc_cancel_leak in small: 4,000 calls given up after 10 ms each way."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.grpc_cancel_leak", "--modes", "cancel", "uncancelled",
         "--calls", "4000", "--report", ""],
        cwd=ROOT, env=service_env(), check=True, capture_output=True, text=True, timeout=300,
    ).stdout  # fmt: skip
    per_call = {m: float(b) for m, b in re.findall(r"^([\w-]+): (-?[\d.]+) bytes per call$", out, re.M)}
    assert per_call["uncancelled"] < 400, out
    # the leak the workaround avoids; if grpcio frees cancelled calls' batches (grpc/grpc#43360),
    # this fails and rivulet.core.grpc_calls can go
    assert per_call["cancel"] > 600, out
