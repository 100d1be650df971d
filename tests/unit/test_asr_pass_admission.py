"""The second-pass admission (rivulet.asr.pass_admission): how many Whisper passes are in flight,
which are refused, and how the limit follows the passes' answers."""

from __future__ import annotations

import asyncio
import gc

import pytest

from rivulet.asr.pass_admission import DECREASE, INITIAL_LIMIT, MIN_LIMIT, PassAdmission


async def held(release: asyncio.Event, ran: list[str], name: str) -> str:
    ran.append(name)
    await release.wait()
    return name


def test_a_pass_over_the_limit_is_refused_unrun_until_one_ends():
    async def scenario():
        admission = PassAdmission(ceiling=2, target_s=30, timeout_s=60)
        admission.limit = 2.0
        release, ran = asyncio.Event(), []
        first = admission.start(held(release, ran, "a"))
        second = admission.start(held(release, ran, "b"))
        refused = held(release, ran, "c")
        assert admission.start(refused) is None
        await asyncio.sleep(0)
        assert ran == ["a", "b"] and admission.in_flight == 2 and not admission.has_room
        assert refused.cr_frame is None  # closed, never to run (no "never awaited" warning)
        release.set()
        assert await first == "a" and await second == "b"
        await asyncio.sleep(0)
        assert admission.in_flight == 0 and admission.has_room
        assert await admission.start(held(release, ran, "d")) == "d"

    asyncio.run(scenario())


def test_a_pass_nobody_awaits_counts_until_it_ends_and_its_failure_is_retrieved():
    """A dropped speculation still uses Whisper until its request ends: it keeps its place."""

    async def failing(release: asyncio.Event) -> None:
        await release.wait()
        raise RuntimeError("deadline exceeded")

    async def scenario():
        loop = asyncio.get_running_loop()
        unretrieved = []
        loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
        admission = PassAdmission(ceiling=1, target_s=30, timeout_s=60)
        release = asyncio.Event()
        assert admission.start(failing(release)) is not None  # dropped: nobody keeps the task
        assert admission.start(held(release, [], "x")) is None
        release.set()
        for _ in range(3):
            await asyncio.sleep(0)
        assert admission.in_flight == 0
        gc.collect()
        await asyncio.sleep(0)
        return unretrieved

    assert asyncio.run(scenario()) == []


def test_offline_passes_are_never_refused_but_count():
    async def scenario():
        admission = PassAdmission(ceiling=1, target_s=30, timeout_s=60)
        release = asyncio.Event()
        tasks = [admission.start(held(release, [], str(i)), force=True) for i in range(3)]
        assert all(t is not None for t in tasks) and admission.in_flight == 3
        assert admission.start(held(release, [], "stream")) is None
        release.set()
        return await asyncio.gather(*tasks)

    assert asyncio.run(scenario()) == ["0", "1", "2"]


def test_the_limit_grows_with_finals_in_time_and_is_cut_once_per_burst_of_late_ones():
    admission = PassAdmission(ceiling=8, target_s=0.3, timeout_s=2.0)
    assert admission.limit == INITIAL_LIMIT
    for _ in range(4):
        admission.judge(0.1, now=0.0)  # +1/limit each: about one per limit's worth
    assert 4.9 < admission.limit < 5.0
    admission.judge(0.4, now=10.0)  # waited past the target
    cut = admission.limit
    assert cut == pytest.approx(4.9 * DECREASE, abs=0.1)
    admission.judge(None, now=11.0)  # failed or past the timeout, in the same burst: no second cut
    assert admission.limit == cut
    for t in range(12, 40):  # sustained lateness: one cut per timeout, down to the floor
        admission.judge(None, now=float(t))
    assert admission.limit == MIN_LIMIT
    for _ in range(500):
        admission.judge(0.0, now=50.0)
    assert admission.limit == 8.0  # never above the ceiling


def test_a_stream_keeps_room_for_its_dropped_speculation_and_its_final():
    """At the floor, one stream's speculation that speech interrupted (still running: never
    cancelled) does not take the place of that stream's final."""

    async def scenario():
        admission = PassAdmission(ceiling=8, target_s=0.3, timeout_s=2.0)
        for t in range(10):
            admission.judge(None, now=10.0 * t)
        release = asyncio.Event()
        dropped = admission.start(held(release, [], "speculation"))
        final = admission.start(held(release, [], "final"))
        release.set()
        return admission.limit, dropped is not None, await final

    assert asyncio.run(scenario()) == (MIN_LIMIT, True, "final")


def test_a_ceiling_under_the_floor_wins():
    assert PassAdmission(ceiling=1, target_s=0.3, timeout_s=2.0).limit == 1.0


def test_no_ceiling_means_no_limit():
    async def scenario():
        admission = PassAdmission(ceiling=0, target_s=1.0, timeout_s=2.0)
        release = asyncio.Event()
        tasks = [admission.start(held(release, [], str(i))) for i in range(100)]
        admission.judge(None, now=0.0)
        assert all(t is not None for t in tasks) and admission.has_room
        release.set()
        await asyncio.gather(*tasks)

    asyncio.run(scenario())


def test_busy_while_that_many_passes_are_in_flight():
    async def scenario():
        admission = PassAdmission(ceiling=8, target_s=0.3, timeout_s=2.0)
        release, busy = asyncio.Event(), []
        tasks = []
        for i in range(3):
            busy.append((admission.busy(2), admission.busy(0)))
            tasks.append(admission.start(held(release, [], str(i))))
        release.set()
        await asyncio.gather(*tasks)
        await asyncio.sleep(0)
        return busy, admission.busy(2)

    assert asyncio.run(scenario()) == ([(False, True), (False, True), (True, True)], False)
