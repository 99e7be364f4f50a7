"""The session's audit trail in Postgres: every transition with its reason, the current status row, the heartbeat,
and the figures derived from them (disconnects, reconnects and uptime over 24 h).

Functions take a connection so the caller owns the transaction: a transition, the status row and its
`session.state_changed` outbox event are written together or not at all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import asyncpg

from app.session.states import State
from app.times import utcnow
from app.webhooks.outbox import SESSION_STATE_CHANGED, enqueue_event

WINDOW = dt.timedelta(hours=24)

INSERT_TRANSITION = """
INSERT INTO session_transitions (at, from_state, to_state, reason, detail, process)
VALUES ($1, $2, $3, $4, $5, $6)"""
UPSERT_STATUS = """
INSERT INTO session_status (singleton, state, since, reason, account_jid, push_name, retry_at, process, updated_at,
                            last_heartbeat_at, heartbeat_ok)
VALUES (true, $1, $2, $3, $4, $5, $6, $7, now(),
        CASE WHEN $1::text = 'connected' THEN $2::timestamptz END, CASE WHEN $1::text = 'connected' THEN true END)
ON CONFLICT (singleton) DO UPDATE SET
    state = EXCLUDED.state, since = EXCLUDED.since, reason = EXCLUDED.reason,
    -- A logged-out device (from the page or from the phone) has no account any more.
    account_jid = CASE WHEN EXCLUDED.state = 'logged_out' THEN NULL
                       ELSE COALESCE(EXCLUDED.account_jid, session_status.account_jid) END,
    push_name = CASE WHEN EXCLUDED.state = 'logged_out' THEN NULL
                     ELSE COALESCE(EXCLUDED.push_name, session_status.push_name) END,
    retry_at = EXCLUDED.retry_at, process = EXCLUDED.process, updated_at = now(),
    -- Becoming connected is a good heartbeat (the worker just said the link is up): a false one from before the
    -- reconnect must not stand until the next beat.
    last_heartbeat_at = COALESCE(EXCLUDED.last_heartbeat_at, session_status.last_heartbeat_at),
    heartbeat_ok = COALESCE(EXCLUDED.heartbeat_ok, session_status.heartbeat_ok)"""
UPDATE_HEARTBEAT = """
UPDATE session_status SET last_heartbeat_at = $1, heartbeat_ok = $2, updated_at = now() WHERE process = $3"""
SELECT_STATUS = "SELECT * FROM session_status WHERE singleton"
SELECT_WINDOW = """
SELECT at, from_state, to_state FROM session_transitions WHERE at >= $1
UNION ALL
(SELECT at, from_state, to_state FROM session_transitions WHERE at < $1 ORDER BY at DESC, id DESC LIMIT 1)
ORDER BY at"""
SELECT_LAST_CONNECTED = "SELECT max(at) FROM session_transitions WHERE to_state = 'connected'"
# Every new worker begins with a transition to 'connecting'; the first of a process (after starting or standby) is
# not a restart.
SELECT_WORKER_RESTARTS = """
SELECT count(*) FROM session_transitions
WHERE at >= $1 AND to_state = 'connecting' AND from_state NOT IN ('starting', 'standby')"""
SELECT_RECENT = """
SELECT at, from_state, to_state, reason, detail FROM session_transitions ORDER BY at DESC, id DESC LIMIT $1"""


@dataclasses.dataclass(frozen=True)
class Transition:
    at: dt.datetime
    from_state: State | None
    to_state: State
    reason: str
    detail: str | None = None
    account_jid: str | None = None
    push_name: str | None = None
    retry_at: dt.datetime | None = None


async def record_transition(connection: asyncpg.Connection, transition: Transition, process: str) -> None:
    """Store the transition, the new status and its webhook event (call inside a transaction)."""
    await connection.execute(
        INSERT_TRANSITION,
        transition.at,
        transition.from_state.value if transition.from_state else None,
        transition.to_state.value,
        transition.reason,
        transition.detail,
        process,
    )
    await connection.execute(
        UPSERT_STATUS,
        transition.to_state.value,
        transition.at,
        transition.reason,
        transition.account_jid,
        transition.push_name,
        transition.retry_at,
        process,
    )
    data = {
        "from": transition.from_state.value if transition.from_state else None,
        "to": transition.to_state.value,
        "reason": transition.reason,
        "detail": transition.detail,
        "at": transition.at.isoformat(),
    }
    if transition.retry_at is not None:
        data["retry_at"] = transition.retry_at.isoformat()
    await enqueue_event(connection, SESSION_STATE_CHANGED, data)


async def close_unfinished(connection: asyncpg.Connection, process: str, heartbeat_interval: float) -> None:
    """A new lease holder closes what a previous holder left open when it died without shutting down (kill -9,
    a dyno crash): its last state ends at its last sign of life, so the gap does not count as connected time."""
    row = await connection.fetchrow(SELECT_STATUS)
    if row is None or row["state"] in (State.STOPPED.value, State.STANDBY.value):
        return
    last_seen = max(filter(None, (row["last_heartbeat_at"], row["since"])))
    ended = min(utcnow(), last_seen + dt.timedelta(seconds=heartbeat_interval))
    await record_transition(
        connection,
        Transition(
            ended, State(row["state"]), State.STOPPED, "process_lost", f"{row['process']} ended without a shutdown"
        ),
        process,
    )


async def record_heartbeat(connection: asyncpg.Connection, at: dt.datetime, ok: bool | None, process: str) -> None:
    await connection.execute(UPDATE_HEARTBEAT, at, ok, process)


@dataclasses.dataclass(frozen=True)
class Stability:
    """Figures over the 24 h before `now`, derived from the transitions alone."""

    now: dt.datetime
    disconnects: int
    reconnects: int
    uptime_percent: float | None
    last_connected_at: dt.datetime | None
    seconds_since_connected: float | None
    worker_restarts: int


async def stability(connection: asyncpg.Connection, now: dt.datetime | None = None) -> Stability:
    now = now or utcnow()
    start = now - WINDOW
    rows = await connection.fetch(SELECT_WINDOW, start)
    connected = dt.timedelta()
    disconnects = reconnects = 0
    for index, row in enumerate(rows):
        begin = max(row["at"], start)
        end = rows[index + 1]["at"] if index + 1 < len(rows) else now
        if row["to_state"] == State.CONNECTED and end > begin:
            connected += end - begin
        if row["at"] >= start:
            if row["from_state"] == State.CONNECTED and row["to_state"] != State.CONNECTED:
                disconnects += 1
            if row["to_state"] == State.CONNECTED and row["from_state"] != State.PAIRING:
                reconnects += 1
    observed = now - max(start, rows[0]["at"]) if rows else dt.timedelta()
    last_connected = await connection.fetchval(SELECT_LAST_CONNECTED)
    return Stability(
        now=now,
        disconnects=disconnects,
        reconnects=reconnects,
        uptime_percent=round(100 * connected / observed, 2) if observed.total_seconds() > 0 else None,
        last_connected_at=last_connected,
        seconds_since_connected=(now - last_connected).total_seconds() if last_connected else None,
        worker_restarts=await connection.fetchval(SELECT_WORKER_RESTARTS, start),
    )


async def stored_status(connection: asyncpg.Connection) -> dict[str, Any] | None:
    row = await connection.fetchrow(SELECT_STATUS)
    return dict(row) if row else None
