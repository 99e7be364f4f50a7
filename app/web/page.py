"""GET / (the QR and status page) and GET /events (its live updates as Server-Sent Events).

Both render the typed `Status` (app/status.py) through app/web/render.py. The event stream wakes on the supervisor's
`state_changed` condition (every transition and QR rotation) and otherwise refreshes every few seconds, so the
heartbeat and the 24 h figures stay current; each message carries the page's sections as HTML fragments.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from app import __version__
from app.session.supervisor import PAIRING_ROUNDS, PAIRING_ROUNDS_WINDOW, Supervisor
from app.settings import Settings
from app.times import utcnow
from app.web import render
from app.web.auth import bearer_token_valid, cookie_session, requires_auth
from app.web.render import LOGO, layout
from app.web.state import state
from app.web.words import h
from app.whatsapp.backend import WHATSAPP_QR_SECONDS

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0  # without a transition, send the figures again this often
STREAM_SECONDS = 300.0  # then end the stream; the browser reconnects at once (keeps proxies and shutdowns happy)
RETRY_MILLISECONDS = 2000


def qr_lifetimes(backend: str, settings: Settings) -> tuple[float, ...]:
    """How long each QR code of a round lives, for the page's countdown: the simulator's rhythm is configurable."""
    return settings.simulator_qr_seconds if backend == "simulator" else WHATSAPP_QR_SECONDS


def next_round_at(supervisor: Supervisor) -> dt.datetime | None:
    """When every pairing round of the window is used: when the oldest leaves the window."""
    rounds = supervisor.pairing_rounds
    if len(rounds) < PAIRING_ROUNDS:
        return None
    return utcnow() + dt.timedelta(seconds=max(0.0, rounds[0] + PAIRING_ROUNDS_WINDOW - time.monotonic()))


async def view_of(request: Request) -> render.View:
    """The page's content now; if Postgres is down, the session's own view and a banner saying so."""
    app = state(request)
    supervisor = app["supervisor"]
    status, complete = await app["services"].status_now()
    banner = None if complete else "The database is unavailable right now: the figures below may be out of date."
    return render.View(
        status=status,
        now=utcnow(),
        qr=supervisor.qr,
        qr_lifetimes=qr_lifetimes(supervisor.backend, app["settings"]),
        next_round_at=next_round_at(supervisor),
        banner=banner,
    )


def status_page(view: render.View, csrf: str) -> str:
    rendered = render.sections(view)
    # The QR box is a placeholder inside the pairing section; fill it for the first load.
    pairing = rendered["pairing"].replace(
        '<div id="qr" class="qr-box" data-section="qr"></div>',
        f'<div id="qr" class="qr-box" data-section="qr">{rendered["qr"]}</div>',
    )

    def card(name: str, content: str, css: str = "card") -> str:
        hidden = "" if content else " hidden"
        return f'<section id="{name}" class="{css}" data-section="{name}"{hidden}>{content}</section>'

    status = view.status
    footer = (
        f"version {h(status.version)} · schema {h(status.schema_version or '—')} · process {h(status.process)}"
        + (f" · backend {h(status.auth_store.backend)}" if status.auth_store else "")
        if status is not None
        else f"version {h(__version__)}"
    )
    body = (
        '<header class="top"><div class="brand">'
        f'{LOGO}<span>WhatsApp gateway</span></div><div class="top-right">'
        '<span id="live" class="live" title="live updates">connecting…</span>'
        '<form method="post" action="/logout" class="signout">'
        f'<input type="hidden" name="csrf" value="{h(csrf)}"><button type="submit" class="link">Sign out</button>'
        "</form></div></header>"
        + card("banner", rendered["banner"], "banner")
        + '<div id="toast" class="toast" role="status" aria-live="polite" hidden></div>'
        '<main class="grid"><div class="col">'
        + card("session", rendered["session"])
        + card("pairing", pairing if rendered["pairing"] else "", "card pairing")
        + '</div><div class="col">'
        + card("health", rendered["health"])
        + card("storage", rendered["storage"])
        + card("history", rendered["history"])
        + "</div></main>"
        f'<footer class="foot">{footer}</footer>'
        '<dialog id="logout-dialog" aria-labelledby="logout-title"><h2 id="logout-title">Log out of WhatsApp?</h2>'
        '<p>This unlinks the gateway from <strong class="dialog-account">this account</strong>. '
        "Incoming messages stop arriving and sending stops until someone links it again with a QR code.</p>"
        '<div class="actions end"><button type="button" data-action="cancel">Cancel</button>'
        '<button type="button" class="danger" data-action="confirm-logout">Log out</button></div></dialog>'
    )
    return layout("Status", body, csrf=csrf, script=True, css="status-body")


async def index(request: Request) -> Response:
    session = cookie_session(request)
    if session is None:
        return RedirectResponse("/login", 303)
    return HTMLResponse(status_page(await view_of(request), session.csrf))


def fingerprint(supervisor: Supervisor) -> tuple[Any, ...]:
    """What, when it changes, must reach the page at once."""
    qr = supervisor.qr or {}
    return supervisor.state, supervisor.since, qr.get("rotation"), qr.get("payload")


async def page_events(request: Request) -> AsyncIterator[str]:
    supervisor = state(request)["supervisor"]
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    deadline = time.monotonic() + STREAM_SECONDS
    while time.monotonic() < deadline:
        if not bearer_token_valid(request) and cookie_session(request) is None:
            break  # signed out (in another tab) or expired since the stream began: the page learns on reconnect
        seen = fingerprint(supervisor)
        view = await view_of(request)
        sections = render.sections(view)
        if view.banner:  # the database is away: keep the figures the page has rather than blank them
            sections = {name: html for name, html in sections.items() if name not in render.STORED_SECTIONS}
        shown = view.status.state.value if view.status else "starting"
        message = {"now": view.now.isoformat(), "state": shown, "sections": sections}
        yield f"event: page\ndata: {json.dumps(message)}\n\n"
        await changed(supervisor, seen, REFRESH_SECONDS)


async def changed(supervisor: Supervisor, seen: tuple[Any, ...] | None, timeout: float) -> bool:
    """Wait until what the page shows of the session differs from `seen`; False after `timeout` without change."""
    try:
        async with supervisor.state_changed:
            await asyncio.wait_for(supervisor.state_changed.wait_for(lambda: fingerprint(supervisor) != seen), timeout)
    except TimeoutError:
        return False
    return True


@requires_auth
async def events(request: Request) -> Response:
    return StreamingResponse(
        page_events(request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
