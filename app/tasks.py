"""Long-lived tasks, each watched: a death is logged, reported to Sentry and shown in /api/status, and then, as the
task's owner decided, the task is restarted after a backoff or the owner is told and stops the service it belongs
to. Also `wait_any`, the one way to wait for the first of several things."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from app.backoff import Jitter, backoff
from app.observability import report

log = logging.getLogger(__name__)

RESTART_BASE, RESTART_CAP = 1.0, 60.0  # a task that keeps dying is restarted ever more slowly, never in a tight loop
STABLE_AFTER = 60.0  # a task that ran this long before dying starts its backoff from the beginning again

T = TypeVar("T", bound="asyncio.Future[Any]")


class TaskState(enum.StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"  # died; a new run starts after a backoff
    DIED = "died"  # died for good: its owner stopped the service it belongs to


@dataclasses.dataclass(frozen=True)
class TaskStatus:
    """One long-lived task as /api/status shows it."""

    name: str
    state: TaskState
    last_error: str | None  # why it died last, if it ever did
    restarts: int


def watch(task: T, name: str, on_death: Callable[[BaseException], None] | None = None) -> T:
    """Name `task`; if it ends by an error, log it critically, report it and call `on_death` with the error."""
    if isinstance(task, asyncio.Task):
        task.set_name(name)

    def ended(finished: asyncio.Future[Any]) -> None:
        if finished.cancelled() or finished.exception() is None:
            return
        error = finished.exception()
        assert error is not None
        log.critical("%s died: %r", name, error, exc_info=error)
        report(error)
        if on_death is not None:
            on_death(error)

    task.add_done_callback(ended)
    return task


# The long-lived tasks of every event loop in this process; /api/status lists those of its own loop.
_registry: weakref.WeakSet[LongTask] = weakref.WeakSet()


class LongTask:
    """A named task that runs for the life of a service. `restart=True`: when it dies, it runs again after a backoff
    (the owner keeps its state in memory, so a new run resumes); `restart=False`: `on_death` is called and the owner
    stops the service. A task that returns normally is simply over."""

    def __init__(
        self,
        name: str,
        run: Callable[[], Coroutine[Any, Any, None]],
        *,
        restart: bool,
        on_death: Callable[[BaseException], None] | None = None,
        restart_base: float = RESTART_BASE,
    ) -> None:
        self.name = name
        self.run = run
        self.restart = restart
        self.on_death = on_death
        self.restart_base = restart_base
        self.state = TaskState.RUNNING
        self.last_error: str | None = None
        self.restarts = 0
        self.task: asyncio.Task[None] | None = None
        self._deaths = 0  # in a row, for the backoff
        self._started_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> LongTask:
        self._loop = asyncio.get_running_loop()
        _registry.add(self)
        self._launch()
        return self

    def _launch(self) -> None:
        self._timer = None
        self.state = TaskState.RUNNING
        self._started_at = time.monotonic()
        self.task = watch(asyncio.ensure_future(self.run()), self.name, self._died)

    def _died(self, error: BaseException) -> None:
        self.last_error = f"{type(error).__name__}: {error}"
        if not self.restart:
            self.state = TaskState.DIED
            if self.on_death is not None:
                self.on_death(error)
            return
        if time.monotonic() - self._started_at >= STABLE_AFTER:
            self._deaths = 0
        delay = backoff(self._deaths, base=self.restart_base, cap=RESTART_CAP, jitter=Jitter.NONE)
        self._deaths += 1
        self.restarts += 1
        self.state = TaskState.RESTARTING
        log.warning("restarting %s in %.1f s (restart %d)", self.name, delay, self.restarts)
        assert self._loop is not None
        self._timer = self._loop.call_later(delay, self._launch)

    async def stop(self) -> None:
        """Cancel the task (or its pending restart) and wait for it to end; it leaves the status."""
        _registry.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task = self.task
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                # Ours ended; if the caller itself is being cancelled meanwhile, that must go on up.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    def status(self) -> TaskStatus:
        return TaskStatus(self.name, self.state, self.last_error, self.restarts)


def task_statuses() -> list[TaskStatus]:
    """Every long-lived task of the running event loop, by name."""
    loop = asyncio.get_running_loop()
    return sorted((task.status() for task in _registry if task._loop is loop), key=lambda status: status.name)


async def wait_any(*waitables: Awaitable[Any], timeout: float | None = None) -> bool:
    """Wait until the first of `waitables` is done, or `timeout` seconds; True if one was done in time.

    Coroutines are run as tasks of this call and cancelled when it returns; a future or task the caller passes stays
    the caller's and is left running."""
    owned: list[asyncio.Future[Any]] = []
    futures: list[asyncio.Future[Any]] = []
    for waitable in waitables:
        if isinstance(waitable, asyncio.Future):
            futures.append(waitable)
        else:
            owned.append(asyncio.ensure_future(waitable))
    try:
        done, _ = await asyncio.wait([*futures, *owned], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in owned:
            future.cancel()
        results = await asyncio.gather(*owned, return_exceptions=True)
    for future, result in zip(owned, results, strict=True):
        if future in done and isinstance(result, Exception):
            raise result  # what the caller gave as a coroutine failed: its error is the caller's to see
    return bool(done)
