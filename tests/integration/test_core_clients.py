"""The core asyncio clients against real servers: Redis and tritonserver."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from rivulet.core.errors import RivuletError
from rivulet.core.redis_client import create_redis, redis_ready
from rivulet.core.triton import TritonClient
from tests.support import free_port

pytestmark = pytest.mark.integration


async def test_redis_client_round_trip_and_readiness(redis_url):
    client = create_redis(redis_url)
    try:
        assert await redis_ready(client)
        await client.set("rivulet:test", b"value", ex=30)
        assert await client.get("rivulet:test") == b"value"
    finally:
        await client.aclose()
    down = create_redis(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    assert not await redis_ready(down)
    await down.aclose()


async def test_triton_client_discovers_ready_models_with_parameters(triton):
    client = TritonClient(triton.grpc_url)
    try:
        await client.wait_ready(["intent_assistant"], timeout_s=10)
        models = {m.name: m for m in await client.ready_models()}
        assert models["intent_assistant"].parameters["rivulet_task"] == "intent_slot"
        assert models["intent_assistant"].max_batch_size > 1
    finally:
        await client.close()


async def test_triton_client_maps_failures_to_status_codes(triton):
    client = TritonClient(triton.grpc_url, retries=0)
    text = np.array([[b"hello"]], dtype=object)
    try:
        with pytest.raises(RivuletError) as missing:
            await client.wait_ready(["no_such_model"], timeout_s=0.5)
        assert missing.value.code == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(RivuletError) as unknown:
            await client.infer("no_such_model", {"TEXT": text}, ["INTENT_LABELS"])
        assert unknown.value.code == grpc.StatusCode.UNAVAILABLE
        assert "no_such_model" in unknown.value.message
        with pytest.raises(RivuletError) as wrong_input:
            await client.infer("intent_assistant", {"NOT_TEXT": text}, ["INTENT_LABELS"])
        assert wrong_input.value.code == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await client.close()


async def test_triton_client_reports_unreachable_server():
    client = TritonClient(f"127.0.0.1:{free_port()}", timeout_s=1.0, retries=1)
    try:
        assert not await client.server_ready()
        with pytest.raises(RivuletError) as err:
            await client.infer(
                "intent_assistant", {"TEXT": np.array([[b"hi"]], dtype=object)}, ["INTENT_LABELS"]
            )
        assert err.value.code == grpc.StatusCode.UNAVAILABLE
        assert "unavailable" in err.value.message
    finally:
        await client.close()


async def test_triton_client_leaves_a_call_its_caller_gave_up_on_to_end(triton):
    """A cancelled caller does not cancel its gRPC call (cancelling one leaks native memory,
    rivulet.core.grpc_calls): the call runs on to Triton's answer and then leaves the client."""
    client = TritonClient(triton.grpc_url, retries=0)
    text = np.array([[b"set a timer for ten minutes"]], dtype=object)
    try:
        await client.wait_ready(["intent_assistant"], timeout_s=10)
        caller = asyncio.create_task(client.infer("intent_assistant", {"TEXT": text}, ["INTENT_LABELS"]))
        await asyncio.sleep(0)  # the caller's first step starts the call
        assert len(client.calls) == 1
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert len(client.calls) == 1  # still in flight: not cancelled with its caller
        await client.calls.wait(10.0)
        assert len(client.calls) == 0
        answer = await client.infer("intent_assistant", {"TEXT": text}, ["INTENT_LABELS"])
        assert answer["INTENT_LABELS"].size  # the channel is still good for the next call
    finally:
        await client.close()


async def test_triton_client_per_call_deadline(triton):
    client = TritonClient(triton.grpc_url, retries=0)
    text = np.array([[b"hello"]], dtype=object)
    try:
        await client.wait_ready(["intent_assistant"], timeout_s=10)
        with pytest.raises(RivuletError) as late:
            await client.infer("intent_assistant", {"TEXT": text}, ["INTENT_LABELS"], timeout_s=1e-4)
        assert late.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "did not answer in 0.0001s" in late.value.message
        assert len(client.calls) == 0
    finally:
        await client.close()
