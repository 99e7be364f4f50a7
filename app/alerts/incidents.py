"""The incidents in Postgres: opening and clearing them, the watch's place in the session trail, and which message is
due next under the rate limits. Functions take the connection so the caller owns the transaction."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import asyncpg

LOCK_KEY = 0x77616761_616C7274  # "wagaalrt": one pass at a time across processes (a standby, a second dyno)

SELECT_WATCH = "SELECT transition_id, disconnected_at FROM alert_watch WHERE singleton"
# The first pass ever starts at the end of the trail: what happened before alerts existed is not announced now.
INSERT_WATCH = """
INSERT INTO alert_watch (transition_id) SELECT coalesce(max(id), 0) FROM session_transitions
ON CONFLICT (singleton) DO NOTHING"""
UPDATE_WATCH = "UPDATE alert_watch SET transition_id = $1, disconnected_at = $2 WHERE singleton"
SELECT_TRANSITIONS = """
SELECT id, at, from_state, to_state, reason, detail FROM session_transitions WHERE id > $1 ORDER BY id LIMIT $2"""
SELECT_STATUS = "SELECT state, since, reason, retry_at FROM session_status WHERE singleton"
OPEN = """
INSERT INTO alerts (kind, opened_at, detail) VALUES ($1, $2, $3)
ON CONFLICT (kind) WHERE cleared_at IS NULL DO NOTHING RETURNING id"""
SELECT_OPEN = "SELECT id, kind, opened_at FROM alerts WHERE cleared_at IS NULL AND kind = ANY($1::text[])"
CLEAR = "UPDATE alerts SET cleared_at = $2, recovery = $3 WHERE id = $1"
# Bounded: the status index finds the dead rows; counting stops at a number nobody needs exactly.
SELECT_DEAD = "SELECT count(*) FROM (SELECT 1 FROM webhook_deliveries WHERE status = 'dead' LIMIT 10000) AS dead"
SELECT_NEWEST_DEAD = """
SELECT delivery.last_attempt_at, delivery.last_status, delivery.last_error, endpoint.url
FROM webhook_deliveries delivery JOIN webhook_endpoints endpoint ON endpoint.id = delivery.endpoint_id
WHERE delivery.status = 'dead' ORDER BY delivery.id DESC LIMIT 1"""
# The messages waiting to go: an alert not sent yet whose incident is still open, or the recovery of one that was.
SELECT_DUE = """
SELECT id, kind, detail, recovery, notified_at IS NOT NULL AS is_recovery, attempts FROM alerts
WHERE ((notified_at IS NULL AND cleared_at IS NULL)
       OR (notified_at IS NOT NULL AND cleared_at IS NOT NULL AND recovery_notified_at IS NULL))
  AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
ORDER BY coalesce(cleared_at, opened_at), id"""
SELECT_LAST_OF_KIND = "SELECT max(notified_at) FROM alerts WHERE kind = $1"
SELECT_SENT_SINCE = """
SELECT (SELECT count(*) FROM alerts WHERE notified_at >= $1)
     + (SELECT count(*) FROM alerts WHERE recovery_notified_at >= $1)"""
CLAIM_ALERT = "UPDATE alerts SET notified_at = $2, next_attempt_at = NULL WHERE id = $1"
CLAIM_RECOVERY = "UPDATE alerts SET recovery_notified_at = $2, next_attempt_at = NULL WHERE id = $1"
SENT = "UPDATE alerts SET attempts = 0, last_error = NULL WHERE id = $1"
# A failed send is due again later: the claim is undone. Once the attempts are used up it is kept (given up on), and
# the count starts afresh for the recovery.
RETRY_ALERT = """
UPDATE alerts SET notified_at = CASE WHEN $4 THEN notified_at END,
                  attempts = CASE WHEN $4 THEN 0 ELSE attempts + 1 END,
                  next_attempt_at = CASE WHEN NOT $4 THEN $2::timestamptz END, last_error = $3 WHERE id = $1"""
RETRY_RECOVERY = """
UPDATE alerts SET recovery_notified_at = CASE WHEN $4 THEN recovery_notified_at END,
                  attempts = CASE WHEN $4 THEN 0 ELSE attempts + 1 END,
                  next_attempt_at = CASE WHEN NOT $4 THEN $2::timestamptz END, last_error = $3 WHERE id = $1"""


@dataclasses.dataclass(frozen=True)
class Message:
    """One message due: an incident's alert, or its recovery."""

    id: int
    kind: str
    text: str
    is_recovery: bool
    attempts: int  # failed sends so far


@dataclasses.dataclass(frozen=True)
class Limits:
    per_kind: dt.timedelta  # at most one alert of a kind within this (recoveries follow their alert regardless)
    per_hour: int  # at most this many messages, alerts and recoveries together, in any hour


async def lock(connection: asyncpg.Connection) -> None:
    """Serialise passes across processes until the transaction ends."""
    await connection.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)


async def read_watch(connection: asyncpg.Connection) -> tuple[int, dt.datetime | None]:
    await connection.execute(INSERT_WATCH)
    row = await connection.fetchrow(SELECT_WATCH)
    return row["transition_id"], row["disconnected_at"]


async def save_watch(connection: asyncpg.Connection, transition_id: int, disconnected_at: dt.datetime | None) -> None:
    await connection.execute(UPDATE_WATCH, transition_id, disconnected_at)


async def transitions_after(connection: asyncpg.Connection, transition_id: int, limit: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await connection.fetch(SELECT_TRANSITIONS, transition_id, limit)
    return rows


async def session_status(connection: asyncpg.Connection) -> asyncpg.Record | None:
    return await connection.fetchrow(SELECT_STATUS)


async def open_incident(connection: asyncpg.Connection, kind: str, at: dt.datetime, text: str) -> bool:
    """Open an incident of `kind` unless one is open already (that one goes on); True if this opened it."""
    return await connection.fetchval(OPEN, kind, at, text) is not None


async def open_incidents(connection: asyncpg.Connection, kinds: tuple[str, ...]) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await connection.fetch(SELECT_OPEN, list(kinds))
    return rows


async def clear_incident(connection: asyncpg.Connection, id: int, at: dt.datetime, recovery: str) -> None:
    await connection.execute(CLEAR, id, at, recovery)


async def dead_letters(connection: asyncpg.Connection) -> tuple[int, dict[str, Any] | None]:
    """How many deliveries are dead (counted up to 10,000) and the newest of them."""
    count: int = await connection.fetchval(SELECT_DEAD)
    newest = await connection.fetchrow(SELECT_NEWEST_DEAD) if count else None
    return count, dict(newest) if newest else None


async def claim_due(connection: asyncpg.Connection, now: dt.datetime, limits: Limits) -> list[Message]:
    """Claim the messages that may go now under `limits` (call under `lock`, in a transaction): a claimed message is
    marked sent before it goes, so that no other pass sends it too; a failed send is put back by `failed`."""
    budget = limits.per_hour - await connection.fetchval(SELECT_SENT_SINCE, now - dt.timedelta(hours=1))
    claimed = []
    for row in await connection.fetch(SELECT_DUE, now):
        if budget <= 0:
            break
        if not row["is_recovery"]:
            last = await connection.fetchval(SELECT_LAST_OF_KIND, row["kind"])
            if last is not None and now - last < limits.per_kind:
                continue  # waits for the kind's window; sent then if the incident is still open
        await connection.execute(CLAIM_RECOVERY if row["is_recovery"] else CLAIM_ALERT, row["id"], now)
        text = row["recovery"] if row["is_recovery"] else row["detail"]
        claimed.append(Message(row["id"], row["kind"], text, row["is_recovery"], row["attempts"]))
        budget -= 1
    return claimed


async def sent(connection: asyncpg.Connection, message: Message) -> None:
    await connection.execute(SENT, message.id)


async def failed(
    connection: asyncpg.Connection, message: Message, error: str, retry_at: dt.datetime, give_up: bool
) -> None:
    await connection.execute(
        RETRY_RECOVERY if message.is_recovery else RETRY_ALERT, message.id, retry_at, error, give_up
    )
