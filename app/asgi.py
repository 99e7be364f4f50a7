"""The entry point for `hypercorn "app.asgi:create()"` (the Procfile) and for `python -m app`; deployed, the app
behind the platform's router (X-Forwarded-For and -Proto of its one hop, through hypercorn's ProxyFixMiddleware)."""

from __future__ import annotations

import sys
from types import TracebackType

from hypercorn.middleware import ProxyFixMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app import main
from app.errors import SettingsError
from app.local import login_banner, prepare_local
from app.logs import configure_logging
from app.observability import init_sentry
from app.settings import Settings, load_settings


def load_or_exit() -> Settings:
    """Settings, or the list of what is wrong with the environment on stderr and exit status 1 (no traceback)."""
    try:
        return load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def bootstrap(settings: Settings) -> Settings:
    """Everything a process does before its command: logging, local defaults, Sentry. Prints nothing: the login
    banner is the serving app's to print, once it serves (app/main.py)."""
    configure_logging(settings.log_level, settings.secrets())
    ready = prepare_local(settings)
    configure_logging(ready.log_level, ready.secrets())  # again, now that generated secrets are known
    init_sentry(ready.sentry_dsn, ready.release, deployed=ready.deployed, web=True)
    return ready


def quiet_start_failure(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    """hypercorn's command line lets the app's failed start end the process as an uncaught LifespanFailureError,
    whose traceback embeds the app's own. When the app has already said why in one line, that line is the whole
    story: exit with status 1 (the interpreter's, for an uncaught exception) and print nothing more."""
    if main.start_failure_logged and kind.__name__ == "LifespanFailureError":
        return
    sys.__excepthook__(kind, error, trace)


class RouterHop:
    """hypercorn's ProxyFixMiddleware trusting exactly one hop: the platform's router, the app's only TCP peer, which
    appends the client's address to X-Forwarded-For and says in X-Forwarded-Proto whether the client spoke https.
    Each handler then sees the client in `request.client` and the scheme in `request.url.scheme`.

    Around it: X-Forwarded-Host is dropped (the router passes on the Host it got and does not write that header, so
    its value is only the client's word), and the lifespan state bypasses the middleware's deep copy of the scope
    (it holds the app's services, which must be shared, not copied per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        outer = {key: value for key, value in scope.items() if key != "state"}
        outer["headers"] = [(name, value) for name, value in scope["headers"] if name != b"x-forwarded-host"]

        async def inner(fixed: Scope, receive: Receive, send: Send) -> None:
            if "state" in scope:
                fixed["state"] = scope["state"]
            await self.app(fixed, receive, send)

        fix = ProxyFixMiddleware(inner, mode="legacy", trusted_hops=1)  # type: ignore[arg-type]  # hypercorn's types
        await fix(outer, receive, send)  # type: ignore[arg-type]


def behind_router(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The app as served: deployed, behind its router's one hop; locally no proxy is trusted (nothing stands
    between the browser and the app, so a forwarded header there is only the client's word)."""
    return RouterHop(app) if settings.deployed else app


def create() -> ASGIApp:
    original = load_or_exit()
    settings = bootstrap(original)
    sys.excepthook = quiet_start_failure
    return behind_router(main.create_app(settings, banner=login_banner(settings, original)), settings)
