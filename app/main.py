"""The composition root: `create_app(settings)` wires the database, the session and the HTTP routes together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from app import __version__
from app.db.database import Database
from app.db.migrations import migrate
from app.observability import flush_sentry
from app.settings import Settings
from app.web import api
from app.web.errors import EXCEPTION_HANDLERS
from app.web.health import healthz
from app.web.middleware import RequestLogMiddleware

log = logging.getLogger(__name__)

SHUTDOWN_BUDGET = 8.0  # seconds for our own shutdown, after hypercorn's 10 s of draining: well inside 20 s


class Services:
    """The long-lived parts of the web process, started and stopped in order by the app's lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database: Database | None = None

    def session_state(self) -> str:
        return "starting"

    async def status(self) -> dict[str, Any]:
        """What /api/status and the page show; every figure comes from here."""
        assert self.database is not None
        async with self.database.connection() as connection:
            schema_version = await connection.fetchval("SELECT max(version) FROM schema_migrations")
        return {"state": self.session_state(), "version": __version__, "schema_version": schema_version}

    async def start(self) -> None:
        assert self.settings.database_url, "the database URL is resolved before the app is created"
        self.database = await Database.open(self.settings.database_url, max_size=self.settings.database_pool_max)
        async with self.database.connection() as connection:
            await migrate(connection)
        log.info("started")

    async def stop(self) -> None:
        log.info("shutting down")
        try:
            if self.database is not None:
                await asyncio.wait_for(self.database.close(), SHUTDOWN_BUDGET)
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
        routes=[Route("/healthz", healthz), *api.ROUTES],
        middleware=[Middleware(RequestLogMiddleware)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.services = services
    app.state.session_state = services.session_state
    return app
