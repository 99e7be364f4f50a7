"""The pool serves requests in arrival order and answers DatabaseUnavailable when no connection frees up in time."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from app.db import database as database_module
from app.db.database import Database
from app.errors import DatabaseUnavailable


async def test_connections_are_granted_in_the_order_they_were_asked_for(database_url: str) -> None:
    """asyncpg's own pool hands a freed connection to whoever asks next, and a waiter that loses that race goes to
    the back of the line: under load some requests wait many times longer than the rest."""
    database = await Database.open(database_url, max_size=2)
    tickets = itertools.count()
    granted: list[int] = []

    async def client() -> None:
        for _ in range(20):
            ticket = next(tickets)
            async with database.connection() as connection:
                granted.append(ticket)
                await connection.fetchval("SELECT 1")

    try:
        async with database.connection(), database.connection():
            pass  # both connections opened first: connecting takes varying time and is not what is measured
        await asyncio.gather(*(client() for _ in range(6)))
    finally:
        await database.close()
    assert len(granted) == 120
    assert granted == sorted(granted)


async def test_a_request_that_never_gets_a_connection_is_told_the_database_is_unavailable(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "ACQUIRE_TIMEOUT", 0.2)
    database = await Database.open(database_url, max_size=1)
    try:
        async with database.connection():
            with pytest.raises(DatabaseUnavailable):
                async with database.connection():
                    pass
        # the turn that timed out was given back: the next request gets the connection at once
        async with database.connection() as connection:
            assert await connection.fetchval("SELECT 1") == 1
        assert not database.turns.locked()
    finally:
        await database.close()
