"""What the app's lifespan yields (Starlette copies it into every request's `request.state`), typed, and the one way
handlers read it. Requests are served only once the lifespan has started everything, so nothing here is optional
but the webhook dispatcher, which runs only with a WEBHOOK_URL."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict, cast

from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from app.contacts.checks import NumberChecker
    from app.db.database import Database
    from app.media.links import MediaLinks
    from app.media.storage import MediaStorage
    from app.sending.sender import Sender
    from app.services import Services
    from app.session.supervisor import Supervisor
    from app.settings import Settings
    from app.web.cookie import CookieSessions
    from app.web.metrics import Metrics
    from app.web.throttle import LoginThrottle
    from app.webhooks.dispatcher import Dispatcher


class AppState(TypedDict):
    settings: Settings
    services: Services  # status() and session_state(): what the page, /api/status and /healthz show
    database: Database
    supervisor: Supervisor
    sender: Sender
    number_checker: NumberChecker  # POST /api/contacts/check: the cache and the pace of look-ups
    dispatcher: Dispatcher | None
    cookie_sessions: CookieSessions
    login_throttle: LoginThrottle
    metrics: Metrics  # the app's own Prometheus registry (GET /metrics)
    media_links: MediaLinks | None  # checks the signed links to stored media (None without SECRET_KEY)
    media_storage: MediaStorage  # where media bytes live: Postgres, or MEDIA_STORAGE_URL's bucket


def state(connection: HTTPConnection) -> AppState:
    """The lifespan's state as this request sees it (a shallow copy per request: the services themselves are shared)."""
    return cast("AppState", connection.scope["state"])
