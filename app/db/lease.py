"""An advisory-lock lease: a Postgres advisory lock held on a connection of its own, and the one watch that notices
when that connection is lost.

Postgres releases the lock the moment the holder's connection ends (exit, kill -9, network loss), so a standby
process polling for it takes over within a poll interval. The holder must therefore stop acting as the holder the
moment its connection is gone: `watch` checks the connection every `check_interval` (a check that fails or does not
answer within `check_timeout` means lost; a connection the driver sees closing is checked at once) and sets `lost`.
The session's lease and the webhook dispatcher's lock are both one of these.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from app.db.database import CONNECTION_ERRORS, describe
from app.tasks import wait_any

log = logging.getLogger(__name__)

TRY_LOCK = "SELECT pg_try_advisory_lock($1)"
# Errors that mean the lease's connection is gone; asyncpg's InternalClientError is its protocol state error when the
# server goes away in the middle of an operation (seen on a Postgres restart).
LOST: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.InternalClientError)


class Lease:
    def __init__(
        self,
        database_url: str,
        key: int,
        *,
        name: str,
        poll_interval: float = 1.0,
        check_interval: float = 1.0,
        check_timeout: float = 3.0,
    ) -> None:
        self.database_url = database_url
        self.key = key
        self.name = name  # in log lines: "the session lease", "the webhook lease"
        self.poll_interval = poll_interval  # how often a standby holder tries again (the caller's rhythm)
        self.check_interval = check_interval
        self.check_timeout = check_timeout
        self.connection: asyncpg.Connection | None = None
        self.held = False
        self.lost = asyncio.Event()
        self.unreachable: str | None = None  # why the last attempt could not reach Postgres, if it could not
        self._using = asyncio.Lock()  # one operation at a time on the connection: the holder's or the watch's
        self._closing = asyncio.Event()  # the driver saw the connection end: check now instead of at the next tick

    async def try_acquire(self) -> bool:
        """One attempt; True if this process now holds the lease. Postgres being unreachable is not an error here:
        the attempt fails and `unreachable` says why."""
        try:
            if self.connection is None or self.connection.is_closed():
                self.connection = await asyncpg.connect(self.database_url, timeout=self.check_timeout)
                self._closing.clear()
                self.connection.add_termination_listener(self._on_termination)
            async with self._using:
                held: bool = await self.connection.fetchval(TRY_LOCK, self.key, timeout=self.check_timeout)
        except LOST as error:
            self.unreachable = describe(error)
            log.warning("cannot reach Postgres for the %s lease: %s", self.name, self.unreachable)
            await self._drop_connection()
            return False
        self.unreachable = None
        if held:
            self.lost.clear()
        self.held = held
        return held

    @asynccontextmanager
    async def use(self) -> AsyncIterator[asyncpg.Connection]:
        """The lease's connection, for work that must run on it (LISTEN, claims); the watch waits meanwhile."""
        async with self._using:
            if self.connection is None or self.connection.is_closed():
                raise ConnectionError(f"the {self.name} lease has no connection")
            yield self.connection

    async def watch(self) -> None:
        """Return when the lease is lost (its connection ended or stopped answering); sets `lost`."""
        while True:
            try:
                # The lock is bounded too: an operation of the holder that hangs on a dead connection is a loss.
                async with asyncio.timeout(3 * self.check_timeout), self.use() as connection:
                    await connection.fetchval("SELECT 1", timeout=self.check_timeout)
            except LOST as error:
                log.error("lost the %s lease's connection: %s", self.name, describe(error))
                await self._drop_connection()
                self.lost.set()
                return
            await wait_any(self._closing.wait(), timeout=self.check_interval)

    async def release(self) -> None:
        """Give the lease up (closing the connection releases the lock)."""
        await self._drop_connection()

    def _on_termination(self, _: Any) -> None:
        self._closing.set()

    async def _drop_connection(self) -> None:
        self.held = False
        connection, self.connection = self.connection, None
        if connection is not None and not connection.is_closed():
            try:
                await asyncio.wait_for(connection.close(), 2.0)
            except LOST:  # TimeoutError included
                connection.terminate()
