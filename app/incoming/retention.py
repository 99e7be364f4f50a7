"""Retention of incoming events: rows of `incoming_messages` and `message_receipts` older than
MESSAGE_RETENTION_DAYS, and stored media older than MEDIA_RETENTION_DAYS, are deleted in bounded batches by a small
hourly loop; then, while the stored media add up to more than MEDIA_MAX_TOTAL_BYTES, the oldest files' bytes are
removed, a batch at a time (their links answer 410 Gone). Files kept in a bucket (MEDIA_STORAGE_URL) have their
objects deleted first, a batch per request, then their rows: an outage of the bucket leaves the rows for the next pass
rather than objects that nothing names.

Nothing references these rows (webhook events and deliveries are their own rows, pruned by the dispatcher), so a
deletion never touches what is still to be delivered. Each batch is its own short statement: a large backlog (the
first run after lowering the retention) never holds one long transaction or a lock on many rows at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid

import asyncpg

from app.db.database import UNAVAILABLE, Database, describe
from app.media import store as media
from app.media.storage import POSTGRES, MediaStorage
from app.observability import report
from app.tasks import LongTask
from app.times import utcnow

log = logging.getLogger(__name__)

INTERVAL = 3600.0  # seconds between two passes
BATCH = 5000  # rows per statement

DELETE_MESSAGES = """
DELETE FROM incoming_messages WHERE id IN (
    SELECT id FROM incoming_messages WHERE received_at < $1 ORDER BY received_at LIMIT $2
)"""
DELETE_RECEIPTS = """
DELETE FROM message_receipts WHERE (chat, message_id, status) IN (
    SELECT chat, message_id, status FROM message_receipts WHERE received_at < $1 ORDER BY received_at LIMIT $2
)"""


async def delete_expired(connection: asyncpg.Connection, older_than: dt.datetime, limit: int) -> int:
    """Delete at most `limit` incoming events received before `older_than`, oldest first; return how many."""
    return _count(await connection.execute(DELETE_MESSAGES, older_than, limit))


async def delete_expired_receipts(connection: asyncpg.Connection, older_than: dt.datetime, limit: int) -> int:
    """Delete at most `limit` receipts received before `older_than`, oldest first; return how many."""
    return _count(await connection.execute(DELETE_RECEIPTS, older_than, limit))


def _count(tag: str) -> int:
    """The row count of a command tag such as 'DELETE 3'."""
    return int(tag.rsplit(" ", 1)[-1])


class Retention:
    """Every `interval` seconds, deletes expired incoming events and receipts in batches of `batch` until fewer than
    `batch` remain. Postgres being away costs one pass (logged); the next pass catches up."""

    def __init__(
        self, database: Database, days: int, *, media_days: int | None = None, media_max_total: int | None = None,
        interval: float = INTERVAL, batch: int = BATCH, storage: MediaStorage = POSTGRES,
    ) -> None:  # fmt: skip
        self.database = database
        self.retention = dt.timedelta(days=days)
        self.media_retention = dt.timedelta(days=days if media_days is None else media_days)
        self.media_max_total = media_max_total  # None: no cap
        self.interval = interval
        self.batch = batch
        self.storage = storage  # where media bytes live: the objects of deleted files are deleted there
        self.deleted = 0  # rows deleted by this process
        self.passes = 0  # passes finished, whether they deleted anything or failed
        self.last_error: str | None = None
        self._task: LongTask | None = None
        self._passed = asyncio.Condition()

    def start(self) -> None:
        self._task = LongTask("message-retention", self._run, restart=True).start()

    async def stop(self) -> None:
        if self._task is not None:
            await self._task.stop()
            self._task = None

    async def run_once(self) -> int:
        """One pass: delete everything expired, then remove media over the cap, batch by batch; return how many rows."""
        now = utcnow()
        total = 0
        for delete, older_than in (
            (delete_expired, now - self.retention),
            (delete_expired_receipts, now - self.retention),
            (self._delete_expired_media, now - self.media_retention),
        ):
            while True:
                async with self.database.connection() as connection:
                    deleted = await delete(connection, older_than, self.batch)
                total += deleted
                if deleted < self.batch:
                    break
        if self.media_max_total is not None:
            while True:
                removed = await self._remove_media_over_cap(self.media_max_total)
                total += removed
                if removed < self.batch:
                    break
        return total

    async def _delete_objects(self, victims: list[media.Victim]) -> list[uuid.UUID]:
        """Delete the objects of these files, one bulk request per batch, before their rows change (a failed request
        changes no row); the files' ids."""
        await self.storage.delete([key for _, key in victims if key is not None])
        return [media_id for media_id, _ in victims]

    async def _delete_expired_media(self, connection: asyncpg.Connection, older_than: dt.datetime, limit: int) -> int:
        victims = await media.expired(connection, older_than, limit)
        return await media.delete(connection, await self._delete_objects(victims))

    async def _remove_media_over_cap(self, cap: int) -> int:
        async with self.database.connection() as connection:
            victims = await media.over_cap(connection, cap, self.batch)
        ids = await self._delete_objects(victims)
        async with self.database.connection() as connection:
            await media.remove(connection, ids, cap)
        return len(victims)

    async def passed(self, passes: int) -> None:
        """Return once at least `passes` passes have finished (for tests and shutdown checks)."""
        async with self._passed:
            await self._passed.wait_for(lambda: self.passes >= passes)

    async def _run(self) -> None:
        while True:
            try:
                deleted = await self.run_once()
            except UNAVAILABLE as error:
                self.last_error = f"Postgres is unavailable: {describe(error)}"
                log.warning(
                    "deleting expired messages skipped: %s; trying again in %.0f s", self.last_error, self.interval
                )
            except Exception as error:  # a bug must not end retention for the life of the process
                self.last_error = describe(error)
                log.exception("deleting expired messages failed")
                report(error)
            else:
                self.last_error = None
                self.deleted += deleted
                if deleted:
                    log.info("deleted %d expired incoming messages, receipts and media", deleted)
            async with self._passed:
                self.passes += 1
                self._passed.notify_all()
            await asyncio.sleep(self.interval)
