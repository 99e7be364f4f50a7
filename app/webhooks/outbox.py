"""The outbox: how any part of the app emits a webhook event, inside its own transaction, and the endpoints
(WEBHOOK_URL entries) each event is fanned out to as one delivery per endpoint.

An event is committed with what it describes or not at all; NOTIFY wakes the dispatcher when the transaction commits.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

CHANNEL = "webhook_events"  # LISTEN/NOTIFY channel: a delivery may be due
SESSION_LANE = "session"  # the lane of events that belong to no chat (session.state_changed)

# Event types (docs/WEBHOOKS.md describes each).
MESSAGE_RECEIVED = "message.received"
MESSAGE_FROM_ME = "message.from_me"
MESSAGE_STATUS = "message.status"
MESSAGE_EDITED = "message.edited"
MESSAGE_DELETED = "message.deleted"
MESSAGE_REACTION = "message.reaction"
MESSAGE_POLL_VOTE = "message.poll_vote"
MESSAGE_UNDECRYPTABLE = "message.undecryptable"
MESSAGE_MEDIA_READY = "message.media_ready"  # a file whose download failed at first, stored on a later try
CALL_RECEIVED = "call.received"
STATUS_POSTED = "status.posted"
SESSION_STATE_CHANGED = "session.state_changed"

# One statement: the event, one delivery per active endpoint, and a NOTIFY if there is anything to deliver.
# (Postgres folds identical notifications of one transaction into one.)
ENQUEUE = """
WITH event AS (
    INSERT INTO outbox_events (type, chat, data) VALUES ($1, $2, $3::jsonb) RETURNING id, seq
), deliveries AS (
    INSERT INTO webhook_deliveries (event_id, endpoint_id, seq, lane)
    SELECT event.id, endpoint.id, event.seq, $4 FROM event CROSS JOIN webhook_endpoints endpoint WHERE endpoint.active
    RETURNING 1
), wake AS (
    SELECT pg_notify('webhook_events', '') FROM (SELECT 1 FROM deliveries LIMIT 1) AS any_delivery
)
SELECT event.id, (SELECT count(*) FROM wake) AS notified FROM event"""
ACTIVATE_ENDPOINTS = """
INSERT INTO webhook_endpoints (url) SELECT unnest($1::text[])
ON CONFLICT (url) DO UPDATE SET active = true WHERE NOT webhook_endpoints.active"""
DEACTIVATE_OTHERS = "UPDATE webhook_endpoints SET active = false WHERE active AND url <> ALL($1::text[])"


async def enqueue_event(
    connection: asyncpg.Connection, type: str, data: dict[str, Any], chat: str | None = None
) -> uuid.UUID:
    """Store a webhook event and its deliveries in the caller's transaction; return the event id (X-Webhook-Id).

    Events of one chat are delivered to each endpoint in the order they were enqueued; events without a chat
    (session events) form a lane of their own."""
    row = await connection.fetchrow(ENQUEUE, type, chat, json_text(data), chat or SESSION_LANE)
    event_id: uuid.UUID = row["id"]
    return event_id


async def sync_endpoints(connection: asyncpg.Connection, urls: Sequence[str]) -> None:
    """Make the configured URLs the active endpoints (call in a transaction). An endpoint no longer configured keeps
    its deliveries, unsent, and picks them up again if its URL comes back; a paused endpoint stays paused."""
    await connection.execute(ACTIVATE_ENDPOINTS, list(urls))
    await connection.execute(DEACTIVATE_OTHERS, list(urls))


def message_status_data(
    id: str | None,
    message_id: str,
    status: str,
    *,
    chat: str | None,
    timestamp: str | None,
    error: str | None = None,
) -> dict[str, Any]:
    """`data` of a `message.status` event: `id` is ours (null for a message not sent through the API)."""
    return {
        "id": id,
        "message_id": message_id,
        "status": status,
        "error": error,
        "chat": chat,
        "timestamp": timestamp,
    }


def json_text(data: Any) -> str:
    """JSON for a jsonb column. Postgres refuses NUL in jsonb strings, and one stray NUL in a message text must not
    stop the store: NULs are dropped."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(_without_nul(data), ensure_ascii=False, separators=(",", ":")) if "\\u0000" in text else text


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(item) for item in value]
    return value


def display_url(url: str) -> str:
    """A URL as the status and the API show it: no user info, no query (either may carry a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", ""))
