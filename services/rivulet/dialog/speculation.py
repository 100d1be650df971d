"""Speculation: a turn answered from the words the ASR marked stable, during the endpointing wait,
and committed (and spoken, from the reply audio synthesized ahead) only if the final agrees."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from rivulet.dialog import metrics
from rivulet.dialog.converse_turns import UserTurn

# How long a speculation waits for the final transcript (holding the session lock).
SPECULATION_WAIT_S = 2.0


@dataclass
class Speculation:
    """Words the ASR marked stable (its early end-of-utterance check) before the final: understood and
    answered during the endpointing wait, committed only if the final says the same."""

    text: str
    turn_id: str
    decided: asyncio.Future  # the final's UserTurn when it matches, None when it does not
    abandoned: bool = False  # gave up waiting: a later matching final is an ordinary turn


class Abandoned(Exception):
    """The final transcript did not confirm a speculation: nothing of it is committed."""


class Prefetch:
    """Reply audio synthesized ahead (while the final is awaited), handed over chunk by chunk."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.started = time.perf_counter()
        self.first = 0.0
        self.task = asyncio.create_task(self._run(chunks), name="converse-tts-prefetch")

    async def _run(self, chunks: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in chunks:
                self.first = self.first or time.perf_counter()
                self.queue.put_nowait(chunk)
        except Exception as exc:
            self.queue.put_nowait(exc)
        finally:
            self.queue.put_nowait(None)

    async def chunks(self) -> AsyncIterator[bytes]:
        while (item := await self.queue.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item

    async def cancel(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


def decide(spec: Speculation | None, turn: UserTurn | None) -> None:
    """Settle a speculation: `turn` is the final that confirms it, None drops it."""
    if spec and not spec.decided.done():
        if not spec.abandoned:  # one given up on was counted late
            metrics.SPECULATIONS.labels("confirmed" if turn else "dropped").inc()
        spec.decided.set_result(turn)


async def decision(spec: Speculation) -> UserTurn | None:
    """The final that confirms `spec`, or None (it differed, or did not come in time)."""
    try:
        return await asyncio.wait_for(asyncio.shield(spec.decided), SPECULATION_WAIT_S)
    except TimeoutError:
        spec.abandoned = True
        metrics.SPECULATIONS.labels("late").inc()
        return None
