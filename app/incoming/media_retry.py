"""Incoming media whose download failed for a transient reason (a network error, a timeout, a 5xx from WhatsApp's
CDN) is downloaded again later: a small loop of the web process asks the connected worker (the only process that
imports neonize) to download it again from the message's stored `raw` (its media keys), with a backoff
(app/backoff.py), at most RETRIES more times (waits of 5 minutes, then up to 10, 20, 40 and 80: at most about two
and a half hours). The file comes back as on arrival, through the parent's private folder; it is stored (in the media
table, or first put in MEDIA_STORAGE_URL's bucket) and announced by a `message.media_ready` event in one transaction.
A file the bucket could not take on arrival is downloaded again the same way.

The message itself never waited: its `message.received` went out at once, with `media.error`. A try that could not
be made (the session is not connected, the worker did not answer) is not counted; an expired CDN copy (404, 410) or
a broken file is not tried again. The rows live in `media_downloads`; a message deleted by retention ends its row.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from app.backoff import Jitter, backoff
from app.db.database import UNAVAILABLE, Database, describe
from app.errors import AppError
from app.incoming.events import event_media
from app.incoming.store import IncomingOptions, handed_over, place_media, store_media
from app.media.storage import Placed
from app.tasks import LongTask
from app.times import utcnow
from app.webhooks import outbox
from app.whatsapp.media import RETRY

log = logging.getLogger(__name__)

RETRIES = 5  # tries after the one on arrival
CAP = 3 * 3600.0  # seconds: no wait between two tries is longer
POLL = 30.0  # seconds between two looks at what is due (or, while nothing could be tried, at the session)
BATCH = 20  # rows looked at per pass

Download = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]  # the worker's download_media command

DUE = """
SELECT d.chat, d.message_id, d.tries, m.type, m.media::text AS media, m.raw
FROM media_downloads d
LEFT JOIN incoming_messages m
       ON m.chat = d.chat AND m.message_id = d.message_id AND m.event_type = ANY($2::text[])
WHERE d.next_at <= now()
ORDER BY d.next_at
LIMIT $1"""
NEXT_DUE = "SELECT min(next_at) FROM media_downloads"
AGAIN = """
UPDATE media_downloads SET tries = tries + 1, next_at = now() + make_interval(secs => $3), last_error = $4
WHERE chat = $1 AND message_id = $2"""
DONE = "DELETE FROM media_downloads WHERE chat = $1 AND message_id = $2"
RECORD_MEDIA = """
UPDATE incoming_messages SET media = $3::jsonb
WHERE chat = $1 AND message_id = $2 AND event_type = ANY($4::text[])"""
MESSAGE_EVENTS = [outbox.MESSAGE_RECEIVED, outbox.MESSAGE_FROM_ME]


class MediaRetrier:
    """Every `poll` seconds at most (sooner when a try falls due), asks `download` for the media due again."""

    def __init__(
        self, database: Database, download: Download, options: IncomingOptions, *, retries: int = RETRIES,
        cap: float = CAP, poll: float = POLL,
    ) -> None:  # fmt: skip
        self.database = database
        self.download = download
        self.options = options
        self.retries = retries
        self.base = options.media_retry_after  # the first wait, doubled for each later one
        self.cap = cap
        self.poll = poll
        self.ready = 0  # files downloaded on a later try, by this process
        self.given_up = 0  # media given up on (tries used up, expired, broken)
        self.last_error: str | None = None
        self.blocked = False  # the last pass could not try (the session is down)
        self._task: LongTask | None = None

    def start(self) -> None:
        self._task = LongTask("media-retry", self._run, restart=True).start()

    async def stop(self) -> None:
        if self._task is not None:
            await self._task.stop()
            self._task = None

    async def run_once(self) -> int:
        """Try every download due now (up to BATCH); return how many were tried. Stops at the first try that could
        not be made: the session is down, the others would fail the same way."""
        async with self.database.connection() as connection:
            rows = await connection.fetch(DUE, BATCH, MESSAGE_EVENTS)
        tried = 0
        for row in rows:
            if row["type"] is None:  # the message was deleted (retention): nothing to download for
                await self._execute(DONE, row["chat"], row["message_id"])
                continue
            media = json.loads(row["media"]) if row["media"] else {}
            described = {key: media[key] for key in ("mimetype", "size", "file_name") if key in media}
            raw = base64.b64encode(row["raw"]).decode("ascii") if row["raw"] is not None else None
            args = {"message_id": row["message_id"], "chat": row["chat"], "type": row["type"], "media": described}
            try:
                result = await self.download({**args, "raw": raw})
            except AppError as error:
                self.last_error, self.blocked = str(error), True
                log.info("media downloads wait: %s", error)
                break
            tried += 1
            await self._settle(row, described, result)
        return tried

    async def _settle(self, row: asyncpg.Record, described: dict[str, Any], result: dict[str, Any]) -> None:
        chat, message_id, tries = row["chat"], row["message_id"], row["tries"]
        item = {"chat": chat, "message_id": message_id, "media": {**described, **result}}
        if handed_over(item):
            try:
                placement = await place_media(item, self.options)  # into a bucket: before the transaction
                try:
                    async with self.database.transaction() as connection:
                        media = await store_media(connection, item, self.options, placement)
                        if "id" in media:
                            await self._announce(connection, chat, message_id, media)
                            self.ready += 1
                            return
                except BaseException:
                    if isinstance(placement, Placed):  # no row names the object: it would stay in the bucket
                        await self.options.storage.discard(placement)
                    raise
                result = {**media, RETRY: True}  # lost on the way, or the bucket failed: try again
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(item["media"]["file"])
        error = str(result.get("error") or "download failed")
        if result.get(RETRY) and tries < self.retries:
            delay = backoff(tries, base=self.base, cap=self.cap, jitter=Jitter.EQUAL)
            await self._execute(AGAIN, chat, message_id, delay, error)
            log.info("media of message %s: try %d failed (%s); again in %.0f s", message_id, tries + 1, error, delay)
            return
        await self._execute(DONE, chat, message_id)
        self.given_up += 1
        log.warning("media of message %s is given up after %d tries: %s", message_id, tries + 1, error)

    async def _announce(
        self, connection: asyncpg.Connection, chat: str, message_id: str, media: dict[str, Any]
    ) -> None:
        """Record the stored file with its message and enqueue `message.media_ready`, in the caller's transaction."""
        media = self.options.with_link(media)
        await connection.execute(RECORD_MEDIA, chat, message_id, outbox.json_text(media), MESSAGE_EVENTS)
        data = {"message_id": message_id, "chat": chat, "media": event_media(media)}
        await outbox.enqueue_event(connection, outbox.MESSAGE_MEDIA_READY, data, chat=chat)
        await connection.execute(DONE, chat, message_id)

    async def _execute(self, statement: str, *args: Any) -> None:
        async with self.database.connection() as connection:
            await connection.execute(statement, *args)

    async def _wait(self) -> float:
        """Seconds until the next try is due, at most `poll`."""
        async with self.database.connection() as connection:
            due: dt.datetime | None = await connection.fetchval(NEXT_DUE)
        if due is None:
            return self.poll
        return min(self.poll, max(0.0, (due - utcnow()).total_seconds()))

    async def _run(self) -> None:
        while True:
            try:
                self.blocked = False
                await self.run_once()
                if not self.blocked:
                    self.last_error = None
                wait = self.poll if self.blocked else await self._wait()
            except UNAVAILABLE as error:
                self.last_error = f"Postgres is unavailable: {describe(error)}"
                log.warning("media downloads skipped: %s; trying again in %.0f s", self.last_error, self.poll)
                wait = self.poll
            await asyncio.sleep(wait)
