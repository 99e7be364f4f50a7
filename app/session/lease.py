"""The single-session lease: a Postgres advisory lock held on a dedicated connection.

Only the process holding it runs a worker. Postgres releases the lock the moment the holder's connection ends (exit,
kill -9, network loss), so a standby process polling for it takes over within a poll interval. The holder checks its
connection continuously; if it is lost, `lost` is set and the supervisor kills its worker at once, because another
process may already be taking over.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from app.db.database import CONNECTION_ERRORS, describe

log = logging.getLogger(__name__)

LEASE_KEY = 0x77616761_73657373  # "wagasess": the one advisory-lock key for the WhatsApp session
POLL_INTERVAL = 1.0  # seconds between attempts while in standby
CHECK_INTERVAL = 1.0  # seconds between checks of the holder's connection
CHECK_TIMEOUT = 3.0


class Lease:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.connection: asyncpg.Connection | None = None
        self.held = False
        self.lost = asyncio.Event()
        self.unreachable: str | None = None  # why the last attempt could not reach Postgres, if it could not

    async def try_acquire(self) -> bool:
        """One attempt; True if this process now holds the lease."""
        try:
            if self.connection is None or self.connection.is_closed():
                self.connection = await asyncpg.connect(self.database_url, timeout=CHECK_TIMEOUT)
            held: bool = await self.connection.fetchval("SELECT pg_try_advisory_lock($1)", LEASE_KEY)
        except CONNECTION_ERRORS as error:
            self.unreachable = describe(error)
            log.warning("cannot reach Postgres for the session lease: %s", self.unreachable)
            await self._drop_connection()
            return False
        self.unreachable = None
        if held:
            self.lost.clear()
        self.held = held
        return held

    async def watch(self) -> None:
        """Return when the lease is lost (its connection failed); sets `lost`."""
        while True:
            try:
                assert self.connection is not None
                await self.connection.fetchval("SELECT 1", timeout=CHECK_TIMEOUT)
            except (*CONNECTION_ERRORS, AssertionError) as error:  # type: ignore[misc]
                log.error("lost the session lease's connection: %s", describe(error))
                await self._drop_connection()
                self.lost.set()
                return
            await asyncio.sleep(CHECK_INTERVAL)

    async def release(self) -> None:
        """Give the lease up (closing the connection releases the lock)."""
        await self._drop_connection()

    async def _drop_connection(self) -> None:
        self.held = False
        connection, self.connection = self.connection, None
        if connection is not None and not connection.is_closed():
            try:
                await asyncio.wait_for(connection.close(), 2.0)
            except (*CONNECTION_ERRORS, TimeoutError):  # type: ignore[misc]
                connection.terminate()
