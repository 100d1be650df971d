"""Thousands of TTS replies through TritonSynthesizer leave tritonserver's memory flat (issue #18).

Each reply is a ModelStreamInfer stream to the decoupled ``tts_embedded`` model. tritonserver 2.51
kept about 5-9 KiB for every stream the client cancelled after its FINAL response (what the
synthesizer did until #18); a stream that Triton ends itself leaves nothing behind.
A reply stopped early (barge-in) is drained, not cancelled (below); that it stops the audio is
tested through the service in test_tts_service.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid

import pytest

from rivulet.core.metrics import TTS_STREAM_ENDINGS
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


LONG = json.dumps([{"text": "Sure. " + "the quick brown fox jumps over the lazy dog, " * 12 + "the end."}])
BARGE_INS = 400


def _endings() -> dict[str, float]:
    return {
        s.labels["ending"]: s.value
        for m in TTS_STREAM_ENDINGS.collect()
        for s in m.samples
        if s.name.endswith("_total") and s.labels["model"] == VOICE.model
    }


def test_barge_ins_never_cancel_a_triton_stream(triton):
    """A reply stopped early (the consumer breaks off, or its task is cancelled while it waits for
    the next piece) gets nothing more at once, and its stream is drained, not cancelled: client
    cancels mid-reply crashed or stalled tritonserver 2.51 (README "Soak")."""

    async def run() -> tuple[float, list[float]]:
        synthesizer = TritonSynthesizer(triton.grpc_url)
        stops: list[float] = []

        async def barge_in(index: int) -> None:
            pieces = synthesizer.stream(VOICE, LONG, uuid.uuid4().hex)
            if index % 2:  # the consumer's task is cancelled while it waits for the next piece
                first = asyncio.Event()

                async def listen() -> None:
                    async for _ in pieces:
                        first.set()

                listener = asyncio.create_task(listen())
                await first.wait()
                stopped = time.perf_counter()
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            else:  # the consumer stops after the first piece
                async for _ in pieces:
                    break
                stopped = time.perf_counter()
                await pieces.aclose()
            stops.append(time.perf_counter() - stopped)
            await synthesizer.wait_open_below(4)

        before = _endings()
        try:
            for index in range(BARGE_INS):
                await barge_in(index)
            await synthesizer.wait_open_below(1)
        finally:
            await synthesizer.close()
        after = _endings()
        return {k: after[k] - before.get(k, 0) for k in after}, stops

    endings, stops = asyncio.run(run())
    assert triton.process.poll() is None, "tritonserver died"
    assert endings.get("cancelled", 0) == 0 and endings.get("failed", 0) == 0, endings
    assert endings.get("drained", 0) + endings.get("finished", 0) == BARGE_INS, endings
    # "at once": a stop that waited for the stream's rest (the synthesis of a dozen more sentences)
    # would make every stop slow; read by the median and the 95th percentile, so that one stop
    # delayed by the machine's other work (105 ms once, while a model trained beside the tests)
    # does not count as waiting
    stops.sort()
    median, p95 = stops[len(stops) // 2], stops[int(len(stops) * 0.95)]
    took = f"stopping a reply took {median * 1000:.1f} ms (median), {p95 * 1000:.1f} ms (p95)"
    assert median < 0.01 and p95 < 0.05, took
