"""What an operator sees and does with webhook deliveries: list and inspect them, retry one or all dead, resume an
endpoint paused by a 410, and the `webhooks` figures of /api/status. Functions take the connection.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import asyncpg

from app.times import utcnow
from app.webhooks.outbox import display_url

STATUSES = ("pending", "delivering", "failed", "waiting", "delivered", "dead")

DELIVERY_COLUMNS = """
d.id, d.event_id, event.type, d.lane, d.endpoint_id, endpoint.url, d.status, d.attempts, d.created_at,
d.next_attempt_at, d.last_attempt_at, d.last_status, d.last_error, d.delivered_at"""
LIST = f"""
SELECT {DELIVERY_COLUMNS}
FROM webhook_deliveries d
JOIN outbox_events event ON event.id = d.event_id
JOIN webhook_endpoints endpoint ON endpoint.id = d.endpoint_id
WHERE d.id < $1
ORDER BY d.id DESC
LIMIT $2"""
LIST_BY_STATUS = f"""
SELECT {DELIVERY_COLUMNS}
FROM webhook_deliveries d
JOIN outbox_events event ON event.id = d.event_id
JOIN webhook_endpoints endpoint ON endpoint.id = d.endpoint_id
WHERE d.status = $3 AND d.id < $1
ORDER BY d.id DESC
LIMIT $2"""
GET = f"""
SELECT {DELIVERY_COLUMNS}, event.created_at AS event_created_at, event.data::text AS data_json
FROM webhook_deliveries d
JOIN outbox_events event ON event.id = d.event_id
JOIN webhook_endpoints endpoint ON endpoint.id = d.endpoint_id
WHERE d.id = $1"""
# A retry starts a fresh retry window; the lane's order resumes from the retried delivery.
RETRY_ONE = """
WITH retried AS (
    UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), window_start = now(), claimed_by = NULL
    WHERE id = $1 AND status <> 'delivering'
    RETURNING id
)
SELECT id, pg_notify('webhook_events', '') FROM retried"""
RETRY_ALL = """
WITH retried AS (
    UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), window_start = now(), claimed_by = NULL
    WHERE status = $1
    RETURNING 1
)
SELECT count(*), (SELECT pg_notify('webhook_events', '')) FROM retried"""
RESUME_ENDPOINT = """
WITH resumed AS (
    UPDATE webhook_endpoints SET paused_at = NULL, paused_reason = NULL WHERE id = $1 RETURNING id
)
SELECT id, pg_notify('webhook_events', '') FROM resumed"""
ENDPOINTS = """
SELECT endpoint.id, endpoint.url, endpoint.active, endpoint.paused_at, endpoint.paused_reason,
       endpoint.last_success_at, endpoint.last_error_at, endpoint.last_error,
       count(d.id) FILTER (WHERE d.status IN ('pending', 'delivering', 'failed', 'waiting')) AS pending,
       count(d.id) FILTER (WHERE d.status = 'failed') AS failed,
       count(d.id) FILTER (WHERE d.status = 'waiting') AS waiting,
       count(d.id) FILTER (WHERE d.status = 'dead') AS dead,
       min(d.created_at) FILTER (WHERE d.status IN ('pending', 'delivering', 'failed', 'waiting')) AS oldest_pending,
       count(d.id) FILTER (WHERE d.status = 'delivered') AS delivered_24h
FROM webhook_endpoints endpoint
LEFT JOIN webhook_deliveries d
       ON d.endpoint_id = endpoint.id AND (d.status IN ('pending', 'delivering', 'failed', 'waiting', 'dead')
                                           OR d.status = 'delivered' AND d.delivered_at > now() - interval '24 hours')
GROUP BY endpoint.id
ORDER BY endpoint.id"""


def delivery_json(row: asyncpg.Record) -> dict[str, Any]:
    """A delivery as the API shows it."""

    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    shown: dict[str, Any] = {
        "id": row["id"],
        "event_id": str(row["event_id"]),
        "type": row["type"],
        "chat": None if row["lane"] == "session" else row["lane"],
        "endpoint": {"id": row["endpoint_id"], "url": display_url(row["url"])},
        "status": row["status"],
        "attempts": row["attempts"],
        "created_at": iso(row["created_at"]),
        "next_attempt_at": iso(row["next_attempt_at"]) if row["status"] in ("pending", "failed") else None,
        "last_attempt_at": iso(row["last_attempt_at"]),
        "last_status": row["last_status"],
        "last_error": row["last_error"],
        "delivered_at": iso(row["delivered_at"]),
    }
    return shown


async def list_deliveries(
    connection: asyncpg.Connection, status: str | None, *, limit: int = 50, before: int | None = None
) -> list[dict[str, Any]]:
    """Deliveries, newest first; `before` (an id) pages further back."""
    cursor = before if before is not None else 2**63 - 1
    if status is None:
        rows = await connection.fetch(LIST, cursor, limit)
    else:
        rows = await connection.fetch(LIST_BY_STATUS, cursor, limit, status)
    return [delivery_json(row) for row in rows]


async def get_delivery(connection: asyncpg.Connection, delivery_id: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await connection.fetchrow(GET, delivery_id)
    return row


async def retry_delivery(connection: asyncpg.Connection, delivery_id: int) -> bool:
    """Make one delivery due now (also a delivered one: a replay with the same event id). False if it is being
    attempted right now or does not exist."""
    return await connection.fetchrow(RETRY_ONE, delivery_id) is not None


async def retry_all(connection: asyncpg.Connection, status: str) -> int:
    """Make every delivery in `status` (dead or failed) due now; return how many."""
    count: int = await connection.fetchval(RETRY_ALL, status)
    return count


async def resume_endpoint(connection: asyncpg.Connection, endpoint_id: int) -> bool:
    return await connection.fetchrow(RESUME_ENDPOINT, endpoint_id) is not None


@dataclasses.dataclass(frozen=True)
class EndpointStatus:
    id: int
    url: str  # without user info or query (either may carry a token)
    active: bool  # still in WEBHOOK_URL
    paused: bool  # answered 410: nothing is sent until an operator resumes it
    paused_at: dt.datetime | None
    paused_reason: str | None
    pending: int  # not delivered yet (pending, delivering, failed, waiting)
    oldest_pending_age_seconds: float | None
    failed: int
    waiting: int
    dead: int
    delivered_24h: int
    last_success_at: dt.datetime | None
    last_error_at: dt.datetime | None
    last_error: str | None


@dataclasses.dataclass(frozen=True)
class LastError:
    at: dt.datetime
    url: str
    error: str | None


@dataclasses.dataclass(frozen=True)
class WebhookStatus:
    """The `webhooks` section of /api/status: totals over the configured endpoints, then each of them."""

    dispatcher: str | None  # active, standby, unavailable, stopped, "off (no WEBHOOK_URL)"; None: not known here
    dispatcher_error: str | None
    endpoints: int
    paused: list[str]
    pending: int
    oldest_pending_age_seconds: float | None
    failed: int
    waiting: int
    dead: int
    delivered_24h: int
    last_error: LastError | None
    by_endpoint: list[EndpointStatus]


@dataclasses.dataclass(frozen=True)
class OutboxStatus:
    events: int  # stored webhook events (delivered ones are pruned after 30 days)


async def outbox_status(connection: asyncpg.Connection) -> OutboxStatus:
    return OutboxStatus(await connection.fetchval("SELECT count(*) FROM outbox_events"))


async def endpoint_statuses(connection: asyncpg.Connection) -> list[EndpointStatus]:
    """Every endpoint with its delivery figures."""
    now = utcnow()
    return [
        EndpointStatus(
            id=row["id"],
            url=display_url(row["url"]),
            active=row["active"],
            paused=row["paused_at"] is not None,
            paused_at=row["paused_at"],
            paused_reason=row["paused_reason"],
            pending=row["pending"],
            oldest_pending_age_seconds=round((now - row["oldest_pending"]).total_seconds(), 1)
            if row["oldest_pending"]
            else None,
            failed=row["failed"],
            waiting=row["waiting"],
            dead=row["dead"],
            delivered_24h=row["delivered_24h"],
            last_success_at=row["last_success_at"],
            last_error_at=row["last_error_at"],
            last_error=row["last_error"],
        )
        for row in await connection.fetch(ENDPOINTS)
    ]


async def endpoints(connection: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every endpoint with its delivery figures, JSON-ready (GET /api/webhooks/endpoints)."""
    shown = []
    for endpoint in await endpoint_statuses(connection):
        item = dataclasses.asdict(endpoint)
        for name in ("paused_at", "last_success_at", "last_error_at"):
            item[name] = item[name].isoformat() if item[name] else None
        del item["delivered_24h"]
        shown.append(item)
    return shown


async def figures(
    connection: asyncpg.Connection, dispatcher: str | None, dispatcher_error: str | None = None
) -> WebhookStatus:
    listed = await endpoint_statuses(connection)
    active = [endpoint for endpoint in listed if endpoint.active]
    ages = [endpoint.oldest_pending_age_seconds for endpoint in active if endpoint.oldest_pending_age_seconds]
    errors = [LastError(e.last_error_at, e.url, e.last_error) for e in active if e.last_error_at is not None]
    return WebhookStatus(
        dispatcher=dispatcher,
        dispatcher_error=dispatcher_error,
        endpoints=len(active),
        paused=[endpoint.url for endpoint in active if endpoint.paused],
        pending=sum(endpoint.pending for endpoint in active),
        oldest_pending_age_seconds=max(ages) if ages else None,
        failed=sum(endpoint.failed for endpoint in active),
        waiting=sum(endpoint.waiting for endpoint in active),
        dead=sum(endpoint.dead for endpoint in active),
        delivered_24h=sum(endpoint.delivered_24h for endpoint in active),
        last_error=max(errors, key=lambda error: error.at) if errors else None,
        by_endpoint=active,
    )
