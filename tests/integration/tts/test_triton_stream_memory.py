"""Thousands of TTS replies through TritonSynthesizer leave tritonserver's memory flat (issue #18).

Each reply is a ModelStreamInfer stream to the decoupled ``tts_embedded`` model. tritonserver 2.51
kept about 5-9 KiB for every stream the client cancelled after its FINAL response (what the
synthesizer did until #18); a stream that Triton ends itself leaves nothing behind.
Barge-in (a stream cancelled mid-reply) is tested through the service in test_tts_service.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from rivulet.tts.catalog import TtsVoice
from rivulet.tts.synthesis import TritonSynthesizer
from tests.support import rss_mib

pytestmark = pytest.mark.integration

VOICE = TtsVoice("tts_embedded", "English-US", "Male-2", "en-US", 16000)
SCRIPT = json.dumps([{"text": "Sure. what time is it."}])
WARMUP, REPLIES, CONCURRENCY = 1000, 3000, 16


async def speak(synthesizer: TritonSynthesizer, count: int) -> int:
    slots, finished = asyncio.Semaphore(CONCURRENCY), 0

    async def reply() -> None:
        nonlocal finished
        async with slots:
            pieces = [p async for p in synthesizer.stream(VOICE, SCRIPT, uuid.uuid4().hex)]
            assert pieces and pieces[0][1] == 16000
            finished += 1

    await asyncio.gather(*(reply() for _ in range(count)))
    return finished


def test_finished_replies_leave_tritonserver_memory_flat(triton):
    pid = triton.process.pid

    async def run() -> tuple[float, float]:
        synthesizer = TritonSynthesizer(triton.grpc_url)
        try:
            assert await speak(synthesizer, WARMUP) == WARMUP
            before = rss_mib(pid)
            assert await speak(synthesizer, REPLIES) == REPLIES
            await asyncio.sleep(1.0)
            return before, rss_mib(pid)
        finally:
            await synthesizer.close()

    before, after = asyncio.run(run())
    # cancelling each finished stream grew it by ~15-26 MiB over these 3,000 replies
    assert after - before < 6.0, f"tritonserver grew {before:.1f} → {after:.1f} MiB over {REPLIES} replies"
