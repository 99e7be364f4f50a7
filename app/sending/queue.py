"""The outgoing-message queue in Postgres: every operation by intent, each status change with its `message.status`
webhook event written in the same transaction. Functions take the connection; the caller owns the transaction.

A new message makes no event (the API's 202 says it is queued); every later change does: sending, sent, delivered,
read, failed, cancelled, and queued again when a try is put back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from app.phone import InvalidPhone, Recipient, parse_recipient
from app.webhooks import outbox
from app.whatsapp import protocol

log = logging.getLogger(__name__)

# Statuses a receipt may move a message to, and from which statuses (never backwards: read stays read).
RECEIPT_TRANSITIONS = {
    "delivered": ("sent",),
    "read": ("sent", "delivered"),
}

# One statement on the API's hot path (one round trip, atomic on its own).
INSERT = """
INSERT INTO outgoing_messages (recipient, jid, text, idempotency_key, request_hash, typing, mentions, kind, content,
                               reply_to, reply_sender, reply_quoted)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING *"""
INSERT_ACTION = """
INSERT INTO outgoing_messages (recipient, jid, text, request_hash, kind, target_id, target_sender, target)
VALUES ($1, $1, $2, $3, $4, $5, $6, $7)
RETURNING *"""
# A message this account sent in a chat, by WhatsApp's id (what a reply may quote).
SENT_IN_CHAT = """
SELECT 1 FROM outgoing_messages
WHERE jid = $1 AND whatsapp_id = $2 AND kind NOT IN ('reaction', 'edit', 'delete')"""
SELECT_BY_KEY = "SELECT * FROM outgoing_messages WHERE idempotency_key = $1"
SELECT_ONE = "SELECT * FROM outgoing_messages WHERE id = $1"
SELECT_PAGE = """
SELECT * FROM outgoing_messages
WHERE ($1::text IS NULL OR status = $1) AND ($2::timestamptz IS NULL OR created_at < $2)
ORDER BY created_at DESC, id DESC
LIMIT $3"""
CANCEL = """
UPDATE outgoing_messages SET status = 'cancelled', updated_at = now()
WHERE id = $1 AND status = 'queued'
RETURNING *"""
CLAIM_NEXT = """
UPDATE outgoing_messages SET status = 'sending', attempts = attempts + 1, updated_at = now()
WHERE id = (
    SELECT id FROM outgoing_messages
    WHERE status = 'queued' AND next_attempt_at <= now()
    ORDER BY next_attempt_at, created_at
    FOR UPDATE SKIP LOCKED
    LIMIT 1
)
RETURNING *"""
MARK_SENT = """
UPDATE outgoing_messages SET status = 'sent', whatsapp_id = $2, sent_at = $3, error = NULL, updated_at = now()
WHERE id = $1 AND status = 'sending'
RETURNING *"""
# WhatsApp's answer came after we gave up waiting and marked the message interrupted: it was sent after all.
MARK_SENT_LATE = """
UPDATE outgoing_messages SET status = 'sent', whatsapp_id = $2, sent_at = $3, error = NULL, updated_at = now()
WHERE id = $1 AND status = 'failed' AND whatsapp_id IS NULL AND error LIKE 'interrupted:%'
RETURNING *"""
REQUEUE = """
UPDATE outgoing_messages
SET status = 'queued', next_attempt_at = now() + make_interval(secs => $2), error = $3,
    attempts = attempts - $4::int, updated_at = now()
WHERE id = $1 AND status = 'sending'
RETURNING *"""
MARK_FAILED = """
UPDATE outgoing_messages SET status = 'failed', error = $2, updated_at = now()
WHERE id = $1 AND status IN ('queued', 'sending')
RETURNING *"""
# Our id of the message a receipt is about (if we sent it), moving its status forward when the receipt allows.
APPLY_RECEIPT = """
WITH moved AS (
    UPDATE outgoing_messages
    SET status = $2,
        delivered_at = COALESCE(delivered_at, $3, now()),
        read_at = CASE WHEN $2 = 'read' THEN COALESCE($3, now()) ELSE read_at END,
        updated_at = now()
    WHERE whatsapp_id = $1 AND status = ANY($4::text[])
)
SELECT id FROM outgoing_messages WHERE whatsapp_id = $1 LIMIT 1"""
INTERRUPTED = """
UPDATE outgoing_messages SET status = 'failed', error = $1, updated_at = now()
WHERE status = 'sending'
RETURNING *"""
COUNTS = "SELECT status, count(*) AS n FROM outgoing_messages GROUP BY status"
OLDEST_QUEUED = "SELECT min(created_at) FROM outgoing_messages WHERE status = 'queued'"
RECENT_SENDS = "SELECT sent_at FROM outgoing_messages WHERE sent_at > now() - interval '60 seconds' ORDER BY sent_at"

INTERRUPTED_ERROR = (
    "interrupted: the process stopped while this message was being handed to WhatsApp, so it may or may not have "
    "been sent; it is not resent automatically, to avoid a duplicate"
)


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different request."""


@dataclasses.dataclass(frozen=True)
class Enqueued:
    message: dict[str, Any]
    created: bool  # False: the same Idempotency-Key and body came before; this is that message


ACTIONS = ("reaction", "edit", "delete")
MESSAGE_KINDS = ("text", *protocol.FILE_TYPES, "location", "contact")  # a file kind's content names its media_id


@dataclasses.dataclass(frozen=True)
class Reply:
    """The message a new one quotes (reply_to): WhatsApp's id, its sender's JID (None: this account) and, when it was
    received here, its serialized waE2E.Message as stored (WhatsApp shows the quote from it)."""

    whatsapp_id: str
    sender: str | None
    quoted: bytes | None


def request_hash(
    recipient: Recipient,
    text: str,
    typing: bool | None = None,
    mentions: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """What makes two requests the same message. `typing`, `mentions` and `extra` (a kind other than text with its
    content, a reply_to) count only when given, so the keys of messages queued before they existed still match a
    retry of the same request."""
    request: list[Any] = [recipient.jid, text] if typing is None else [recipient.jid, text, typing]
    if mentions:
        request.append(mentions)
    if extra:
        request.append(extra)
    return hashlib.sha256(json.dumps(request, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def public(row: asyncpg.Record) -> dict[str, Any]:
    """A queue row as the API shows it."""

    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": str(row["id"]),
        "to": row["recipient"],
        "jid": row["jid"],
        "status": row["status"],
        "error": row["error"],
        "message_id": row["whatsapp_id"],
        "attempts": row["attempts"],
        "typing": row["typing"],
        "mentions": list(row["mentions"]) if row["mentions"] else None,
        "kind": row["kind"],
        "content": json.loads(row["content"]) if row["content"] else None,
        "reply_to": row["reply_to"],
        "target": row["target"],
        "created_at": iso(row["created_at"]),
        "sent_at": iso(row["sent_at"]),
        "delivered_at": iso(row["delivered_at"]),
        "read_at": iso(row["read_at"]),
    }


async def emit_status(connection: asyncpg.Connection, row: asyncpg.Record) -> None:
    """The `message.status` webhook event for the row's current status (delivered in order within its chat)."""
    data = outbox.message_status_data(
        str(row["id"]),
        row["whatsapp_id"],
        row["status"],
        chat=row["jid"],
        timestamp=row["updated_at"].isoformat(),
        error=row["error"],
    )
    if row["kind"] in ACTIONS:  # an action on a message: which one, and on what
        data.update(kind=row["kind"], target=row["target"], target_id=row["target_id"])
    elif row["kind"] != "text":  # a message other than text: which kind
        data.update(kind=row["kind"])
    await outbox.enqueue_event(connection, outbox.MESSAGE_STATUS, data, chat=row["jid"])


async def enqueue(
    connection: asyncpg.Connection,
    recipient: Recipient,
    text: str,
    idempotency_key: str | None,
    *,
    typing: bool | None = None,
    mentions: list[str] | None = None,
    kind: str = "text",
    content: dict[str, Any] | None = None,
    reply: Reply | None = None,
    digest: str | None = None,
) -> Enqueued:
    """Queue a message: a text (`text`), or another kind with its `content` (`text` ''), quoting `reply` if given.
    `digest`: the API request's `request_hash`, naming the request as it was asked (a url, a voice note to convert),
    not the stored file that became of it; without it, the hash of what is queued."""
    assert kind in MESSAGE_KINDS and (kind == "text") == (content is None)
    if digest is None:
        queued: dict[str, Any] = {"kind": kind, "content": content} if content is not None else {}
        if reply is not None:
            queued["reply_to"] = reply.whatsapp_id
        digest = request_hash(recipient, text, typing, mentions, queued)
    row = await connection.fetchrow(
        INSERT, recipient.address, recipient.jid, text, idempotency_key, digest, typing, mentions or None,
        kind, json.dumps(content, ensure_ascii=False) if content is not None else None,
        reply.whatsapp_id if reply else None, reply.sender if reply else None, reply.quoted if reply else None,
    )  # fmt: skip
    if row is None:  # the key exists (a race with the same request): earlier() says which message, or conflict
        assert idempotency_key is not None
        found = await earlier(connection, idempotency_key, digest)
        assert found is not None
        return found
    return Enqueued(public(row), created=True)


async def earlier(connection: asyncpg.Connection, idempotency_key: str, digest: str) -> Enqueued | None:
    """The message an earlier request with this Idempotency-Key queued, if any: the same request (`digest`) gets it
    back; another one is an IdempotencyConflict."""
    existing = await connection.fetchrow(SELECT_BY_KEY, idempotency_key)
    if existing is None:
        return None
    if existing["request_hash"] != digest:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used for a different message; use a new key for a new message"
        )
    return Enqueued(public(existing), created=False)


async def sent_in_chat(connection: asyncpg.Connection, chat: str, whatsapp_id: str) -> bool:
    """Whether this account sent a message (not an action) with WhatsApp id `whatsapp_id` in `chat` from here."""
    return await connection.fetchval(SENT_IN_CHAT, chat, whatsapp_id) is not None


@dataclasses.dataclass(frozen=True)
class Target:
    """The message an action is about: its chat, WhatsApp's id, its sender (None: this account) and the API's name
    for it (our id, or WhatsApp's)."""

    chat: str
    whatsapp_id: str
    sender: str | None
    named: str


async def enqueue_action(connection: asyncpg.Connection, kind: str, target: Target, text: str) -> dict[str, Any]:
    """Queue a reaction (text: the emoji), an edit (the new text) or a delete for everyone (''); the sender sends it
    in turn, like a message."""
    assert kind in ACTIONS
    digest = hashlib.sha256(json.dumps([kind, target.chat, target.whatsapp_id, text]).encode()).hexdigest()
    row = await connection.fetchrow(
        INSERT_ACTION, target.chat, text, digest, kind, target.whatsapp_id, target.sender, target.named
    )
    return public(row)


async def get_row(connection: asyncpg.Connection, message_id: uuid.UUID) -> asyncpg.Record | None:
    return await connection.fetchrow(SELECT_ONE, message_id)


async def get(connection: asyncpg.Connection, message_id: uuid.UUID) -> dict[str, Any] | None:
    row = await connection.fetchrow(SELECT_ONE, message_id)
    return public(row) if row else None


async def page(
    connection: asyncpg.Connection, status: str | None, before: dt.datetime | None, limit: int
) -> list[dict[str, Any]]:
    return [public(row) for row in await connection.fetch(SELECT_PAGE, status, before, limit)]


async def cancel(connection: asyncpg.Connection, message_id: uuid.UUID) -> dict[str, Any] | None:
    """Cancel a queued message; None if it is not queued (any more)."""
    row = await connection.fetchrow(CANCEL, message_id)
    if row is None:
        return None
    await emit_status(connection, row)
    return public(row)


async def claim_next(connection: asyncpg.Connection) -> asyncpg.Record | None:
    """Take the oldest due message and mark it `sending` (commit before handing it to WhatsApp)."""
    row = await connection.fetchrow(CLAIM_NEXT)
    if row is not None:
        await emit_status(connection, row)
    return row


async def _move(connection: asyncpg.Connection, statement: str, *args: Any) -> None:
    """Run a status change; if it applied (the row was in a state it may leave), announce it (`message.status`)."""
    row = await connection.fetchrow(statement, *args)
    if row is not None:
        await emit_status(connection, row)


async def mark_sent(
    connection: asyncpg.Connection, message_id: uuid.UUID, whatsapp_id: str, sent_at: dt.datetime
) -> None:
    await _move(connection, MARK_SENT, message_id, whatsapp_id, sent_at)


async def mark_sent_late(
    connection: asyncpg.Connection, message_id: uuid.UUID, whatsapp_id: str, sent_at: dt.datetime
) -> None:
    await _move(connection, MARK_SENT_LATE, message_id, whatsapp_id, sent_at)


async def requeue(
    connection: asyncpg.Connection, message_id: uuid.UUID, delay: float, error: str | None, *, counts: bool
) -> None:
    """Back to the queue after `delay` seconds; `counts=False` gives the attempt back (the session was down)."""
    await _move(connection, REQUEUE, message_id, delay, error, 0 if counts else 1)


async def mark_failed(connection: asyncpg.Connection, message_id: uuid.UUID, error: str) -> None:
    await _move(connection, MARK_FAILED, message_id, error)


def declined_call_reply(text: str) -> Callable[[asyncpg.Connection, list[dict[str, Any]]], Awaitable[None]]:
    """The store's hook for declined calls (REJECT_CALLS_MESSAGE): `text` is queued to each caller in the transaction
    that stores the call, once per call (its id is the message's idempotency key, so a redelivered offer adds none)."""

    async def reply(connection: asyncpg.Connection, calls: list[dict[str, Any]]) -> None:
        for call in calls:
            address = call.get("from") or call.get("sender_jid")
            try:
                caller = parse_recipient(str(address or ""))
            except InvalidPhone:
                log.warning("declined call %s: no address to answer (%r)", call.get("call_id"), address)
                continue
            await enqueue(connection, caller, text, f"call-declined:{call['call_id']}")

    return reply


async def receipt_hook(connection: asyncpg.Connection, receipt: dict[str, Any]) -> str | None:
    """The webhook store's hook for a new receipt (app/incoming/store.py), in its transaction: move the message
    forward if we sent it and return our id for the `message.status` event the store emits; None if not ours."""
    status = "read" if receipt["status"] == "played" else str(receipt["status"])
    allowed = list(RECEIPT_TRANSITIONS.get(status, ()))
    our_id = await connection.fetchval(APPLY_RECEIPT, str(receipt["message_id"]), status, receipt.get("at"), allowed)
    return str(our_id) if our_id is not None else None


async def fail_interrupted(connection: asyncpg.Connection) -> int:
    """At start: messages left `sending` by a process that died cannot be known to be sent or not (see the docs)."""
    rows = await connection.fetch(INTERRUPTED, INTERRUPTED_ERROR)
    for row in rows:
        await emit_status(connection, row)
    return len(rows)


@dataclasses.dataclass(frozen=True)
class SendQueueStatus:
    """Every message the API accepted, by status."""

    queued: int
    sending: int
    sent: int
    delivered: int
    read: int
    failed: int
    cancelled: int
    oldest_queued_at: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class DeliveryFigures:
    """What became of the messages sent (or given up on) in the last 24 h."""

    sent: int  # went out to WhatsApp
    delivered: int  # of those, reached the phone (read ones included)
    read: int
    failed: int  # given up on
    delivered_percent: float | None  # delivered out of sent + failed; None when there were none


DELIVERY_FIGURES = """
SELECT count(*) FILTER (WHERE sent_at >= $1) AS sent,
       count(*) FILTER (WHERE sent_at >= $1 AND delivered_at IS NOT NULL) AS delivered,
       count(*) FILTER (WHERE sent_at >= $1 AND read_at IS NOT NULL) AS read,
       count(*) FILTER (WHERE status = 'failed' AND updated_at >= $1) AS failed
FROM outgoing_messages
WHERE sent_at >= $1 OR (status = 'failed' AND updated_at >= $1)"""
DAY = dt.timedelta(hours=24)


async def figures(connection: asyncpg.Connection) -> SendQueueStatus:
    counts = {row["status"]: row["n"] for row in await connection.fetch(COUNTS)}
    return SendQueueStatus(
        queued=counts.get("queued", 0),
        sending=counts.get("sending", 0),
        sent=counts.get("sent", 0),
        delivered=counts.get("delivered", 0),
        read=counts.get("read", 0),
        failed=counts.get("failed", 0),
        cancelled=counts.get("cancelled", 0),
        oldest_queued_at=await connection.fetchval(OLDEST_QUEUED),
    )


async def delivery_figures(connection: asyncpg.Connection, now: dt.datetime) -> DeliveryFigures:
    row = await connection.fetchrow(DELIVERY_FIGURES, now - DAY)
    attempted = row["sent"] + row["failed"]
    share = round(100 * row["delivered"] / attempted, 1) if attempted else None
    return DeliveryFigures(row["sent"], row["delivered"], row["read"], row["failed"], share)


async def recent_send_times(connection: asyncpg.Connection) -> list[dt.datetime]:
    """When messages went out in the last minute (the rate limiter starts from these after a restart)."""
    return [row["sent_at"] for row in await connection.fetch(RECENT_SENDS)]
