"""What WhatsApp gave us (messages, edits, deletes, reactions, poll votes, calls, receipts ...), each stored once, with
its webhook event, in one transaction.

The module-level part owns what an incoming event becomes: its row in `incoming_messages` (unique on chat, WhatsApp
id and event type), its webhook event type and `data`, the sender's phone number when WhatsApp gave only a LID (from
whatsmeow's LID map), and the option names of a poll vote (from the stored poll). `store_messages` writes a batch of
any event kinds in one statement; `store_receipts` writes receipts of our outgoing messages.

`MessageStore` is where every worker's incoming frames go, straight from its channel, in order, never through the
session supervisor. A BatchWriter (app/db/batch.py) stores them in batches (a batch is one transaction), in the order
they came, and holds them in memory, retrying, while Postgres is unavailable, so a database restart loses nothing the
worker delivered; the worker hears "stored" only after the commit.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import itertools
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import asyncpg

from app.db.batch import BatchWriter
from app.db.database import Database
from app.errors import MediaStoreUnavailable
from app.incoming.events import (
    EVENT_TYPES,
    POLL_SOURCES,
    ROW_TYPES,
    event_data,
    normalise,
    option_hash,
    poll_of,
    string_or_none,
)
from app.media import storage as media_storage
from app.media.links import MediaLinks
from app.media.storage import POSTGRES, MediaStorage, Placed
from app.times import parse_time
from app.webhooks import outbox
from app.whatsapp import backend as events
from app.whatsapp.media import RETRY, handed_over_path

log = logging.getLogger(__name__)

RECEIPT_STATUSES = {"delivered": "delivered", "read": "read", "played": "read"}  # a played voice note was read
MAX_BATCH = 500  # items per transaction

# A receipt of a message this account sent: the hook of the sending side (issue 7) updates its own records in the
# same transaction and returns our id of that message, or None if the message was not sent through the API.
ReceiptHook = Callable[[asyncpg.Connection, dict[str, Any]], Awaitable[str | None]]
# Called with the batch's declined calls (REJECT_CALLS), in the transaction that stores them.
CallHook = Callable[[asyncpg.Connection, list[dict[str, Any]]], Awaitable[None]]

FIRST_RETRY = 300.0  # seconds before the first retry of a transient download failure (media_retry.py: the rest)
# A media download to try again later (a transient failure), unless its message already has stored media.
INSERT_RETRIES = """
INSERT INTO media_downloads (chat, message_id, next_at, last_error)
SELECT r.chat, r.message_id, now() + make_interval(secs => $4), r.error
FROM unnest($1::text[], $2::text[], $3::text[]) AS r(chat, message_id, error)
WHERE NOT EXISTS (SELECT 1 FROM media WHERE media.chat = r.chat AND media.message_id = r.message_id)
ON CONFLICT (chat, message_id) DO NOTHING"""

# One item the worker gave: (backend event name, its data), e.g. ("reaction", {"message_id": ..., ...}).
Incoming = tuple[str, dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class IncomingOptions:
    """What the operator opted into (Settings): WEBHOOK_STATUS_POSTS stores contacts' status posts as events; and
    the folder of downloaded media."""

    status_posts: bool = False
    media_dir: str | None = None  # where workers hand downloaded media over; a file named outside it is never read
    links: MediaLinks | None = None  # signs the `url` of stored media in webhook events (needs SECRET_KEY)
    media_retry_after: float = FIRST_RETRY  # seconds before the first retry of a transient download failure
    storage: MediaStorage = POSTGRES  # where the bytes go: the media table, or MEDIA_STORAGE_URL's bucket

    def with_link(self, media: dict[str, Any]) -> dict[str, Any]:
        """A stored file's media with its signed `url` (null without SECRET_KEY), as webhook events carry it."""
        return {**media, "url": self.links.url(media["id"]) if self.links is not None else None}


# One statement per batch of events of any kind: the new ones (a redelivered event hits the unique key and is skipped,
# also within the batch), an event for each in arrival order, a delivery per active endpoint, and a NOTIFY.
INSERT_MESSAGES = """
WITH input AS (
    SELECT DISTINCT ON (chat, message_id, event_type) *
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                $9::text[], $10::text[], $11::text[], $12::bytea[], $13::boolean[], $14::boolean[],
                $15::timestamptz[], $16::text[])
         WITH ORDINALITY AS m(chat, message_id, event_type, target_id, sender, sender_jid, push_name, type, text,
                              media, poll, raw, is_group, is_from_me, sent_at, data, position)
    ORDER BY chat, message_id, event_type, position
), stored AS (
    INSERT INTO incoming_messages
        (chat, message_id, event_type, target_id, sender, sender_jid, push_name, type, text, media, poll, raw,
         is_group, is_from_me, sent_at)
    SELECT chat, message_id, event_type, target_id, sender, sender_jid, push_name, type, text, media::jsonb,
           poll::jsonb, raw, is_group, is_from_me, sent_at
    FROM input ORDER BY position
    ON CONFLICT (chat, message_id, event_type) DO NOTHING
    RETURNING chat, message_id, event_type
), new_events AS (
    INSERT INTO outbox_events (type, chat, data)
    SELECT input.event_type, input.chat, input.data::jsonb
    FROM stored JOIN input USING (chat, message_id, event_type) ORDER BY input.position
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
# Messages of a batch already read, as far as the stored receipts say: a `delivered` for them would go backwards.
READ_BEFORE = """
SELECT chat, message_id FROM message_receipts
WHERE status = 'read' AND (chat, message_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))"""
# whatsmeow's LID map (lid, pn: user parts only) lives in the same database, but only once whatsmeow has created its
# store: the simulator backend and a fresh database have none. A statement naming a missing table would abort the
# caller's transaction, so the table is looked for first, by name, as whatsmeow's unqualified queries find it.
LID_MAP_EXISTS = "SELECT to_regclass('whatsmeow_lid_map') IS NOT NULL"
LID_PHONES = "SELECT lid, pn FROM whatsmeow_lid_map WHERE lid = ANY($1::text[])"
STORED_POLLS = """
SELECT chat, message_id, poll::text FROM incoming_messages
WHERE (chat, message_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
  AND event_type = ANY($3::text[]) AND poll IS NOT NULL"""


def _raw(value: Any) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        log.warning("an incoming event's raw message is not base64; stored without it")
        return None


def _lid_user(sender_jid: Any) -> str | None:
    """'123456789@lid' (or '123456789:12@lid', with a device) -> '123456789'; None for anything else."""
    if not isinstance(sender_jid, str) or not sender_jid.endswith("@lid"):
        return None
    user = sender_jid.removesuffix("@lid").split(":", 1)[0]
    return user if user.isascii() and user.isdigit() else None


async def resolve_senders(connection: asyncpg.Connection, items: list[Incoming]) -> list[Incoming]:
    """Fill `from` ('+<digits>') of items whose sender WhatsApp named only by a LID, from whatsmeow's LID map.

    The worker already used SenderAlt where WhatsApp gave one; this covers the rest. Items the map does not know
    keep `from` null."""
    wanted = {user for _, data in items if data.get("from") is None and (user := _lid_user(data.get("sender_jid")))}
    if not wanted or not await connection.fetchval(LID_MAP_EXISTS):
        return items
    rows = await connection.fetch(LID_PHONES, sorted(wanted))
    phones = {row["lid"]: "+" + row["pn"] for row in rows if row["pn"] and str(row["pn"]).isdigit()}
    if not phones:
        return items
    resolved = []
    for name, data in items:
        user = _lid_user(data.get("sender_jid")) if data.get("from") is None else None
        phone = phones.get(user) if user is not None else None
        resolved.append((name, {**data, "from": phone}) if phone is not None else (name, data))
    return resolved


async def resolve_votes(connection: asyncpg.Connection, items: list[Incoming]) -> list[Incoming]:
    """Give every poll vote `selected` (option names, null where unknown) and `selected_hashes`, in the same order.

    Names come from the worker if it resolved them, else from the poll: earlier in this batch, or stored (same chat,
    id = the vote's target_id). A poll that is not stored (older than the retention, or from before this gateway)
    leaves its names null; the hashes still identify the options."""

    def poll_key(name: str, data: dict[str, Any]) -> tuple[str, str] | None:
        if name in (events.MESSAGE, events.STATUS_POST) and poll_of(data.get("poll")) is not None:
            return (data["chat"], data["message_id"])
        return None

    earlier: set[tuple[str, str]] = set()
    missing: set[tuple[str, str]] = set()
    for name, data in items:
        if (key := poll_key(name, data)) is not None:
            earlier.add(key)
        elif name == events.POLL_VOTE and not isinstance(data.get("selected"), list):
            missing.add((data["chat"], str(data.get("target_id"))))
    missing -= earlier
    stored: dict[tuple[str, str], dict[str, Any]] = {}
    if missing:
        chats, ids = zip(*sorted(missing), strict=True)
        for row in await connection.fetch(STORED_POLLS, list(chats), list(ids), list(POLL_SOURCES)):
            if (poll := poll_of(json.loads(row["poll"]))) is not None:
                stored[(row["chat"], row["message_id"])] = poll
    resolved: list[Incoming] = []
    seen: dict[tuple[str, str], dict[str, Any]] = {}  # a vote resolves against the polls that came before it
    for name, data in items:
        if (key := poll_key(name, data)) is not None:
            seen[key] = poll_of(data["poll"]) or {}
        if name != events.POLL_VOTE:
            resolved.append((name, data))
            continue
        given = data.get("selected")
        if isinstance(given, list):
            names: list[str | None] = [option if isinstance(option, str) else None for option in given]
            hashes: list[str | None] = [option_hash(option) if option is not None else None for option in names]
        else:
            hashes = [str(value).lower() for value in data.get("selected_hashes") or ()]
            target = (data["chat"], str(data.get("target_id")))
            poll = seen.get(target) or stored.get(target)
            by_hash = {option_hash(option): option for option in poll["options"]} if poll else {}
            names = [by_hash.get(value) if value else None for value in hashes]
        resolved.append((name, {**data, "selected": names, "selected_hashes": hashes}))
    return resolved


def handed_over(data: dict[str, Any]) -> bool:
    """Whether an item names a file of downloaded media (app/whatsapp/media.py)."""
    media = data.get("media")
    return isinstance(media, dict) and isinstance(media.get("file"), str)


def to_retry(data: dict[str, Any]) -> bool:
    """Whether an item's media failed to download for a transient reason (app/whatsapp/media.py's RETRY mark)."""
    media = data.get("media")
    return isinstance(media, dict) and RETRY in media


# What taking a handed-over file gave: where its bytes went, or the item's media saying why there is no file.
Placement = Placed | dict[str, Any]


async def place_media(item: dict[str, Any], options: IncomingOptions) -> Placement:
    """Put the file a worker handed over where media bytes live (for a bucket: before, never inside, the transaction
    of its message). If it cannot be taken, the item's media with `error`: the file was lost, is not the one the
    message names, or the bucket failed (then it is marked to be downloaded again later, and the message goes on)."""
    media = {key: value for key, value in item["media"].items() if key != "file"}
    path = handed_over_path(item["media"]["file"], options.media_dir)
    placed: Placed | None = None
    if path is not None:
        try:
            placed = await options.storage.put(uuid.uuid4(), path)
        except OSError:
            placed = None
        except MediaStoreUnavailable as error:
            log.warning("the media of message %s is not stored: %s", item["message_id"], error)
            return {**media, "error": f"not stored: {error}; it is tried again later", RETRY: True}
    if placed is None:
        log.warning("the media file of message %s is gone or outside the media folder", item["message_id"])
        return {**media, "error": "not stored: the downloaded file was lost"}
    if placed.sha256 != media.get("sha256"):
        await options.storage.discard(placed)
        return {**media, "error": "sha256 mismatch: the downloaded file is not the one the message names; not stored"}
    return placed


async def store_media(
    connection: asyncpg.Connection, item: dict[str, Any], options: IncomingOptions, placement: Placement | None = None
) -> dict[str, Any]:
    """Store the file a worker handed over (placed already, or now) with its row in the media table, in the caller's
    transaction; the item's media with the stored file's `id`, or with `error` if the file cannot be taken. The file
    is deleted after the commit."""
    if placement is None:
        placement = await place_media(item, options)
    if isinstance(placement, dict):
        return placement
    media = {key: value for key, value in item["media"].items() if key != "file"}
    mimetype = string_or_none(media.get("mimetype")) or "application/octet-stream"
    media_id = await media_storage.save(
        connection, options.storage, placement, chat=item["chat"], message_id=item["message_id"], mimetype=mimetype,
        file_name=string_or_none(media.get("file_name")),
    )  # fmt: skip
    return {**media, "id": str(media_id), "size": placement.size}


def _row(name: str, event_type: str, item: dict[str, Any], data: dict[str, Any]) -> tuple[Any, ...]:
    """The column values of an item, in INSERT_MESSAGES's parameter order."""
    media = data.get("media") if name in (events.MESSAGE, events.STATUS_POST) else None
    if name == events.CALL:
        kind, text = ("video_call" if data["video"] else "voice_call"), None
    elif name in ROW_TYPES:
        kind, text = ROW_TYPES[name], data.get("emoji") if name == events.REACTION else data.get("text")
    else:
        kind, text = data["type"], data["text"]
    poll = data.get("poll") if name in (events.MESSAGE, events.STATUS_POST) else None
    if name == events.POLL_VOTE:
        poll = {"selected": data["selected"], "selected_hashes": data["selected_hashes"]}
    return (
        item["chat"],
        item["message_id"],
        event_type,
        string_or_none(item.get("target_id")),
        string_or_none(item.get("from")),
        string_or_none(item.get("sender_jid")),
        string_or_none(item.get("push_name")),
        kind,
        text,
        outbox.json_text(media) if media is not None else None,
        outbox.json_text(poll) if poll is not None else None,
        _raw(item.get("raw")),
        bool(item.get("is_group")),
        bool(item.get("is_from_me")),
        parse_time(item.get("timestamp")),
        outbox.json_text(data),
    )


async def store_messages(
    connection: asyncpg.Connection,
    items: Sequence[Incoming],
    options: IncomingOptions = IncomingOptions(),  # frozen: one shared default is safe
    placed: Mapping[str, Placement] | None = None,
) -> int:
    """Store incoming events of any kind but RECEIPT, in arrival order, each with its webhook event (one statement;
    a read of whatsmeow's LID map and of stored polls first, only when the batch needs them). Handed-over files are
    taken here, one at a time, unless `placed` (by file name) says where they went already. Return how many events
    were new."""
    wanted: list[Incoming] = []
    for name, data in items:
        if name == events.STATUS_POST and not options.status_posts:
            continue  # not opted in: a contact's status is none of the operator's business
        if name not in EVENT_TYPES:
            log.warning("an incoming %r event from the worker was ignored: not a kind the store knows", name)
            continue
        item = normalise(name, data)
        if item is None:
            log.warning("an incoming %s event without id or chat from the worker was ignored", name)
            continue
        wanted.append((name, item))
    if not wanted:
        return 0
    wanted = await resolve_votes(connection, await resolve_senders(connection, wanted))
    for index, (name, item) in enumerate(wanted):
        if handed_over(item):  # one file in memory at a time, however many the batch holds
            placement = (placed or {}).get(item["media"]["file"])
            media = await store_media(connection, item, options, placement)
            wanted[index] = (name, {**item, "media": options.with_link(media) if "id" in media else media})
    retries: list[tuple[str, str, str]] = []
    for index, (name, item) in enumerate(wanted):
        marked = item.get("media")
        if to_retry(item) and isinstance(marked, dict):  # the worker's mark, never in an event: tried again later
            unmarked = {key: value for key, value in marked.items() if key != RETRY}
            retries.append((str(item["chat"]), str(item["message_id"]), str(unmarked.get("error") or "")))
            wanted[index] = (name, {**item, "media": unmarked})
    columns: list[list[Any]] = [[] for _ in range(16)]
    for name, item in wanted:
        event_type = EVENT_TYPES[name]
        if name == events.MESSAGE and item.get("is_from_me"):
            event_type = outbox.MESSAGE_FROM_ME
        row = _row(name, event_type, item, event_data(name, item))
        for column, value in zip(columns, row, strict=True):
            column.append(value.replace("\x00", "") if isinstance(value, str) else value)
    result = await connection.fetchrow(INSERT_MESSAGES, *columns)
    if retries:
        chats, ids, errors = (list(column) for column in zip(*retries, strict=True))
        await connection.execute(INSERT_RETRIES, chats, ids, errors, options.media_retry_after)
    stored: int = result["stored"]
    return stored


async def store_receipts(
    connection: asyncpg.Connection, receipts: list[dict[str, Any]], hook: ReceiptHook | None = None
) -> int:
    """Store receipts of our outgoing messages, one `message.status` event per new (message, status) pair, except a
    `delivered` of a message already read."""
    rows = [
        (str(receipt.get("chat") or ""), str(message_id), RECEIPT_STATUSES[status], parse_time(receipt["timestamp"]))
        for receipt in ({"timestamp": None, **item} for item in receipts)
        if (status := str(receipt.get("status"))) in RECEIPT_STATUSES
        for message_id in receipt.get("message_ids") or ()
    ]
    if not rows:
        return 0
    columns = [list(column) for column in zip(*rows, strict=True)]
    read = {(row["chat"], row["message_id"]) for row in await connection.fetch(READ_BEFORE, columns[0], columns[1])}
    new = await connection.fetch(INSERT_RECEIPTS, *columns)
    position = {row[:3]: index for index, row in reversed(list(enumerate(rows)))}  # each pair's first place
    for receipt in sorted(new, key=lambda row: position[(row["chat"], row["message_id"], row["status"])]):
        # A status never goes backwards: a delivery receipt WhatsApp sends after the read one is kept (it is a fact,
        # and its time is worth having) but makes no event, so a receiver never sees `delivered` after `read`.
        key = (receipt["chat"], receipt["message_id"])
        if receipt["status"] == "read":
            read.add(key)
        elif key in read:
            continue
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
Item = tuple[str, dict[str, Any], Stored | None]


@dataclasses.dataclass(frozen=True)
class IncomingStatus:
    """The message store as this process sees it (`python -m app status`, another process, cannot: None there)."""

    waiting_to_be_stored: int  # handed over by the workers, not committed yet (bounded by the worker's window)
    store_error: str | None
    stored_since_start: int  # items (messages, receipts, other events) this process stored


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
        call_hook: CallHook | None = None,
    ) -> None:
        self.database = database
        self.receipt_hook = receipt_hook
        self.call_hook = call_hook  # REJECT_CALLS_MESSAGE: the answer to a declined call, queued with it
        self.options = options or IncomingOptions()
        # Files already placed (hashed, and put in the bucket if there is one), by file name, before the transaction
        # of their batch: a batch written again (Postgres was away) does not upload them twice. Forgotten once the
        # batch is written.
        self.placed: dict[str, Placement] = {}
        self.writer: BatchWriter[Item] = BatchWriter(
            "message-store", self._write, max_batch=max_batch, on_written=self._acknowledge
        )

    @property
    def backlog(self) -> int:
        return self.writer.backlog

    @property
    def stored(self) -> int:
        """Items stored by this process."""
        return self.writer.count

    @property
    def last_error(self) -> str | None:
        """Why Postgres cannot take the items now, while it cannot."""
        return self.writer.last_error

    def report(self) -> IncomingStatus:
        return IncomingStatus(self.backlog, self.last_error, self.stored)

    def start(self) -> None:
        self.writer.start()

    def take(self, name: str, data: dict[str, Any], stored: Stored | None = None) -> None:
        """Take one item from the worker (a backend.INCOMING name); `stored` is called once it is committed."""
        if name not in events.INCOMING or (
            name != events.RECEIPT and not (data.get("message_id") or data.get("call_id"))
        ):
            log.warning("an incoming %r without an id was ignored", name)
            if stored is not None:
                stored()
            return
        self.writer.add((name, data, stored))

    async def drained(self) -> None:
        """Return once everything taken so far is stored."""
        await self.writer.written.wait()

    async def close(self, budget: float) -> None:
        """Store what is still buffered, within `budget` seconds, then stop the writer."""
        await self.writer.close(budget)

    async def _write(self, batch: list[Item]) -> None:
        declined = [data for name, data, _ in batch if name == events.CALL and data.get("rejected")]
        if self.call_hook is None:
            declined = []
        media = any(handed_over(data) or to_retry(data) for _, data, _ in batch)  # more than one statement
        for _, data, _ in batch:  # before the transaction: no upload or hashing holds it open
            if handed_over(data) and data["media"]["file"] not in self.placed:
                self.placed[data["media"]["file"]] = await place_media(data, self.options)
        if all(name != events.RECEIPT for name, _, _ in batch) and not declined and not media:
            # The usual case: one statement, atomic on its own, so one round trip instead of three.
            async with self.database.connection() as connection:
                await store_messages(connection, [(name, data) for name, data, _ in batch], self.options)
            return
        async with self.database.transaction() as connection:
            # Runs of the same kind, in arrival order, so events keep the order in which WhatsApp gave them.
            for is_receipt, group in itertools.groupby(batch, key=lambda item: item[0] == events.RECEIPT):
                items = [(name, data) for name, data, _ in group]
                if is_receipt:
                    await store_receipts(connection, [data for _, data in items], self.receipt_hook)
                else:
                    await store_messages(connection, items, self.options, self.placed)
            if declined:
                assert self.call_hook is not None
                await self.call_hook(connection, declined)

    def _acknowledge(self, batch: list[Item]) -> None:
        for _, data, stored in batch:
            if handed_over(data):  # committed: the bytes are in the media table or the bucket now
                self.placed.pop(data["media"]["file"], None)
                with contextlib.suppress(OSError):
                    os.unlink(data["media"]["file"])
            if stored is not None:
                stored()
