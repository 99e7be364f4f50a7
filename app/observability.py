"""Sentry error reporting, switched on only when SENTRY_DSN is set (the SDK is not even imported otherwise); the
process's name and memory as the status reports them."""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

from app import __version__

log = logging.getLogger(__name__)


_name = socket.gethostname()  # until the settings name this process's dyno


def name_process(dyno: str | None) -> None:
    """Name this process by its dyno (Settings.dyno, Heroku's DYNO) once the settings are read; else by its host."""
    global _name
    _name = dyno or socket.gethostname()


def process_name() -> str:
    """This process as the audit trail, the lease holder and the import record name it: dyno (or host) and pid."""
    return f"{_name}:{os.getpid()}"


def rss_mb(pid: int | None = None) -> float | None:
    """A process's resident memory in MB (Linux /proc; this process by default), or None where it cannot be read."""
    try:
        with open(f"/proc/{pid or 'self'}/statm", encoding="ascii") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def init_sentry(dsn: str | None, release: str | None, *, deployed: bool, web: bool) -> bool:
    """Switch Sentry on in this process (the web process, `web`, or a worker) if a DSN is set; True if it is on."""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.asyncio import AsyncioIntegration

    integrations: list[Any] = [AsyncioIntegration()]
    if web:
        from sentry_sdk.integrations.starlette import StarletteIntegration

        integrations.append(StarletteIntegration())
    sentry_sdk.init(
        dsn=dsn,
        release=release or f"whatsapp-gateway@{__version__}",
        environment="production" if deployed else "local",
        integrations=integrations,
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
