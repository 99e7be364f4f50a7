"""The one `Status` behind /api/status, the page, /metrics and `python -m app status`: each boundary's typed report
(session, worker, auth store, message store, outbox and webhooks, send queue), composed here.

The serving process builds it live (`session_status`); another process (`python -m app status`, from `heroku run`)
builds the same object from what the lease holder stored (`stored_status`). `as_json` is its JSON form: a field named
like a Python keyword ends with '_' (`from_`, `import_`), and its JSON name drops the '_'.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import TYPE_CHECKING, Any, Literal

import asyncpg

from app import __version__
from app.authimport import record as auth_import
from app.authimport.record import AuthImportStatus, AuthStoreStatus, ImportAtStart
from app.incoming.store import IncomingStatus
from app.media import store as media_store
from app.media.store import MediaStatus
from app.observability import rss_mb
from app.sending import queue
from app.sending.queue import DeliveryFigures, SendQueueStatus
from app.session.states import State
from app.session.status import (
    SessionStatus,
    WorkerStatus,
    json_name,
    read_session,
    session_without_database,
    worker_status,
)
from app.tasks import TaskStatus, task_statuses
from app.times import utcnow
from app.webhooks import operator
from app.webhooks.operator import OutboxStatus, WebhookStatus

if TYPE_CHECKING:
    from app.db.database import Database
    from app.incoming.store import MessageStore
    from app.session.supervisor import Supervisor
    from app.settings import Settings

DEVICE_TABLES = {"neonize": "whatsmeow_device", "replay": "whatsmeow_device", "simulator": "simulator_devices"}
WEBHOOKS_OFF = "off (no WEBHOOK_URL)"
STALE_GRACE = 10.0  # seconds past two heartbeat intervals after which a stored "connected" is not believed


@dataclasses.dataclass(frozen=True)
class Status(SessionStatus):
    """The session's fields first (as /api/status has always shown them), then the other boundaries. A boundary this
    process cannot see is None: Postgres unavailable, or (source "stored") another process's memory."""

    source: Literal["live", "stored"]  # live: this process runs the session; stored: read from Postgres
    checked_at: dt.datetime
    worker: WorkerStatus | None
    web_rss_mb: float | None
    auth_store: AuthStoreStatus | None
    incoming: IncomingStatus | None
    outbox: OutboxStatus | None
    webhooks: WebhookStatus | None
    send_queue: SendQueueStatus | None
    deliveries_24h: DeliveryFigures | None
    media: MediaStatus | None
    tasks: list[TaskStatus] | None  # this process's long-lived tasks (None when read from another process)
    version: str
    schema_version: int | None


async def device_count(connection: asyncpg.Connection, backend: str) -> int | None:
    """Linked devices in the auth store (None if the store has not been created yet)."""
    table = DEVICE_TABLES.get(backend)
    if table is None or await connection.fetchval("SELECT to_regclass($1)", table) is None:
        return None
    count: int = await connection.fetchval(f"SELECT count(*) FROM {table}")
    return count


def compose(
    session: SessionStatus, source: Literal["live", "stored"], checked_at: dt.datetime, **boundaries: Any
) -> Status:
    fields = {field.name: getattr(session, field.name) for field in dataclasses.fields(SessionStatus)}
    return Status(**fields, source=source, checked_at=checked_at, version=__version__, **boundaries)


@dataclasses.dataclass(frozen=True)
class MediaSettings:
    """What the media figures need of the settings: where the bytes go, and the total cap."""

    storage: str  # "postgres", or MEDIA_STORAGE_URL
    max_total_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> MediaSettings:
        where = settings.media_bucket.url if settings.media_bucket is not None else "postgres"
        return cls(where, settings.media_max_total_bytes)


async def stored_figures(
    connection: asyncpg.Connection, backend: str, at_start: ImportAtStart | None, dispatcher: str | None,
    dispatcher_error: str | None, media: MediaSettings,
) -> dict[str, Any]:  # fmt: skip
    """The boundaries whose figures live in Postgres, whichever process reads them: read in one snapshot, so that
    figures of the same rows agree (a send committed between two of the queries would otherwise count as `sending`
    in the queue and as sent in the last 24 h)."""
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        return await _stored_figures(connection, backend, at_start, dispatcher, dispatcher_error, media)


async def _stored_figures(
    connection: asyncpg.Connection, backend: str, at_start: ImportAtStart | None, dispatcher: str | None,
    dispatcher_error: str | None, media: MediaSettings,
) -> dict[str, Any]:  # fmt: skip
    now = utcnow()
    return {
        "auth_store": AuthStoreStatus(
            "postgres",
            backend,
            await device_count(connection, backend),
            AuthImportStatus(at_start, await auth_import.latest(connection)),
        ),
        "outbox": await operator.outbox_status(connection),
        "webhooks": await operator.figures(connection, dispatcher, dispatcher_error),
        "send_queue": await queue.figures(connection),
        "deliveries_24h": await queue.delivery_figures(connection, now),
        "media": await media_store.figures(connection, media.storage, media.max_total_bytes),
        "schema_version": await connection.fetchval("SELECT max(version) FROM schema_migrations"),
    }


def process_figures(supervisor: Supervisor) -> dict[str, Any]:
    """What only the serving process's memory knows: its worker, its own memory, its long-lived tasks."""
    return {
        "worker": worker_status(supervisor.worker, supervisor.worker_max_rss_mb),
        "web_rss_mb": rss_mb(),
        "tasks": task_statuses(),
    }


# While Postgres is unavailable, every boundary whose figures live there is unknown.
NOTHING_STORED = dict.fromkeys(
    ("auth_store", "outbox", "webhooks", "send_queue", "deliveries_24h", "media", "schema_version")
)
# Read from another process, the serving process's memory is unknown.
NOTHING_LIVE = dict.fromkeys(("worker", "web_rss_mb", "incoming", "tasks"))


async def session_status(
    supervisor: Supervisor,
    database: Database,
    auth_import_at_start: dict[str, Any] | None = None,
    *,
    store: MessageStore | None = None,
    dispatcher: str | None = WEBHOOKS_OFF,
    dispatcher_error: str | None = None,
    media: MediaSettings = MediaSettings("postgres", 1024**3),
) -> Status:
    """The status as the serving process sees it: the supervisor's memory plus the figures in Postgres."""
    at_start = ImportAtStart.of(auth_import_at_start) if auth_import_at_start is not None else None
    async with database.connection() as connection:
        session = await read_session(
            connection, supervisor.snapshot(), heartbeat_interval=supervisor.heartbeat_interval
        )
        figures = await stored_figures(connection, supervisor.backend, at_start, dispatcher, dispatcher_error, media)
    incoming = store.report() if store is not None else None
    return compose(session, "live", utcnow(), incoming=incoming, **process_figures(supervisor), **figures)


def status_without_database(supervisor: Supervisor) -> Status:
    """While Postgres is unavailable: the session as the supervisor knows it, every stored figure unknown."""
    session = session_without_database(supervisor.snapshot(), supervisor.heartbeat_interval, supervisor.last_heartbeat)
    return compose(session, "live", utcnow(), incoming=None, **process_figures(supervisor), **NOTHING_STORED)


async def stored_status(
    connection: asyncpg.Connection, *, backend: str, heartbeat_interval: float, webhooks_configured: bool,
    media: MediaSettings,
) -> Status:  # fmt: skip
    """The status as another process reads it from Postgres (`python -m app status`): what the lease holder stored.
    The worker and the message store live in the serving process's memory: None here."""
    session = await read_session(connection, None, heartbeat_interval=heartbeat_interval)
    dispatcher = None if webhooks_configured else WEBHOOKS_OFF
    figures = await stored_figures(connection, backend, None, dispatcher, None, media)
    return compose(session, "stored", utcnow(), **NOTHING_LIVE, **figures)


def heartbeat_stale(status: SessionStatus, now: dt.datetime) -> bool:
    """No word from the lease holder for more than two heartbeat intervals: its stored state is not to be trusted."""
    last = max(filter(None, (status.last_heartbeat_at, status.updated_at, status.since)))
    return (now - last).total_seconds() > 2 * status.heartbeat_interval + STALE_GRACE


def is_connected(status: Status) -> bool:
    """Connected, and (when read from Postgres) the process that says so is still alive by its heartbeat."""
    if status.state is not State.CONNECTED or status.heartbeat_ok is False:
        return False
    return status.source == "live" or not heartbeat_stale(status, status.checked_at)


def as_json(value: Any) -> Any:
    """A status object as JSON-ready values: dataclasses as objects, times as ISO-8601 text, states as names."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {json_name(field.name): as_json(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): as_json(item) for key, item in value.items()}
    return value
