"""Retention against real Postgres: only expired rows go, in bounded batches; webhook events stay; the hourly loop
deletes everything expired in one pass and outlives Postgres being away."""

from __future__ import annotations

import datetime as dt

from app.db.database import Database
from app.incoming.retention import Retention, delete_expired
from app.incoming.store import store_messages, store_receipts
from app.times import utcnow
from app.whatsapp import backend as events

CHAT = "6281111111111@s.whatsapp.net"


async def seed(database: Database, old: int, new: int, *, days_old: int = 40) -> None:
    """`old` messages and receipts received `days_old` days ago, `new` ones just now."""
    items = [(events.MESSAGE, {"message_id": f"old-{n}", "chat": CHAT, "text": "x"}) for n in range(old)]
    items += [(events.MESSAGE, {"message_id": f"new-{n}", "chat": CHAT, "text": "x"}) for n in range(new)]
    receipts = [{"chat": CHAT, "message_ids": [f"old-{n}" for n in range(old)], "status": "read"}]
    async with database.transaction() as connection:
        await store_messages(connection, items)
        await store_receipts(connection, receipts)
        await connection.execute(
            "UPDATE incoming_messages SET received_at = now() - make_interval(days => $1) "
            "WHERE message_id LIKE 'old-%'",
            days_old,
        )
        await connection.execute(
            "UPDATE message_receipts SET received_at = now() - make_interval(days => $1)", days_old
        )


async def remaining(database: Database) -> tuple[list[str], int, int]:
    async with database.connection() as connection:
        ids = [
            row["message_id"] for row in await connection.fetch("SELECT message_id FROM incoming_messages ORDER BY id")
        ]
        receipts = await connection.fetchval("SELECT count(*) FROM message_receipts")
        outbox = await connection.fetchval("SELECT count(*) FROM outbox_events")
    return ids, receipts, outbox


async def test_delete_expired_takes_only_old_rows_at_most_limit_at_a_time(database: Database) -> None:
    await seed(database, old=5, new=3)
    cutoff = utcnow() - dt.timedelta(days=30)
    async with database.connection() as connection:
        batches = [await delete_expired(connection, cutoff, 2) for _ in range(4)]
    assert batches == [2, 2, 1, 0]
    ids, receipts, outbox = await remaining(database)
    assert ids == ["new-0", "new-1", "new-2"]
    assert receipts == 5  # delete_expired is about incoming events only
    assert outbox == 8 + 5  # the events (and their deliveries) are the dispatcher's to prune, not retention's


async def test_a_pass_deletes_everything_expired_in_batches(database: Database) -> None:
    await seed(database, old=7, new=2)
    retention = Retention(database, days=30, batch=3)
    assert await retention.run_once() == 7 + 7  # messages in batches of 3, 3, 1; receipts likewise
    ids, receipts, _ = await remaining(database)
    assert ids == ["new-0", "new-1"] and receipts == 0


async def test_rows_younger_than_the_retention_stay(database: Database) -> None:
    await seed(database, old=3, new=1, days_old=6)
    assert await Retention(database, days=7).run_once() == 0
    assert await Retention(database, days=5).run_once() == 3 + 3


async def test_the_loop_runs_a_pass_at_start_and_stops(database: Database) -> None:
    await seed(database, old=4, new=1)
    retention = Retention(database, days=30, interval=3600, batch=2)
    retention.start()
    try:
        await retention.passed(1)
    finally:
        await retention.stop()
    assert (retention.passes, retention.deleted, retention.last_error) == (1, 8, None)
    assert (await remaining(database))[0] == ["new-0"]


async def test_the_loop_survives_postgres_being_away() -> None:
    # Nothing listens on port 1: every connection is refused, as during a Postgres restart.
    database = await Database.open("postgresql://postgres@127.0.0.1:1/none?sslmode=disable")
    retention = Retention(database, days=30, interval=0.01)
    retention.start()
    try:
        await retention.passed(3)
        assert (
            retention._task is not None and retention._task.status().state == "running" and not retention._task.restarts
        )
        assert retention.last_error is not None and "unavailable" in retention.last_error
    finally:
        await retention.stop()
        await database.close()
    assert retention.deleted == 0
