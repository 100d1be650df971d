"""gRPC client calls that a cancelled caller does not cancel.

Cancelling the asyncio task that awaits a `grpc.aio` call (task.cancel(), asyncio.wait_for,
call.cancel()) leaks the call's native batch in grpcio 1.85: about 1 KiB a call that is never
freed, whatever the message size (grpc/grpc#43360; `python -m bench.grpc_cancel_leak` measures
it). A call that ends by itself, by its answer or its deadline, leaves nothing. So a service's calls
to its dependencies run through `CallsInFlight.uncancelled`: the call gets a task of its own and the
caller awaits it through `asyncio.shield`; a caller that stops waiting (its client gone, a result no
longer needed, a timeout) leaves the call to end by its deadline, which every such call must have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class CallsInFlight:
    """The calls one client has started and not yet seen end, awaited or not."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future] = set()

    def uncancelled(self, call: Awaitable[T]) -> Awaitable[T]:
        """`call` in a task of its own, awaited through a shield: cancelling the awaiting task
        leaves the call running to its end (its result or error is then dropped)."""
        task = asyncio.ensure_future(call)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return asyncio.shield(task)

    def __len__(self) -> int:
        return len(self._tasks)

    async def wait(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for the calls in flight to end (before closing their channel)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
