"""The session's typed status: what the supervisor knows now (live) or what the lease holder last stored (read by
another process, such as `python -m app status`), with the 24 h figures and the recent trail from Postgres.

A field named like a Python keyword ends with '_' (`from_`); its JSON name drops the '_' (app/status.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import TYPE_CHECKING, Any

import asyncpg

from app.session import audit
from app.session.states import State

if TYPE_CHECKING:
    from app.whatsapp.process import WorkerProcess

SELECT_UNLINKED = """
SELECT at, detail FROM session_transitions
WHERE to_state = 'logged_out' AND reason = 'logged_out'
  AND at > COALESCE((SELECT max(at) FROM session_transitions WHERE to_state = 'connected'), '-infinity')
ORDER BY at DESC, id DESC LIMIT 1"""
SELECT_LATEST_DETAIL = "SELECT to_state, detail FROM session_transitions ORDER BY at DESC, id DESC LIMIT 1"
OPERATOR_LOGOUT = "logged out by the operator"  # the supervisor's words for a logout from the page


@dataclasses.dataclass(frozen=True)
class Account:
    jid: str | None
    push_name: str | None
    phone: str | None  # E.164, when the JID is a phone number's


@dataclasses.dataclass(frozen=True)
class Pairing:
    qr_available: bool
    qr_rotation: int | None
    rounds_left: int | None  # None: not known from here (another process runs the session)


@dataclasses.dataclass(frozen=True)
class Unlinked:
    """The device was logged out since it was last connected: when, and by whom."""

    at: dt.datetime
    by_operator: bool  # True: "Log out" on the page or the API; False: from the phone (or by WhatsApp)
    detail: str | None


def json_name(field: str) -> str:
    """`from_` -> `from`: the JSON name of a field named like a Python keyword."""
    return field.rstrip("_")


# For a pydantic TypeAdapter over these plain dataclasses (the web layer's schema): the same JSON names as as_json.
KEYWORD_FIELDS = {"alias_generator": json_name, "serialize_by_alias": True, "validate_by_name": True}


@dataclasses.dataclass(frozen=True)
class TransitionEntry:
    __pydantic_config__ = KEYWORD_FIELDS

    at: dt.datetime
    from_: State | None
    to: State
    reason: str
    detail: str | None


@dataclasses.dataclass(frozen=True)
class Holder:
    """In standby: the process that holds the session, as it last said."""

    process: str
    state: State


@dataclasses.dataclass(frozen=True)
class WorkerStatus:
    pid: int
    generation: int  # counts every worker this process started
    uptime_seconds: float
    rss_mb: float | None
    max_rss_mb: float | None  # the memory watchdog's limit


@dataclasses.dataclass(frozen=True)
class SessionStatus:
    state: State
    since: dt.datetime
    reason: str
    detail: str | None
    retry_at: dt.datetime | None  # the next attempt (during a ban: when the ban is over)
    banned_until: dt.datetime | None  # during a ban whose end WhatsApp named
    account: Account | None  # cleared once the device is logged out, from the page or from the phone
    unlinked: Unlinked | None
    pairing: Pairing
    process: str  # this process (live) or the lease holder (stored)
    heartbeat_interval: float
    last_heartbeat_at: dt.datetime | None
    heartbeat_ok: bool | None
    disconnects_24h: int | None  # None: Postgres could not be read
    reconnects_24h: int | None
    uptime_24h_percent: float | None
    last_connected_at: dt.datetime | None
    seconds_since_connected: float | None
    worker_restarts_24h: int | None  # new WhatsApp worker processes after the first of a process
    recent_transitions: list[TransitionEntry]
    holder: Holder | None
    updated_at: dt.datetime | None  # when the lease holder last wrote the status row (its heartbeat or a change)


@dataclasses.dataclass(frozen=True)
class Live:
    """The session as the supervisor holding it sees it (`Supervisor.snapshot()`), for `read_session` and the QR."""

    state: State
    since: dt.datetime
    reason: str
    detail: str | None
    retry_at: dt.datetime | None
    account: dict[str, Any] | None
    qr: dict[str, Any] | None  # the code on offer: payload, rotation, expires_at
    rounds_left: int  # pairing rounds left in the window
    process: str

    @property
    def pairing(self) -> Pairing:
        rotation = self.qr["rotation"] if self.qr else None
        return Pairing(rotation is not None, rotation, self.rounds_left)


def phone_of(jid: str | None) -> str | None:
    """'15550001111:12@s.whatsapp.net' -> '+15550001111'."""
    if not jid or not jid.endswith("@s.whatsapp.net"):
        return None
    return "+" + jid.split("@")[0].split(":")[0]


def account_of(jid: str | None, push_name: str | None) -> Account | None:
    return Account(jid, push_name, phone_of(jid)) if jid else None


def worker_status(worker: WorkerProcess | None, max_rss_mb: float | None) -> WorkerStatus | None:
    if worker is None:
        return None
    uptime = round(time.monotonic() - worker.started_at, 1)
    return WorkerStatus(worker.pid, worker.generation, uptime, worker.rss_mb(), max_rss_mb)


def banned_until(state: State, retry_at: dt.datetime | None, detail: str | None) -> dt.datetime | None:
    """During a ban the next attempt is the ban's end (app/session/policy.py), unless WhatsApp named none."""
    if state is not State.BANNED or retry_at is None or "expiry unknown" in (detail or ""):
        return None
    return retry_at


async def recent_transitions(connection: asyncpg.Connection, limit: int) -> list[TransitionEntry]:
    rows = await connection.fetch(audit.SELECT_RECENT, limit)
    return [
        TransitionEntry(
            at=row["at"],
            from_=State(row["from_state"]) if row["from_state"] else None,
            to=State(row["to_state"]),
            reason=row["reason"],
            detail=row["detail"],
        )
        for row in rows
    ]


async def unlinked(connection: asyncpg.Connection) -> Unlinked | None:
    row = await connection.fetchrow(SELECT_UNLINKED)
    if row is None:
        return None
    return Unlinked(row["at"], OPERATOR_LOGOUT in (row["detail"] or ""), row["detail"])


async def read_session(
    connection: asyncpg.Connection, live: Live | None, *, heartbeat_interval: float, transitions: int = 20
) -> SessionStatus:
    """The session with its figures. `live` is the supervisor's view; without it (another process asks), the state
    is what the lease holder last stored."""
    stability = await audit.stability(connection)
    stored = await connection.fetchrow(audit.SELECT_STATUS)
    holder = None
    if live is not None:
        state, since, reason, detail, retry_at = live.state, live.since, live.reason, live.detail, live.retry_at
        account = account_of(live.account.get("jid"), live.account.get("push_name")) if live.account else None
        pairing = live.pairing
        process = live.process
        if state is State.STANDBY and stored is not None:
            holder = Holder(stored["process"], State(stored["state"]))
    elif stored is not None:
        state, since, reason, retry_at = State(stored["state"]), stored["since"], stored["reason"], stored["retry_at"]
        latest = await connection.fetchrow(SELECT_LATEST_DETAIL)
        detail = latest["detail"] if latest is not None and latest["to_state"] == stored["state"] else None
        account = account_of(stored["account_jid"], stored["push_name"]) if state is not State.LOGGED_OUT else None
        pairing = Pairing(state is State.PAIRING, None, None)
        process = stored["process"]
    else:
        state, since, reason, detail, retry_at = State.STOPPED, stability.now, "never_started", None, None
        account, pairing, process = None, Pairing(False, None, None), "none"
    return SessionStatus(
        state=state,
        since=since,
        reason=reason or "",
        detail=detail,
        retry_at=retry_at,
        banned_until=banned_until(state, retry_at, detail),
        account=account,
        unlinked=await unlinked(connection) if state in (State.LOGGED_OUT, State.PAIRING) else None,
        pairing=pairing,
        process=process,
        heartbeat_interval=heartbeat_interval,
        last_heartbeat_at=stored["last_heartbeat_at"] if stored else None,
        heartbeat_ok=stored["heartbeat_ok"] if stored else None,
        disconnects_24h=stability.disconnects,
        reconnects_24h=stability.reconnects,
        uptime_24h_percent=stability.uptime_percent,
        last_connected_at=stability.last_connected_at,
        seconds_since_connected=stability.seconds_since_connected,
        worker_restarts_24h=stability.worker_restarts,
        recent_transitions=await recent_transitions(connection, transitions),
        holder=holder,
        updated_at=stored["updated_at"] if stored else None,
    )


def session_without_database(
    live: Live, heartbeat_interval: float, last_heartbeat: dt.datetime | None
) -> SessionStatus:
    """What the supervisor alone can say while Postgres is unavailable: no figures, no trail."""
    account = account_of(live.account.get("jid"), live.account.get("push_name")) if live.account else None
    return SessionStatus(
        state=live.state,
        since=live.since,
        reason=live.reason,
        detail=live.detail,
        retry_at=live.retry_at,
        banned_until=banned_until(live.state, live.retry_at, live.detail),
        account=account,
        unlinked=None,
        pairing=live.pairing,
        process=live.process,
        heartbeat_interval=heartbeat_interval,
        last_heartbeat_at=last_heartbeat,
        heartbeat_ok=None,
        disconnects_24h=None,
        reconnects_24h=None,
        uptime_24h_percent=None,
        last_connected_at=None,
        seconds_since_connected=None,
        worker_restarts_24h=None,
        recent_transitions=[],
        holder=None,
        updated_at=None,
    )
