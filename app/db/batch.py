"""One batched writer that survives a Postgres outage: items go in, and one task stores them in order, in batches.

While Postgres is unavailable the items wait in memory and the batch is tried again, ever more slowly up to
RETRY_MAX; nothing is dropped for an outage. A batch that fails TRIES times for any other reason (a driver hiccup as
the server goes away, or one bad item) is stored item by item, so that a bad item costs only itself: it is logged whole
and reported, then dropped. The incoming message store and the webhook outcomes both write through one of these.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from app.backoff import Jitter, backoff
from app.db.database import UNAVAILABLE, describe
from app.observability import report
from app.tasks import LongTask

log = logging.getLogger(__name__)

RETRY_MIN, RETRY_MAX = 0.1, 5.0  # seconds between tries while Postgres is away
TRIES = 3  # a batch failing this often for a reason other than an outage is stored item by item

T = TypeVar("T")


def _nothing(_: list[T]) -> None:
    pass


class BatchWriter(Generic[T]):
    """`write(batch)` stores a batch (one transaction); `on_written(batch)` runs once it is stored (or, item by item,
    given up on), under `guard` if there is one, like the write itself."""

    def __init__(
        self,
        name: str,
        write: Callable[[list[T]], Awaitable[None]],
        *,
        max_batch: int,
        on_written: Callable[[list[T]], None] = _nothing,
        on_outage: Callable[[str], None] | None = None,
        guard: asyncio.Lock | None = None,
        tries: int = TRIES,
    ) -> None:
        self.name = name  # the task's name in logs and /api/status
        self.write = write
        self.max_batch = max_batch
        self.on_written = on_written
        self.on_outage = on_outage or self._log_outage
        self.guard = guard
        self.tries = tries
        self.count = 0  # items written by this process
        self.last_error: str | None = None  # why Postgres cannot take the items now, while it cannot
        self.written = asyncio.Event()  # set whenever nothing is waiting to be written
        self.written.set()
        self._items: collections.deque[T] = collections.deque()
        self._arrived = asyncio.Event()
        self._task: LongTask | None = None

    @property
    def backlog(self) -> int:
        return len(self._items)

    def add(self, item: T) -> None:
        self._items.append(item)
        self.written.clear()
        self._arrived.set()

    def start(self) -> None:
        # Restarted if it dies: the items wait here, in memory, for the next run.
        self._task = LongTask(self.name, self.run, restart=True).start()

    async def close(self, budget: float) -> None:
        """Write what is still waiting, within `budget` seconds, then stop."""
        try:
            await asyncio.wait_for(self.written.wait(), budget)
        except TimeoutError:
            log.error("%s: %d items could not be written before shutdown", self.name, len(self._items))
        await self.stop()

    async def stop(self) -> None:
        """Stop at once; what is still waiting stays unwritten."""
        if self._task is not None:
            await self._task.stop()

    async def run(self) -> None:
        outages, tries = 0, 0
        while True:
            if not self._items:
                self.written.set()
                self._arrived.clear()
                await self._arrived.wait()
                continue
            batch = list(itertools.islice(self._items, self.max_batch))
            error = await self._attempt(batch)
            if error is None:
                outages, tries = 0, 0
            elif isinstance(error, UNAVAILABLE):
                self._outage(error)
                await asyncio.sleep(backoff(outages, base=RETRY_MIN, cap=RETRY_MAX, jitter=Jitter.NONE))
                outages += 1
            else:
                tries += 1
                if tries < self.tries:
                    log.warning(
                        "%s: writing %d items failed (%s); trying again", self.name, len(batch), describe(error)
                    )
                    await asyncio.sleep(backoff(tries - 1, base=RETRY_MIN, cap=RETRY_MAX, jitter=Jitter.NONE))
                    continue
                log.error("%s: writing %d items failed %d times; one by one now", self.name, len(batch), tries)
                report(error)
                await self._write_singly(batch)
                outages, tries = 0, 0

    def _guarded(self) -> contextlib.AbstractAsyncContextManager[object]:
        return self.guard if self.guard is not None else contextlib.nullcontext()

    async def _attempt(self, batch: list[T]) -> Exception | None:
        """Write `batch` and finish it; or return why it could not be written (the guard is free again by then)."""
        async with self._guarded():
            try:
                await self.write(batch)
            except Exception as error:  # every failure is sorted by the caller: outage, retry or item by item
                return error
            self._finish(batch)
        return None

    async def _write_singly(self, batch: list[T]) -> None:
        async with self._guarded():
            for item in batch:
                outages = 0
                while True:
                    try:
                        await self.write([item])
                        break
                    except UNAVAILABLE as error:
                        self._outage(error)
                        await asyncio.sleep(backoff(outages, base=RETRY_MIN, cap=RETRY_MAX, jitter=Jitter.NONE))
                        outages += 1
                    except Exception as error:
                        # Dropping is the last resort: the item is logged whole so that nothing is lost silently.
                        log.error("%s: could not write %r; dropped: %r", self.name, item, error)
                        report(error)
                        break
            self._finish(batch)

    def _finish(self, batch: list[T]) -> None:
        for _ in batch:
            self._items.popleft()
        self.count += len(batch)
        self.last_error = None
        self.on_written(batch)

    def _outage(self, error: BaseException) -> None:
        message = f"Postgres is unavailable: {describe(error)}"
        if message != self.last_error:  # said once per outage (and again if what is wrong changes)
            self.on_outage(message)
        self.last_error = message

    def _log_outage(self, message: str) -> None:
        log.warning("%s: %s; holding %d items in memory", self.name, message, len(self._items))
