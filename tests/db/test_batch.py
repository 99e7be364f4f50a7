"""The batched writer: in order, in batches, and a bad item costs only itself. (Held through a Postgres restart:
tests/incoming/test_store.py, with the real message store on top.)"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from app.db.batch import BatchWriter
from app.db.database import Database


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url)
    async with database.connection() as connection:
        await connection.execute("CREATE TABLE batch_items (n int PRIMARY KEY CHECK (n >= 0))")
    yield database
    await database.close()


async def stored(database: Database) -> list[int]:
    async with database.connection() as connection:
        return [row["n"] for row in await connection.fetch("SELECT n FROM batch_items ORDER BY n")]


def writer_of(database: Database, written: list[list[int]], max_batch: int = 4) -> BatchWriter[int]:
    async def write(batch: list[int]) -> None:
        async with database.transaction() as connection:
            await connection.executemany("INSERT INTO batch_items VALUES ($1)", [(n,) for n in batch])

    return BatchWriter("test-writer", write, max_batch=max_batch, on_written=lambda batch: written.append(batch))


async def test_items_are_written_in_order_in_batches(database: Database) -> None:
    written: list[list[int]] = []
    writer = writer_of(database, written)
    for number in range(10):
        writer.add(number)
    assert writer.backlog == 10 and not writer.written.is_set()
    writer.start()
    try:
        await asyncio.wait_for(writer.written.wait(), 10)
    finally:
        await writer.close(1.0)
    assert written == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert await stored(database) == list(range(10)) and writer.count == 10 and writer.backlog == 0


async def test_a_bad_item_is_dropped_alone_after_the_batch_failed_its_tries(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    written: list[list[int]] = []
    writer = writer_of(database, written)
    for number in (1, 2, -3, 4):  # -3 breaks the CHECK: the whole batch fails, every time
        writer.add(number)
    writer.start()
    try:
        await asyncio.wait_for(writer.written.wait(), 10)
    finally:
        await writer.close(1.0)
    assert await stored(database) == [1, 2, 4]
    assert written == [[1, 2, -3, 4]]  # finished once, with the bad item given up on
    dropped = [record.message for record in caplog.records if record.levelno == logging.ERROR]
    assert any("could not write -3; dropped" in message for message in dropped)


async def test_close_gives_up_after_its_budget_while_postgres_is_away() -> None:
    database = await Database.open("postgresql://postgres@127.0.0.1:1/none?sslmode=disable")
    written: list[list[int]] = []
    writer = writer_of(database, written)
    writer.start()
    try:
        writer.add(1)
        await writer.close(0.3)
    finally:
        await database.close()
    assert written == [] and writer.backlog == 1
    assert writer.last_error is not None and writer.last_error.startswith("Postgres is unavailable")
