"""The entry point for `hypercorn "app.asgi:create()"` (the Procfile) and for `python -m app`."""

from __future__ import annotations

import sys

from starlette.applications import Starlette

from app.errors import SettingsError
from app.local import prepare_local, print_login
from app.logs import configure_logging
from app.main import create_app
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
    """Everything a process does before serving: logging, local defaults, Sentry."""
    configure_logging(settings.log_level, settings.secrets())
    ready = prepare_local(settings)
    configure_logging(ready.log_level, ready.secrets())  # again, now that generated secrets are known
    init_sentry(ready)
    if not ready.deployed:
        print_login(ready, settings)
    return ready


def create() -> Starlette:
    return create_app(bootstrap(load_or_exit()))
