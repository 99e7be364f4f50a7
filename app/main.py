"""The composition root: `create_app(settings)` wires the database, the session and the HTTP routes together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app.db.database import Database
from app.db.migrations import migrate
from app.observability import flush_sentry
from app.session.states import State
from app.session.status import session_status
from app.session.supervisor import Supervisor
from app.settings import Settings
from app.web import api, login, page
from app.web.cookie import CookieSessions
from app.web.errors import EXCEPTION_HANDLERS
from app.web.health import healthz
from app.web.keepalive import DrainRequestBodyMiddleware
from app.web.middleware import RequestLogMiddleware
from app.web.openapi import openapi_json
from app.web.security import SecurityHeadersMiddleware
from app.web.throttle import LoginThrottle

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

    def session_state(self) -> str:
        return self.supervisor.state.value if self.supervisor else State.STARTING.value

    async def status(self) -> dict[str, Any]:
        """What /api/status and the page show; every figure comes from here."""
        assert self.database is not None and self.supervisor is not None
        return await session_status(self.supervisor, self.database)

    async def start(self) -> None:
        settings = self.settings
        assert settings.database_url, "the database URL is resolved before the app is created"
        self.database = await Database.open(settings.database_url, max_size=settings.database_pool_max)
        async with self.database.connection() as connection:
            await migrate(connection)
        self.supervisor = Supervisor(
            database=self.database,
            database_url=settings.database_url,
            backend=settings.whatsapp_backend,
            heartbeat_interval=settings.heartbeat_interval,
        )
        self.supervisor.start()  # in the background: HTTP answers (state "starting"/"standby") meanwhile
        log.info("started")

    async def stop(self) -> None:
        log.info("shutting down")
        try:
            if self.supervisor is not None:
                await self.supervisor.stop(SUPERVISOR_BUDGET)
            if self.database is not None:
                await self.database.close(POOL_CLOSE_BUDGET)
        finally:
            flush_sentry()
            log.info("shutdown complete")


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
