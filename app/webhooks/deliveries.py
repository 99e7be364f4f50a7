"""What the dispatcher does to the delivery table, named by intent: claim, complete, recover, release, unstick and
prune. Functions take the connection; the caller owns the transaction. (operator.py has what people do.)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence

import asyncpg

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
