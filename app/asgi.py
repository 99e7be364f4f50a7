"""The entry point for `hypercorn "app.asgi:create()"` (the Procfile) and for `python -m app`."""

from __future__ import annotations

import sys
from types import TracebackType

from starlette.applications import Starlette

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
    init_sentry(ready)
    return ready


def quiet_start_failure(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    """hypercorn's command line lets the app's failed start end the process as an uncaught LifespanFailureError,
    whose traceback embeds the app's own. When the app has already said why in one line, that line is the whole
    story: exit with status 1 (the interpreter's, for an uncaught exception) and print nothing more."""
    if main.start_failure_logged and kind.__name__ == "LifespanFailureError":
        return
    sys.__excepthook__(kind, error, trace)


def create() -> Starlette:
    original = load_or_exit()
    settings = bootstrap(original)
    sys.excepthook = quiet_start_failure
    return main.create_app(settings, banner=login_banner(settings, original))
