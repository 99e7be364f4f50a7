"""The composition root: `create_app(settings)` wires the services (app/services.py) and the HTTP routes together."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app.db.database import start_failure
from app.services import Services
from app.settings import Settings
from app.web import (
    api,
    chats_api,
    contacts_api,
    groups_api,
    login,
    media_api,
    messages_api,
    page,
    simulator_api,
    webhooks_api,
)
from app.web.body import RequestBodyMiddleware
from app.web.cookie import CookieSessions
from app.web.errors import EXCEPTION_HANDLERS, InternalErrorMiddleware
from app.web.health import healthz
from app.web.metrics import Metrics
from app.web.metrics import metrics as metrics_endpoint
from app.web.middleware import RequestLogMiddleware
from app.web.openapi import openapi_json
from app.web.security import SecurityHeadersMiddleware
from app.web.state import AppState
from app.web.throttle import LoginThrottle

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "web" / "static"


# Set once this process has logged, in one line, why it cannot start; the entry points then exit with status 1
# without hypercorn's LifespanFailureError traceback (app/__main__.py, app/asgi.py).
start_failure_logged = False


class StartFailed(Exception):
    """The app cannot start, for a reason already logged."""


def create_app(settings: Settings, *, banner: str | None = None) -> Starlette:
    """`banner`, if any, is printed to the terminal once the app is ready to serve (a local run's login)."""
    services = Services(settings)
    cookie_sessions = CookieSessions(settings.secret_key, settings.admin_password)
    login_throttle = LoginThrottle()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AppState]:
        global start_failure_logged
        try:
            await services.start()
        except Exception as error:
            assert settings.database_url
            reason = start_failure(settings.database_url, error)
            if reason is None:
                raise  # not about the database: a bug, whose traceback is worth having
            log.error("cannot start: %s", reason)
            start_failure_logged = True
            raise StartFailed(reason) from None
        if banner:
            print(banner, file=sys.stderr, flush=True)
        try:
            assert services.database and services.supervisor and services.sender, "started above"
            assert services.number_checker, "started above"
            # Every request gets this as request.state (app/web/state.py), and only once everything here has started.
            yield AppState(
                settings=settings,
                services=services,
                database=services.database,
                supervisor=services.supervisor,
                sender=services.sender,
                dispatcher=services.dispatcher,
                cookie_sessions=cookie_sessions,
                login_throttle=login_throttle,
                metrics=metrics,
                number_checker=services.number_checker,
                media_links=services.media_links,
                media_storage=services.media_storage,
            )
        finally:
            await services.stop()

    metrics = Metrics()
    app = Starlette(
        routes=[  # matched in order: the platform's health check and the sending API first, they are the busiest
            Route("/healthz", healthz),
            *messages_api.ROUTES,
            Route("/metrics", metrics_endpoint),
            Route("/", page.index),
            Route("/login", login.login_form, methods=["GET"]),
            Route("/login", login.login_submit, methods=["POST"]),
            Route("/logout", login.logout, methods=["POST"]),
            Route("/events", page.events),
            Route("/api/openapi.json", openapi_json),
            *api.ROUTES,
            *simulator_api.routes(settings.whatsapp_backend),
            *webhooks_api.ROUTES,
            *chats_api.ROUTES,
            *contacts_api.ROUTES,
            *groups_api.ROUTES,
            *media_api.ROUTES,
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[
            Middleware(RequestLogMiddleware, metrics=metrics),  # outermost: its latency is the whole request's
            Middleware(SecurityHeadersMiddleware),
            Middleware(
                RequestBodyMiddleware, upload_bytes=settings.media_max_bytes
            ),  # inside the security headers: its own 413 answers carry them too
            Middleware(InternalErrorMiddleware),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    return app
