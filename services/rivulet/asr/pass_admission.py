"""Which second passes go to Whisper: only as many at once as it answers in time.

A streaming final waits for its Whisper pass at most `asr_second_pass_timeout_ms`; a pass later than
that is wasted (the final is the streaming model's hypothesis anyway) and it still holds Triton
until its deadline, making the passes queued behind it late too. Under overload (more utterances
ending at once than Whisper's hardware transcribes in the timeout) every final then waited the whole
timeout and was the streaming model's: on 2 CPU cores at the soak's rated load, 1 final in 44,239
was Whisper's.

So a pass is sent only while fewer than `limit` passes are in Triton; a refused pass leaves the final
to the streaming model at once. The limit adapts the way TCP's congestion window does (additive
increase, multiplicative decrease), judged by what a person waits for: the time from the endpoint
(or the end of audio) to the pass's transcript. Each final that waited at most
`asr_second_pass_target_ms` raises it by 1/limit (about one per limit's worth of finals); one that
waited longer, or whose pass failed or ran past the timeout, cuts it to `DECREASE` of itself (at most
once per timeout interval: one burst is one cut); never below `MIN_LIMIT` passes (a stream's dropped
speculation and its final) nor above `asr_second_pass_max_in_flight`. A long utterance's pass that
takes a while on an idle machine is not late: it started at the first silence and the final waits
only for its rest. It settles where Whisper's hardware answers in
time, a few passes on 2 CPU cores, many on a GPU, and follows it when other replicas share the same
Triton. Every pass counts until its Triton request ends, including passes nobody waits for any more
(a dropped speculation, a final that gave up on it): those are never cancelled
(`rivulet.core.grpc_calls`) and still use Whisper's time.

`rivulet_asr_second_pass_limit`, `rivulet_asr_second_passes_in_flight` and
`rivulet_asr_second_passes_refused_total` show it working.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from rivulet.asr.metrics import PASS_LIMIT, PASSES_IN_FLIGHT

T = TypeVar("T")

INITIAL_LIMIT = 4.0  # passes in flight before any final has been timed
MIN_LIMIT = 2.0  # a stream's speculation dropped when speech resumed may still run beside its final
DECREASE = 0.7  # a late final multiplies the limit by this


class PassAdmission:
    """The second passes of one ASR service: started, counted until they end, limited adaptively."""

    def __init__(self, ceiling: int, target_s: float, timeout_s: float) -> None:
        self.ceiling = ceiling  # 0: no limit (every pass is sent)
        self.target_s = target_s  # a final that waited longer than this for its pass was late
        self.cut_every_s = timeout_s
        self.floor = min(MIN_LIMIT, float(ceiling))
        self.limit = min(INITIAL_LIMIT, float(ceiling)) if ceiling else float("inf")
        self._tasks: set[asyncio.Task] = set()
        self._last_cut = -float("inf")
        self._show()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def has_room(self) -> bool:
        return not self.ceiling or self.in_flight < int(self.limit)

    def busy(self, passes: int) -> bool:
        """At least `passes` passes are in flight: a new one would wait for Whisper, and one wasted now
        delays others'."""
        return self.in_flight >= passes

    def start(self, pass_: Coroutine[Any, Any, T], *, force: bool = False) -> asyncio.Task[T] | None:
        """`pass_` in a task of its own, or None (and `pass_` closed unrun) when the limit is reached.
        `force`: always started (offline Recognize: no streaming final to fall back on in time), still
        counted. The task must not be cancelled: whoever stops waiting for it just drops it."""
        if not force and not self.has_room:
            pass_.close()
            return None
        task = asyncio.get_running_loop().create_task(pass_, name="asr-second-pass")
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        self._show()
        return task

    def judge(self, waited_s: float | None, now: float | None = None) -> None:
        """A final waited `waited_s` after its endpoint for its pass (None: the pass failed or ran past
        the timeout): adapt the limit."""
        if not self.ceiling:
            return
        now = time.monotonic() if now is None else now
        if waited_s is None or waited_s > self.target_s:
            if now - self._last_cut >= self.cut_every_s:
                self.limit = max(self.floor, self.limit * DECREASE)
                self._last_cut = now
        else:
            self.limit = min(float(self.ceiling), self.limit + 1.0 / self.limit)
        self._show()

    def _ended(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a dropped pass's failure is not an "unretrieved" error
        self._show()

    def _show(self) -> None:
        PASSES_IN_FLIGHT.set(self.in_flight)
        PASS_LIMIT.set(self.limit if self.ceiling else -1)
