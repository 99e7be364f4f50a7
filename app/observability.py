"""Sentry error reporting, switched on only when SENTRY_DSN is set (the SDK is not even imported otherwise)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from app import __version__

if TYPE_CHECKING:
    from app.settings import Settings

log = logging.getLogger(__name__)


def process_name() -> str:
    """This process as the audit trail, the lease holder and the import record name it: dyno (or host) and pid."""
    return f"{os.environ.get('DYNO') or socket.gethostname()}:{os.getpid()}"


def init_sentry(settings: Settings) -> bool:
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.asyncio import AsyncioIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        release=settings.release or f"whatsapp-gateway@{__version__}",
        environment="production" if settings.deployed else "local",
        integrations=[StarletteIntegration(), AsyncioIntegration()],
        send_default_pii=False,  # message texts and phone numbers stay out of Sentry
    )
    log.info("Sentry error reporting is on")
    return True


def report(error: BaseException) -> None:
    """Send an exception to Sentry if it is on; a no-op otherwise."""
    sentry = sys.modules.get("sentry_sdk")
    if sentry is not None and sentry.get_client().is_active():
        sentry.capture_exception(error)


def report_message(text: str, level: str) -> None:
    """Send a message (an operator alert) to Sentry at `level` if it is on; a no-op otherwise."""
    sentry = sys.modules.get("sentry_sdk")
    if sentry is not None and sentry.get_client().is_active():
        sentry.capture_message(text, level=level)


def flush_sentry(timeout: float = 2.0) -> None:
    sentry = sys.modules.get("sentry_sdk")
    if sentry is not None and sentry.get_client().is_active():
        sentry.flush(timeout=timeout)


def start_watched(
    coroutine: Coroutine[Any, Any, None], name: str, on_death: Callable[[], None] | None = None
) -> asyncio.Task[None]:
    """A named long-lived task whose death by an error is logged critically and reported, never silent."""
    task = asyncio.create_task(coroutine, name=name)

    def died(finished: asyncio.Task[None]) -> None:
        if finished.cancelled() or finished.exception() is None:
            return
        error = finished.exception()
        log.critical("%s died: %r", name, error, exc_info=error)
        report(error)  # type: ignore[arg-type]
        if on_death is not None:
            on_death()

    task.add_done_callback(died)
    return task
