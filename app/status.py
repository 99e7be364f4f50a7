"""The one function behind /api/status and the page: the session as this process sees it, plus stored figures."""

from __future__ import annotations

from typing import Any

import asyncpg

from app import __version__
from app.authimport import record as auth_import_record
from app.db.database import Database
from app.session import audit
from app.session.states import State
from app.session.supervisor import Supervisor
from app.webhooks.operator import figures as webhook_figures

DEVICE_TABLES = {"neonize": "whatsmeow_device", "simulator": "simulator_devices"}


async def device_count(connection: asyncpg.Connection, backend: str) -> int | None:
    """Linked devices in the auth store (None if the store has not been created yet)."""
    table = DEVICE_TABLES[backend]
    if await connection.fetchval("SELECT to_regclass($1)", table) is None:
        return None
    count: int = await connection.fetchval(f"SELECT count(*) FROM {table}")
    return count


def phone_of(jid: str | None) -> str | None:
    """'15550001111:12@s.whatsapp.net' -> '+15550001111'."""
    if not jid or not jid.endswith("@s.whatsapp.net"):
        return None
    return "+" + jid.split("@")[0].split(":")[0]


async def session_status(
    supervisor: Supervisor, database: Database, auth_import: dict[str, Any] | None = None
) -> dict[str, Any]:
    snapshot = supervisor.snapshot()
    async with database.connection() as connection:
        figures = await audit.figures(connection)
        transitions = await audit.recent_transitions(connection, 20)
        stored = await audit.stored_status(connection)
        devices = await device_count(connection, supervisor.backend)
        schema_version = await connection.fetchval("SELECT max(version) FROM schema_migrations")
        outbox = await connection.fetchval("SELECT count(*) FROM outbox_events")
        last_import = await auth_import_record.latest(connection)
        webhooks = await webhook_figures(connection)
    account = None
    if snapshot.account:
        account = {**snapshot.account, "phone": phone_of(snapshot.account.get("jid"))}
    status: dict[str, Any] = {
        "state": snapshot.state.value,
        "since": snapshot.since.isoformat(),
        "reason": snapshot.reason,
        "detail": snapshot.detail,
        "retry_at": snapshot.retry_at.isoformat() if snapshot.retry_at else None,
        "account": account,
        "pairing": {
            "qr_available": snapshot.qr is not None,
            "qr_rotation": snapshot.qr["rotation"] if snapshot.qr else None,
            "rounds_left": snapshot.pairing_rounds_left,
        },
        "worker": snapshot.worker,
        "process": supervisor.process,
        "heartbeat_interval": supervisor.heartbeat_interval,
        **figures,
        "recent_transitions": transitions,
        "auth_store": {
            "kind": "postgres",
            "backend": supervisor.backend,
            "devices": devices,
            # Import of a file-based login: what this process did at start, and the latest recorded attempt.
            "import": {"at_start": auth_import, "last": last_import},
        },
        "outbox": {"events": outbox},
        "webhooks": webhooks,
        "version": __version__,
        "schema_version": schema_version,
    }
    if snapshot.state is State.STANDBY and stored is not None:
        status["holder"] = {"process": stored["process"], "state": stored["state"]}
    return status
