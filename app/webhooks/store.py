"""What WhatsApp gave us (messages, edits, reactions, receipts, calls ...), each stored once, with its webhook event, in
one transaction.

Every worker's incoming frames reach `MessageStore.take` straight from its channel, in order, never through the
session supervisor. One writer task stores them in batches (a batch is one transaction), in the order they came, and
holds them in memory, retrying, while Postgres is unavailable, so a database restart loses nothing the worker
delivered; the worker hears "stored" only after the commit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from app.db.database import Database, describe
from app.observability import report, start_watched
from app.times import parse_time
from app.webhooks import outbox
from app.webhooks.deliveries import UNAVAILABLE
from app.whatsapp import backend as events

log = logging.getLogger(__name__)

MESSAGE_TYPES = ("text", "image", "video", "audio", "document", "sticker", "location", "contact", "other")
RECEIPT_STATUSES = {"delivered": "delivered", "read": "read", "played": "read"}  # a played voice note was read
MAX_BATCH = 500  # items per transaction
RETRY_MIN, RETRY_MAX = 0.1, 5.0
WRITE_TRIES = 3  # a batch failing this often for a reason other than an outage is stored item by item

# A receipt of a message this account sent: the hook of the sending side (issue 7) updates its own records in the
# same transaction and returns our id of that message, or None if the message was not sent through the API.
ReceiptHook = Callable[[asyncpg.Connection, dict[str, Any]], Awaitable[str | None]]

# One statement per batch of messages: the new ones (a redelivered message hits the unique key and is skipped,
# also within the batch), an event for each in arrival order, a delivery per active endpoint, and a NOTIFY.
INSERT_MESSAGES = """
WITH input AS (
    SELECT DISTINCT ON (chat, message_id) *
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                $9::boolean[], $10::boolean[], $11::timestamptz[], $12::text[])
         WITH ORDINALITY AS m(chat, message_id, sender, sender_jid, push_name, type, text, media, is_group,
                              is_from_me, sent_at, data, position)
    ORDER BY chat, message_id, position
), stored AS (
    INSERT INTO incoming_messages
        (chat, message_id, sender, sender_jid, push_name, type, text, media, is_group, is_from_me, sent_at)
    SELECT chat, message_id, sender, sender_jid, push_name, type, text, media::jsonb, is_group, is_from_me, sent_at
    FROM input ORDER BY position
    ON CONFLICT (chat, message_id) DO NOTHING
    RETURNING chat, message_id
), new_events AS (
    INSERT INTO outbox_events (type, chat, data)
    SELECT CASE WHEN input.is_from_me THEN 'message.from_me' ELSE 'message.received' END, input.chat,
           input.data::jsonb
    FROM stored JOIN input USING (chat, message_id) ORDER BY input.position
    RETURNING id, seq, chat
), deliveries AS (
    INSERT INTO webhook_deliveries (event_id, endpoint_id, seq, lane)
    SELECT new_events.id, endpoint.id, new_events.seq, new_events.chat
    FROM new_events CROSS JOIN webhook_endpoints endpoint WHERE endpoint.active
    ORDER BY new_events.seq, endpoint.id
    RETURNING 1
), wake AS (
    SELECT pg_notify('webhook_events', '') FROM (SELECT 1 FROM deliveries LIMIT 1) AS any_delivery
)
SELECT (SELECT count(*) FROM new_events) AS stored, (SELECT count(*) FROM wake) AS notified"""
INSERT_RECEIPTS = """
INSERT INTO message_receipts (chat, message_id, status, at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
ON CONFLICT DO NOTHING
RETURNING chat, message_id, status, at"""


def message_event_data(message: dict[str, Any]) -> dict[str, Any]:
    """`data` of `message.received` (and `message.from_me`) from a normalised MESSAGE event."""
    kind = message.get("type")
    media = message.get("media")
    return {
        "message_id": str(message["message_id"]),
        "chat": str(message["chat"]),
        "from": message.get("from"),
        "sender_jid": message.get("sender_jid"),
        "push_name": message.get("push_name"),
        "timestamp": message.get("timestamp"),
        "type": kind if kind in MESSAGE_TYPES else "other",
        "text": message.get("text") if isinstance(message.get("text"), str) else None,
        "is_group": bool(message.get("is_group")),
        "is_from_me": bool(message.get("is_from_me")),
        "media": {
            "mimetype": media.get("mimetype"),
            "size": media.get("size") if isinstance(media.get("size"), int) else None,
            "file_name": media.get("file_name"),
        }
        if isinstance(media, dict)
        else None,
    }


@dataclasses.dataclass(frozen=True)
class IncomingOptions:
    status_posts: bool = False


async def store_messages(
    connection: asyncpg.Connection, items: list[tuple[str, dict[str, Any]]], options: IncomingOptions
) -> int:
    """Store normalised messages and their events (one statement); return how many were new."""
    data = [message_event_data(message) for name, message in items if name == events.MESSAGE]
    if not data:
        return 0
    columns: list[list[Any]] = [[] for _ in range(12)]
    for item in data:
        media = item["media"]
        row = (
            item["chat"],
            item["message_id"],
            item["from"],
            item["sender_jid"],
            item["push_name"],
            item["type"],
            item["text"],
            outbox.json_text(media) if media is not None else None,
            item["is_group"],
            item["is_from_me"],
            parse_time(item["timestamp"]),
            outbox.json_text(item),
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value.replace("\x00", "") if isinstance(value, str) else value)
    row = await connection.fetchrow(INSERT_MESSAGES, *columns)
    stored: int = row["stored"]
    return stored


async def store_receipts(
    connection: asyncpg.Connection, receipts: list[dict[str, Any]], hook: ReceiptHook | None = None
) -> int:
    """Store receipts of our outgoing messages, one `message.status` event per new (message, status) pair."""
    rows = [
        (str(receipt.get("chat") or ""), str(message_id), RECEIPT_STATUSES[status], parse_time(receipt["timestamp"]))
        for receipt in ({"timestamp": None, **item} for item in receipts)
        if (status := str(receipt.get("status"))) in RECEIPT_STATUSES
        for message_id in receipt.get("message_ids") or ()
    ]
    if not rows:
        return 0
    columns = [list(column) for column in zip(*rows, strict=True)]
    new = await connection.fetch(INSERT_RECEIPTS, *columns)
    for receipt in new:
        details = dict(receipt)
        our_id = await hook(connection, details) if hook is not None else None
        data = outbox.message_status_data(
            our_id,
            receipt["message_id"],
            receipt["status"],
            chat=receipt["chat"],
            timestamp=receipt["at"].isoformat() if receipt["at"] else None,
        )
        await outbox.enqueue_event(connection, outbox.MESSAGE_STATUS, data, chat=receipt["chat"])
    return len(new)


Stored = Callable[[], None]  # called once the item is committed (the worker's acknowledgement)


class MessageStore:
    """Where the worker's incoming items go: ordered, batched, durable once their batch is committed.

    `take` never waits: the worker keeps at most a window of unstored items (app/whatsapp/intake.py), so what is held
    here is bounded by that window, whichever worker generation sent it. During a Postgres outage the items stay here,
    retried, and their acknowledgements wait, which holds the worker (and so whatsmeow) back."""

    def __init__(
        self,
        database: Database,
        *,
        receipt_hook: ReceiptHook | None = None,
        options: IncomingOptions | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.database = database
        self.receipt_hook = receipt_hook
        self.options = options or IncomingOptions()
        self.max_batch = max_batch
        self.stored = 0  # items stored by this process
        self._buffer: collections.deque[tuple[str, dict[str, Any], Stored | None]] = collections.deque()
        self._arrived = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    @property
    def backlog(self) -> int:
        return len(self._buffer)

    def start(self) -> None:
        self._task = start_watched(self._run(), "message-store")

    def take(self, name: str, data: dict[str, Any], stored: Stored | None = None) -> None:
        """Take one item from the worker (a backend.INCOMING name); `stored` is called once it is committed."""
        if name not in events.INCOMING or (
            name != events.RECEIPT and not (data.get("message_id") or data.get("call_id"))
        ):
            log.warning("an incoming %r without an id was ignored", name)
            if stored is not None:
                stored()
            return
        self._buffer.append((name, data, stored))
        self._drained.clear()
        self._arrived.set()

    async def drained(self) -> None:
        """Return once everything taken so far is stored."""
        await self._drained.wait()

    async def close(self, budget: float) -> None:
        """Store what is still buffered, within `budget` seconds, then stop the writer."""
        try:
            await asyncio.wait_for(self.drained(), budget)
        except TimeoutError:
            log.error("%d incoming messages/receipts could not be stored before shutdown", len(self._buffer))
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        delay, tries = RETRY_MIN, 0
        while True:
            if not self._buffer:
                self._drained.set()
                self._arrived.clear()
                await self._arrived.wait()
                continue
            batch = list(itertools.islice(self._buffer, self.max_batch))
            try:
                await self._write(batch)
            except UNAVAILABLE as error:
                self._note_error(f"Postgres is unavailable: {describe(error)}", delay == RETRY_MIN)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            except Exception as error:  # a driver hiccup as Postgres goes away, or a bad item: try again, then isolate
                tries += 1
                if tries < WRITE_TRIES:
                    log.warning("storing a batch of %d failed (%s); trying again", len(batch), describe(error))
                    await asyncio.sleep(delay)
                    continue
                log.exception("storing a batch of %d failed %d times; storing its items one by one", len(batch), tries)
                report(error)
                await self._write_singly(batch)
            delay, tries = RETRY_MIN, 0
            for _ in batch:
                _, _, stored = self._buffer.popleft()
                if stored is not None:
                    stored()

    async def _write(self, batch: list[tuple[str, dict[str, Any], Stored | None]]) -> None:
        if all(name != events.RECEIPT for name, _, _ in batch):
            # The usual case: one statement, atomic on its own, so one round trip instead of three.
            async with self.database.connection() as connection:
                await store_messages(connection, [(name, data) for name, data, _ in batch], self.options)
            self.stored += len(batch)
            self.last_error = None
            return
        async with self.database.transaction() as connection:
            # Runs of the same kind, in arrival order, so events keep the order in which WhatsApp gave them.
            for is_receipt, group in itertools.groupby(batch, key=lambda item: item[0] == events.RECEIPT):
                items = [(name, data) for name, data, _ in group]
                if is_receipt:
                    await store_receipts(connection, [data for _, data in items], self.receipt_hook)
                else:
                    await store_messages(connection, items, self.options)
        self.stored += len(batch)
        self.last_error = None

    async def _write_singly(self, batch: list[tuple[str, dict[str, Any], Stored | None]]) -> None:
        for item in batch:
            while True:
                try:
                    await self._write([item])
                    break
                except UNAVAILABLE as error:
                    self._note_error(f"Postgres is unavailable: {describe(error)}", False)
                    await asyncio.sleep(RETRY_MAX)
                except Exception as error:
                    # Dropping is the last resort: the item is logged whole so that nothing is lost silently.
                    log.error("could not store %s %r: %r", item[0], item[1], error)
                    report(error)
                    break

    def _note_error(self, error: str, first: bool) -> None:
        self.last_error = error
        if first:
            log.warning("%s; holding %d incoming messages/receipts in memory", error, len(self._buffer))
