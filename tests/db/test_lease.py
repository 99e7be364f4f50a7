"""The advisory-lock lease: one holder at a time, a standby takes over when the lock frees, and the holder's watch
notices a lost connection."""

from __future__ import annotations

import asyncio

import asyncpg

from app.db.lease import Lease

KEY = 0x7465_7374_6C65_6173  # "testleas": no other lease of the app uses it


def lease(url: str) -> Lease:
    return Lease(url, KEY, name="test", poll_interval=0.05, check_interval=0.05, check_timeout=1.0)


async def test_one_holder_at_a_time_and_the_standby_takes_over_on_release(database_url: str) -> None:
    holder, standby = lease(database_url), lease(database_url)
    try:
        assert await holder.try_acquire() and holder.held
        assert not await standby.try_acquire() and not standby.held and standby.unreachable is None
        await holder.release()
        assert not holder.held
        assert await standby.try_acquire()
    finally:
        await holder.release()
        await standby.release()


async def test_the_watch_notices_a_killed_connection_and_the_lock_frees(database_url: str) -> None:
    holder, standby = lease(database_url), lease(database_url)
    admin = await asyncpg.connect(database_url)
    try:
        assert await holder.try_acquire()
        watching = asyncio.ensure_future(holder.watch())
        async with holder.use() as connection:
            backend = connection.get_server_pid()
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", backend)
        await asyncio.wait_for(watching, 5)  # returns once the loss is seen
        assert holder.lost.is_set() and not holder.held and holder.connection is None
        assert await standby.try_acquire()  # Postgres freed the lock with the connection
    finally:
        await admin.close()
        await holder.release()
        await standby.release()


async def test_the_watch_waits_for_an_operation_on_the_connection(database_url: str) -> None:
    holder = lease(database_url)
    try:
        assert await holder.try_acquire()
        watching = asyncio.ensure_future(holder.watch())
        async with holder.use() as connection:  # a claim that takes longer than a check interval is no loss
            await connection.execute("SELECT pg_sleep(0.3)")
        assert not watching.done() and not holder.lost.is_set()
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    finally:
        await holder.release()


async def test_an_unreachable_server_is_a_failed_attempt_that_says_why() -> None:
    refused = lease("postgresql://postgres@127.0.0.1:1/none?sslmode=disable")
    assert not await refused.try_acquire()
    assert refused.unreachable is not None and not refused.held
