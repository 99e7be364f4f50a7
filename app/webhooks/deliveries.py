"""Every database operation on webhook deliveries, named by intent: claim, complete, recover, list, retry, resume,
the figures for /api/status, and pruning. Functions take the connection; the caller owns the transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from app.db.database import CONNECTION_ERRORS
from app.errors import DatabaseUnavailable
from app.webhooks.outbox import display_url

# What "Postgres cannot be reached right now" looks like, through the pool or on a connection of one's own.
UNAVAILABLE: tuple[type[BaseException], ...] = (DatabaseUnavailable, *CONNECTION_ERRORS)

STATUSES = ("pending", "delivering", "failed", "waiting", "delivered", "dead")
UNDELIVERED = ("pending", "delivering", "failed", "waiting")
RETRYABLE = ("pending", "failed", "waiting", "delivered", "dead")  # not 'delivering': an attempt is under way
RETENTION = dt.timedelta(days=30)  # delivered events older than this are pruned
PRUNE_BATCH = 5000


@dataclasses.dataclass(frozen=True)
class Claimed:
    """A delivery the dispatcher now owns, with what it needs to send it."""

    id: int
    endpoint_id: int
    url: str
    lane: str
    seq: int
    attempts: int
    window_start: dt.datetime
    event_id: uuid.UUID
    event_type: str
    created_at: dt.datetime
    data_json: str


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of a claimed delivery. `kind`: delivered, failed, dead, paused (the endpoint answered 410),
    waiting (not attempted: an earlier delivery of its lane failed) or released (not attempted: back to pending)."""

    kind: str
    id: int
    endpoint_id: int
    lane: str
    token: uuid.UUID
    at: dt.datetime
    status_code: int | None = None
    error: str | None = None
    next_attempt_at: dt.datetime | None = None


# The claim, in one statement: per endpoint that is active and not paused, the due deliveries in seq order, locked
# with SKIP LOCKED. A delivery behind a failed or waiting one of its lane becomes `waiting` (it is not scanned again
# until that one is resolved); the others become `delivering`, owned by `token`.
CLAIM = """
WITH candidates AS (
    SELECT due.id, due.blocked
    FROM webhook_endpoints endpoint
    CROSS JOIN LATERAL (
        SELECT d.id, EXISTS (
            SELECT 1 FROM webhook_deliveries held
            WHERE held.endpoint_id = d.endpoint_id AND held.lane = d.lane AND held.seq < d.seq
              AND held.status IN ('failed', 'waiting')
        ) AS blocked
        FROM webhook_deliveries d
        WHERE d.endpoint_id = endpoint.id AND d.status IN ('pending', 'failed') AND d.next_attempt_at <= now()
        ORDER BY d.seq
        LIMIT $2
        FOR UPDATE OF d SKIP LOCKED
    ) AS due
    WHERE endpoint.active AND endpoint.paused_at IS NULL
), held_back AS (
    UPDATE webhook_deliveries d SET status = 'waiting', claimed_by = NULL
    FROM candidates c WHERE d.id = c.id AND c.blocked
), claimed AS (
    UPDATE webhook_deliveries d SET status = 'delivering', claimed_by = $1
    FROM candidates c WHERE d.id = c.id AND NOT c.blocked
    RETURNING d.id, d.endpoint_id, d.lane, d.seq, d.attempts, d.window_start, d.event_id
)
SELECT claimed.*, endpoint.url, event.type, event.created_at, event.data::text AS data_json
FROM claimed
JOIN webhook_endpoints endpoint ON endpoint.id = claimed.endpoint_id
JOIN outbox_events event ON event.id = claimed.event_id
ORDER BY claimed.seq, claimed.endpoint_id"""
NEXT_DUE = """
SELECT min(d.next_attempt_at) FROM webhook_deliveries d
JOIN webhook_endpoints endpoint ON endpoint.id = d.endpoint_id AND endpoint.active AND endpoint.paused_at IS NULL
WHERE d.status = 'failed'"""
RECOVER = "UPDATE webhook_deliveries SET status = 'pending', claimed_by = NULL WHERE status = 'delivering'"
RELEASE_CLAIMS = """
UPDATE webhook_deliveries SET status = 'pending', claimed_by = NULL WHERE status = 'delivering' AND claimed_by = $1"""

# Completions, applied in one transaction in this order: failures first, so that a lane that failed again is not
# opened by the promotion at the end.
COMPLETE_DELIVERED = """
UPDATE webhook_deliveries d
SET status = 'delivered', attempts = d.attempts + 1, last_attempt_at = o.at, last_status = o.code,
    delivered_at = o.at, claimed_by = NULL
FROM unnest($1::bigint[], $2::int[], $3::timestamptz[]) AS o(id, code, at)
WHERE d.id = o.id AND d.status <> 'delivered'"""
COMPLETE_ATTEMPTED = """
UPDATE webhook_deliveries d
SET status = o.status, attempts = d.attempts + 1, last_attempt_at = o.at, last_status = o.code,
    last_error = o.error, next_attempt_at = coalesce(o.next_at, d.next_attempt_at), claimed_by = NULL
FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::uuid[])
     AS o(id, status, code, error, next_at, at, token)
WHERE d.id = o.id AND d.status = 'delivering' AND d.claimed_by = o.token"""
COMPLETE_UNATTEMPTED = """
UPDATE webhook_deliveries d SET status = o.status, claimed_by = NULL
FROM unnest($1::bigint[], $2::text[], $3::uuid[]) AS o(id, status, token)
WHERE d.id = o.id AND d.status = 'delivering' AND d.claimed_by = o.token"""
PROMOTE_WAITING = """
UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = now()
FROM unnest($1::int[], $2::text[]) AS l(endpoint_id, lane)
WHERE d.endpoint_id = l.endpoint_id AND d.lane = l.lane AND d.status = 'waiting'
  AND NOT EXISTS (
      SELECT 1 FROM webhook_deliveries f WHERE f.endpoint_id = d.endpoint_id AND f.lane = d.lane AND f.status = 'failed'
  )"""
ENDPOINT_SUCCESS = """
UPDATE webhook_endpoints SET last_success_at = o.at FROM unnest($1::int[], $2::timestamptz[]) AS o(id, at)
WHERE webhook_endpoints.id = o.id"""
ENDPOINT_ERROR = """
UPDATE webhook_endpoints SET last_error_at = o.at, last_error = o.error
FROM unnest($1::int[], $2::timestamptz[], $3::text[]) AS o(id, at, error) WHERE webhook_endpoints.id = o.id"""
PAUSE_ENDPOINT = """
UPDATE webhook_endpoints SET paused_at = $2, paused_reason = $3 WHERE id = $1 AND paused_at IS NULL"""


async def claim(connection: asyncpg.Connection, token: uuid.UUID, limit: int) -> list[Claimed]:
    """Claim up to `limit` due deliveries per endpoint, in seq order, for the dispatcher identified by `token`."""
    rows = await connection.fetch(CLAIM, token, limit)
    return [
        Claimed(
            id=row["id"],
            endpoint_id=row["endpoint_id"],
            url=row["url"],
            lane=row["lane"],
            seq=row["seq"],
            attempts=row["attempts"],
            window_start=row["window_start"],
            event_id=row["event_id"],
            event_type=row["type"],
            created_at=row["created_at"],
            data_json=row["data_json"],
        )
        for row in rows
    ]


async def next_due(connection: asyncpg.Connection) -> dt.datetime | None:
    """When the earliest retry falls due (new deliveries announce themselves with NOTIFY)."""
    moment: dt.datetime | None = await connection.fetchval(NEXT_DUE)
    return moment


async def recover(connection: asyncpg.Connection) -> int:
    """Put back every claimed delivery. Only the holder of the dispatch lock calls this, as it takes the lock, so
    every claim it finds belongs to a dispatcher that is gone (stopped, killed, or cut off from Postgres)."""
    return _count(await connection.execute(RECOVER))


async def release_claims(connection: asyncpg.Connection, token: uuid.UUID) -> int:
    """Put back what this dispatcher claimed and did not attempt (on shutdown)."""
    return _count(await connection.execute(RELEASE_CLAIMS, token))


async def complete(connection: asyncpg.Connection, outcomes: Sequence[Outcome]) -> None:
    """Record what became of claimed deliveries (call inside a transaction)."""
    delivered = [outcome for outcome in outcomes if outcome.kind == "delivered"]
    attempted = [outcome for outcome in outcomes if outcome.kind in ("failed", "dead", "paused")]
    unattempted = [outcome for outcome in outcomes if outcome.kind in ("waiting", "released")]
    if attempted:
        await connection.execute(
            COMPLETE_ATTEMPTED,
            [outcome.id for outcome in attempted],
            ["dead" if outcome.kind == "dead" else "failed" for outcome in attempted],
            [outcome.status_code for outcome in attempted],
            [outcome.error for outcome in attempted],
            [outcome.next_attempt_at for outcome in attempted],
            [outcome.at for outcome in attempted],
            [outcome.token for outcome in attempted],
        )
        latest = {outcome.endpoint_id: outcome for outcome in attempted}
        await connection.execute(
            ENDPOINT_ERROR,
            list(latest),
            [outcome.at for outcome in latest.values()],
            [outcome.error for outcome in latest.values()],
        )
        for outcome in attempted:
            if outcome.kind == "paused":
                await connection.execute(PAUSE_ENDPOINT, outcome.endpoint_id, outcome.at, outcome.error)
    if unattempted:
        await connection.execute(
            COMPLETE_UNATTEMPTED,
            [outcome.id for outcome in unattempted],
            ["waiting" if outcome.kind == "waiting" else "pending" for outcome in unattempted],
            [outcome.token for outcome in unattempted],
        )
    if delivered:
        await connection.execute(
            COMPLETE_DELIVERED,
            [outcome.id for outcome in delivered],
            [outcome.status_code for outcome in delivered],
            [outcome.at for outcome in delivered],
        )
        successes = {outcome.endpoint_id: outcome.at for outcome in delivered}
        await connection.execute(ENDPOINT_SUCCESS, list(successes), list(successes.values()))
    resolved = {(outcome.endpoint_id, outcome.lane) for outcome in outcomes if outcome.kind in ("delivered", "dead")}
    if resolved:
        await connection.execute(
            PROMOTE_WAITING, [endpoint for endpoint, _ in resolved], [lane for _, lane in resolved]
        )


# ---- operations (the API) ------------------------------------------------------------------------------------

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
       min(d.created_at) FILTER (WHERE d.status IN ('pending', 'delivering', 'failed', 'waiting')) AS oldest_pending
FROM webhook_endpoints endpoint
LEFT JOIN webhook_deliveries d
       ON d.endpoint_id = endpoint.id AND d.status IN ('pending', 'delivering', 'failed', 'waiting', 'dead')
GROUP BY endpoint.id
ORDER BY endpoint.id"""
# The safety net behind the ordering rules: a waiting delivery whose lane has no failed one left goes back to pending.
UNSTICK_WAITING = """
UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = now()
WHERE d.status = 'waiting' AND NOT EXISTS (
    SELECT 1 FROM webhook_deliveries f
    WHERE f.endpoint_id = d.endpoint_id AND f.lane = d.lane AND f.status IN ('failed', 'delivering')
)"""
PRUNE = """
DELETE FROM outbox_events WHERE id IN (
    SELECT event.id FROM outbox_events event
    WHERE event.created_at < $1
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = event.id AND d.status <> 'delivered')
    LIMIT $2
)"""


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


async def endpoints(connection: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every endpoint with its delivery figures."""
    now = dt.datetime.now(dt.UTC)
    shown = []
    for row in await connection.fetch(ENDPOINTS):
        oldest = row["oldest_pending"]
        shown.append(
            {
                "id": row["id"],
                "url": display_url(row["url"]),
                "active": row["active"],
                "paused": row["paused_at"] is not None,
                "paused_at": row["paused_at"].isoformat() if row["paused_at"] else None,
                "paused_reason": row["paused_reason"],
                "pending": row["pending"],
                "oldest_pending_age_seconds": round((now - oldest).total_seconds(), 1) if oldest else None,
                "failed": row["failed"],
                "waiting": row["waiting"],
                "dead": row["dead"],
                "last_success_at": row["last_success_at"].isoformat() if row["last_success_at"] else None,
                "last_error_at": row["last_error_at"].isoformat() if row["last_error_at"] else None,
                "last_error": row["last_error"],
            }
        )
    return shown


async def figures(connection: asyncpg.Connection) -> dict[str, Any]:
    """The `webhooks` section of /api/status: totals over the configured (active) endpoints, then each endpoint."""
    listed = await endpoints(connection)
    active = [endpoint for endpoint in listed if endpoint["active"]]
    ages = [endpoint["oldest_pending_age_seconds"] for endpoint in active if endpoint["oldest_pending_age_seconds"]]
    errors = [endpoint for endpoint in active if endpoint["last_error_at"]]
    last = max(errors, key=lambda endpoint: endpoint["last_error_at"]) if errors else None
    return {
        "endpoints": len(active),
        "paused": [endpoint["url"] for endpoint in active if endpoint["paused"]],
        "pending": sum(endpoint["pending"] for endpoint in active),
        "oldest_pending_age_seconds": max(ages) if ages else None,
        "failed": sum(endpoint["failed"] for endpoint in active),
        "waiting": sum(endpoint["waiting"] for endpoint in active),
        "dead": sum(endpoint["dead"] for endpoint in active),
        "last_error": {"at": last["last_error_at"], "url": last["url"], "error": last["last_error"]} if last else None,
        "by_endpoint": active,
    }


async def unstick_waiting(connection: asyncpg.Connection) -> int:
    """Release waiting deliveries that nothing holds up any more; return how many (0 unless something went wrong)."""
    return _count(await connection.execute(UNSTICK_WAITING))


async def prune(connection: asyncpg.Connection, now: dt.datetime, retention: dt.timedelta = RETENTION) -> int:
    """Delete events delivered everywhere (or never to be delivered) older than `retention`; return how many."""
    total = 0
    while True:
        deleted = _count(await connection.execute(PRUNE, now - retention, PRUNE_BATCH))
        total += deleted
        if deleted < PRUNE_BATCH:
            return total


def _count(tag: str) -> int:
    """The row count of a command tag such as 'UPDATE 3'."""
    return int(tag.rsplit(" ", 1)[-1])
