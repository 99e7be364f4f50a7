"""The composition root: `create_app(settings)` wires the database, the session and the HTTP routes together."""

from __future__ import annotations

import datetime as dt
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app.authimport.startup import import_at_start
from app.db.database import Database
from app.db.migrations import migrate
from app.observability import flush_sentry
from app.sending import queue
from app.sending.sender import Sender
from app.session.states import State
from app.session.status import session_status
from app.session.supervisor import Supervisor
from app.settings import Settings
from app.web import api, login, messages_api, page
from app.web.cookie import CookieSessions
from app.web.errors import EXCEPTION_HANDLERS
from app.web.health import healthz
from app.web.keepalive import DrainRequestBodyMiddleware
from app.web.middleware import RequestLogMiddleware
from app.web.openapi import openapi_json
from app.web.security import SecurityHeadersMiddleware
from app.web.throttle import LoginThrottle
from app.whatsapp import backend as events

log = logging.getLogger(__name__)

# After hypercorn's 8 s of draining (app/hypercorn_config.py), our own shutdown: 8 + 9 + 2 = 19 s < 20 s.
SUPERVISOR_BUDGET = 9.0  # the worker gets 5 s to stop before SIGKILL, then the lease is released
POOL_CLOSE_BUDGET = 2.0
STATIC = Path(__file__).parent / "web" / "static"


class Services:
    """The long-lived parts of the web process, started and stopped in order by the app's lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database: Database | None = None
        self.supervisor: Supervisor | None = None
        self.sender: Sender | None = None
        self.auth_import: dict[str, Any] | None = None  # what the import of a file-based login did at this start

    def session_state(self) -> str:
        return self.supervisor.state.value if self.supervisor else State.STARTING.value

    async def status(self) -> dict[str, Any]:
        """What /api/status and the page show; every figure comes from here."""
        assert self.database is not None and self.supervisor is not None
        status = await session_status(self.supervisor, self.database, self.auth_import)
        async with self.database.connection() as connection:
            status["send_queue"] = await queue.figures(connection)
        return status

    async def on_whatsapp_event(self, name: str, data: dict[str, Any]) -> None:
        """Incoming messages and receipts from the worker, in the order WhatsApp delivered them."""
        assert self.database is not None
        if name == events.RECEIPT:
            async with self.database.transaction() as connection:
                await queue.apply_receipt(connection, data["message_ids"], data["status"], receipt_time(data))
        else:
            log.info("%s event from WhatsApp (no store attached)", name)

    async def start(self) -> None:
        settings = self.settings
        assert settings.database_url, "the database URL is resolved before the app is created"
        self.database = await Database.open(settings.database_url, max_size=settings.database_pool_max)
        async with self.database.connection() as connection:
            await migrate(connection)
        # Before the worker connects: a file-based login found here is copied into Postgres (never raises; a refusal
        # or failure is logged and shown in /api/status, and the session then starts as usual, pairing if need be).
        self.auth_import = await import_at_start(
            settings.database_url, settings.auth_migrate_from, Path.cwd(), settings.whatsapp_backend
        )
        self.supervisor = Supervisor(
            database=self.database,
            database_url=settings.database_url,
            backend=settings.whatsapp_backend,
            heartbeat_interval=settings.heartbeat_interval,
            sink=self.on_whatsapp_event,
        )
        self.sender = Sender(
            self.database,
            self.supervisor,
            per_minute=settings.send_rate_per_minute,
            min_interval=settings.send_min_interval,
        )
        self.supervisor.start()  # in the background: HTTP answers (state "starting"/"standby") meanwhile
        self.sender.start()  # sends only while the session is connected
        # Everything loaded so far lives as long as the process: keep the garbage collector from rescanning it on
        # every collection (shorter pauses, so a steadier tail latency under load).
        gc.collect()
        gc.freeze()
        log.info("started")

    async def stop(self) -> None:
        log.info("shutting down")
        try:
            if self.sender is not None:
                await self.sender.stop()
            if self.supervisor is not None:
                await self.supervisor.stop(SUPERVISOR_BUDGET)
            if self.database is not None:
                await self.database.close(POOL_CLOSE_BUDGET)
        finally:
            flush_sentry()
            log.info("shutdown complete")


def receipt_time(data: dict[str, Any]) -> dt.datetime:
    stamp = data.get("timestamp")
    return dt.datetime.fromisoformat(stamp) if isinstance(stamp, str) else dt.datetime.now(dt.UTC)


def create_app(settings: Settings) -> Starlette:
    services = Services(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/", page.index),
            Route("/login", login.login_form, methods=["GET"]),
            Route("/login", login.login_submit, methods=["POST"]),
            Route("/logout", login.logout, methods=["POST"]),
            Route("/events", page.events),
            Route("/api/openapi.json", openapi_json),
            *api.ROUTES,
            *messages_api.ROUTES,
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[
            Middleware(RequestLogMiddleware),
            Middleware(DrainRequestBodyMiddleware),
            Middleware(SecurityHeadersMiddleware),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.services = services
    app.state.session_state = services.session_state
    app.state.cookie_sessions = CookieSessions(settings.secret_key, settings.admin_password)
    app.state.login_throttle = LoginThrottle()
    return app
