"""Long-lived tasks: a death is logged, reported and shown, then restarted or handed to the owner; and wait_any."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from app.tasks import LongTask, TaskState, TaskStatus, task_statuses, wait_any, watch


async def test_a_task_that_dies_is_restarted_and_shows_it() -> None:
    runs: list[int] = []
    second_run = asyncio.Event()
    release = asyncio.Event()

    async def run() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("a bug in the first run")
        second_run.set()
        await release.wait()

    task = LongTask("flaky", run, restart=True, restart_base=0.01).start()
    try:
        await asyncio.wait_for(second_run.wait(), 5)
        assert task_statuses() == [TaskStatus("flaky", TaskState.RUNNING, "RuntimeError: a bug in the first run", 1)]
    finally:
        await task.stop()
    assert runs == [0, 1]
    assert task_statuses() == []  # a stopped task leaves the status


async def test_a_task_that_is_not_restarted_tells_its_owner(caplog: pytest.LogCaptureFixture) -> None:
    deaths: list[BaseException] = []
    told = asyncio.Event()

    def on_death(error: BaseException) -> None:
        deaths.append(error)
        told.set()

    async def run() -> None:
        raise ValueError("broken")

    task = LongTask("fragile", run, restart=False, on_death=on_death).start()
    try:
        await asyncio.wait_for(told.wait(), 5)
        assert task.status() == TaskStatus("fragile", TaskState.DIED, "ValueError: broken", 0)
        assert task_statuses() == [task.status()]  # a dead task stays visible until its owner stops it
    finally:
        await task.stop()
    assert [str(error) for error in deaths] == ["broken"]
    assert any(record.levelno == logging.CRITICAL and "fragile died" in record.message for record in caplog.records)


async def test_restarts_back_off_and_stop_cancels_a_pending_restart() -> None:
    starts: list[float] = []
    fifth = asyncio.Event()

    async def run() -> None:
        starts.append(asyncio.get_running_loop().time())
        if len(starts) == 5:
            fifth.set()
        raise RuntimeError("always")

    task = LongTask("crash-loop", run, restart=True, restart_base=0.02).start()
    try:
        await asyncio.wait_for(fifth.wait(), 5)
        await asyncio.sleep(0)  # its death is seen on the next loop turn
        assert task.restarts == 5
    finally:
        await task.stop()
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps))  # never a tight loop
    count = len(starts)
    await asyncio.sleep(0.4)  # longer than the next backoff: a stopped task must not come back
    assert len(starts) == count and task.state is TaskState.RESTARTING


async def test_watch_reports_a_death_and_ignores_a_cancel() -> None:
    deaths: list[str] = []

    async def fail() -> None:
        raise KeyError("gone")

    failed = watch(asyncio.ensure_future(fail()), "side", lambda error: deaths.append(repr(error)))
    await asyncio.gather(failed, return_exceptions=True)
    cancelled = watch(asyncio.ensure_future(asyncio.Event().wait()), "quiet", lambda error: deaths.append("no"))
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    await asyncio.sleep(0)  # done callbacks run on the next loop turn
    assert deaths == ["KeyError('gone')"] and failed.get_name() == "side"


async def test_wait_any_returns_with_the_first_and_cancels_only_its_own() -> None:
    first, never = asyncio.Event(), asyncio.Event()
    callers = asyncio.ensure_future(never.wait())
    asyncio.get_running_loop().call_soon(first.set)
    assert await wait_any(first.wait(), never.wait(), callers, timeout=5) is True
    await asyncio.sleep(0)
    assert not callers.done()  # the caller's task goes on
    assert await wait_any(never.wait(), callers, timeout=0.01) is False
    callers.cancel()
    await asyncio.gather(callers, return_exceptions=True)


async def test_wait_any_raises_what_its_own_coroutine_raised() -> None:
    async def fail() -> None:
        raise OSError("no")

    with pytest.raises(OSError, match="no"):
        await wait_any(fail(), asyncio.Event().wait(), timeout=5)
