"""HTML of the status page's sections, built from the typed `Status` (app/status.py) alone, plus the current QR code,
and the frame every page shares.

Each section is rendered here both for the first page load (app/web/page.py) and for every live update (Server-Sent
Events send the same fragments), so there is one renderer and the browser's script only swaps them in and ticks the
clocks. Every value is escaped; no page carries inline script or style (the CSP forbids both). The figures of the
"Health" and "Storage and queues" cards are in app/web/figures.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import segno

from app import __version__
from app.session.states import State
from app.status import Status
from app.times import parse_time
from app.web import figures
from app.web.words import (
    ago,
    countdown,
    h,
    local_time,
    reason_words,
    state_name,
    with_local_times,
)
from app.whatsapp.backend import WHATSAPP_QR_SECONDS

STATE_LABELS = {
    "starting": "The process is starting.",
    "standby": "Another process holds the session. This one stands by and takes over when that process stops.",
    "connecting": "Connecting to WhatsApp…",
    "pairing": "Waiting for a phone to link this gateway.",
    "connected": "Connected to WhatsApp.",
    "reconnecting": "The connection dropped. Reconnecting.",
    "logged_out": "Not linked to a WhatsApp account.",
    "replaced": "Another client took over this WhatsApp session.",
    "banned": "WhatsApp has temporarily banned this account.",
    "stopped": "Stopped. It will not reconnect by itself.",
}
TONES = {
    "connected": "good",
    "pairing": "info",
    "starting": "busy",
    "connecting": "busy",
    "reconnecting": "busy",
    "standby": "idle",
    "logged_out": "warn",
    "replaced": "bad",
    "banned": "bad",
    "stopped": "bad",
}
# Where "Reconnect now" makes sense: the account is (or was) linked, this process holds the session, and WhatsApp
# would take a new connection (not during a ban: trying then can lengthen it).
RECONNECTABLE = ("connected", "reconnecting", "replaced", "stopped", "connecting")
HEALTHY_ACCOUNT = ("connected", "connecting", "reconnecting")  # the account box is shown as working
SECTIONS = ("banner", "session", "pairing", "qr", "health", "storage", "history")
STORED_SECTIONS = ("health", "storage", "history")  # figures read from Postgres
HISTORY_SHOWN = 10  # transitions on the page: each whole, never a scroll box that cuts one in half
LOGO = (
    '<svg class="logo" viewBox="0 0 32 32" aria-hidden="true"><circle cx="16" cy="16" r="15" fill="#1f9d55"/>'
    '<path d="M9 23l1.4-4.2A7.5 7.5 0 1 1 13.6 22z" fill="none" stroke="#fff" stroke-width="2" '
    'stroke-linejoin="round"/></svg>'
)


@dataclasses.dataclass
class View:
    """What one rendering of the status page shows."""

    status: Status | None  # None while the app is starting
    now: dt.datetime
    qr: dict[str, Any] | None = None  # the supervisor's current QR: payload, rotation, received_at
    qr_lifetimes: tuple[float, ...] = WHATSAPP_QR_SECONDS
    next_round_at: dt.datetime | None = None  # when all pairing rounds of the window are used: when one frees
    banner: str | None = None


def badge(state: str, small: bool = False) -> str:
    tone = TONES.get(state, "idle")
    return (
        f'<span class="badge tone-{tone}{" small" if small else ""}" data-state="{h(state)}">'
        f"{h(state_name(state))}</span>"
    )


def qr_svg(payload: str) -> str:
    """The QR code as inline SVG that scales with its box: black on white, a 4-module quiet zone."""
    svg: str = segno.make(payload, error="l").svg_inline(
        scale=1, border=4, dark="#000", light="#fff", omitsize=True, svgclass="qr-code", lineclass=None
    )
    return svg.replace("<svg ", '<svg role="img" aria-label="QR code to link WhatsApp" ', 1)


# ---- the sections -------------------------------------------------------------------------------------------------

# A few reasons change what the state means to a reader.
REASON_LABELS = {
    ("standby", "database_unavailable"): "Postgres is unavailable. The session waits for it; WhatsApp keeps the "
    "messages meanwhile.",
    ("reconnecting", "connection_lost"): "The connection dropped. WhatsApp's library is reconnecting by itself.",
}


def headline(state: str, reason: str) -> str:
    return REASON_LABELS.get((state, reason), STATE_LABELS.get(state, state))


def unlinked_note(status: Status, now: dt.datetime) -> str:
    """Why a linked gateway is back to pairing: who logged it out, and when (instead of a silent new QR)."""
    unlinked = status.unlinked
    if unlinked is None:
        return ""
    who = "It was logged out from this page" if unlinked.by_operator else "WhatsApp on the phone unlinked this gateway"
    return (
        f'<p class="unlinked" role="status">{who} {local_time(unlinked.at)} ({ago(unlinked.at, now)}). '
        "Messages stop until it is linked again: scan a new QR code below.</p>"
    )


def account_box(status: Status, state: str) -> str:
    account = status.account
    if account is None or state in ("pairing", "logged_out"):
        return ""
    healthy = state in HEALTHY_ACCOUNT
    caption = (
        ""
        if healthy
        else f'<p class="account-note">This account is linked but {"banned" if state == "banned" else "not connected"}'
        ": nothing is sent or received.</p>"
    )
    body = (
        f'<div><dt>Phone</dt><dd><span class="phone">{h(account.phone or account.jid)}</span></dd></div>'
        f'<div><dt>Name</dt><dd><span class="push-name">{h(account.push_name or "—")}</span></dd></div>'
    )
    css = "account" if healthy else "account unhealthy"
    return f'<dl class="{css}" data-healthy="{str(healthy).lower()}">{body}</dl>{caption}'


def session_section(view: View) -> str:
    status, now = view.status, view.now
    if status is None:
        return f'<div class="state-head">{badge("starting")}</div><p class="headline">{STATE_LABELS["starting"]}</p>'
    state = status.state.value
    parts = [
        '<div class="state-head">',
        badge(state),
        f'<span class="muted">since {ago(status.since, now)}</span>',
        "</div>",
        f'<p class="headline">{h(headline(state, status.reason))}</p>',
    ]
    if status.state is State.BANNED:
        if status.banned_until is not None:
            parts.append(
                f'<p class="next ban-end">The ban ends {local_time(status.banned_until)} '
                f"({countdown(status.banned_until, now, 'any moment')}). The gateway reconnects by itself then.</p>"
            )
        elif status.retry_at is not None:
            parts.append(
                '<p class="next">WhatsApp did not say when the ban ends. The gateway tries again '
                f"{countdown(status.retry_at, now)}.</p>"
            )
    else:
        if status.retry_at is not None:
            parts.append(f'<p class="next">Next attempt {countdown(status.retry_at, now)}</p>')
        if status.detail:
            parts.append(
                f'<p class="why" title="{h(reason_words(status.reason))}">{with_local_times(status.detail)}</p>'
            )
    parts.append(unlinked_note(status, now))
    if status.holder is not None:
        parts.append(
            f'<p class="note">The WhatsApp session belongs to <strong>{h(status.holder.process)}</strong> (its state: '
            f"{badge(status.holder.state.value, small=True)}). Stop that process, or keep one web dyno, to run it "
            "here. Actions are disabled in standby.</p>"
        )
    parts.append(account_box(status, state))
    actions = []
    if state in RECONNECTABLE:
        actions.append('<button type="button" data-action="reconnect">Reconnect now</button>')
    if status.state is State.CONNECTED:
        who = (status.account.phone or status.account.jid) if status.account else None
        actions.append(
            f'<button type="button" class="danger" data-action="logout" data-account="{h(who or "this account")}">'
            "Log out…</button>"
        )
    if actions:
        parts.append(f'<div class="actions">{"".join(actions)}</div>')
    return "".join(parts)


def pairing_section(view: View) -> str:
    status, now = view.status, view.now
    if status is None:
        return ""
    if status.state is State.PAIRING:
        return (
            "<h2>Link WhatsApp</h2>"
            '<ol class="steps"><li>Open WhatsApp on the phone.</li>'
            "<li>Tap <b>Settings</b> (or ⋮) → <b>Linked devices</b> → <b>Link a device</b>.</li>"
            "<li>Point the phone at this code.</li></ol>"
            '<div id="qr" class="qr-box" data-section="qr"></div>'
            '<details class="phone-link"><summary>Link with a phone number instead</summary>'
            '<form id="pair-code-form" class="pair-form" novalidate>'
            '<label for="pair-phone">Phone number of the WhatsApp account</label>'
            '<div class="row"><input id="pair-phone" name="phone" type="tel" inputmode="tel" autocomplete="off" '
            'placeholder="+6281234567890" required><button type="submit" class="primary">Get code</button></div>'
            '<p class="hint">International format: +&lt;country code&gt;&lt;number&gt;, digits only.</p>'
            '<p class="form-error" role="alert" hidden></p></form>'
            '<div class="pair-code" hidden><p>On that phone, tap the notification from WhatsApp, or go to '
            "<b>Linked devices</b> → <b>Link a device</b> → <b>Link with phone number instead</b>, "
            'and enter:</p><output class="code" aria-live="polite"></output></div>'
            "</details>"
        )
    if status.state is State.LOGGED_OUT:
        if status.reason == "pairing_expired":
            intro = "The QR code expired without being scanned."
        elif status.reason == "pairing_failed":
            intro = f"Linking failed: {status.detail or 'the phone refused the link'}"
        else:
            intro = "This gateway is not linked to a WhatsApp account. Link it to start receiving messages."
        left = status.pairing.rounds_left or 0
        if left > 0:
            button = '<button type="button" class="primary" data-action="pair">Show a new QR</button>'
            plural = "round" if left == 1 else "rounds"
            hint = f"{left} QR {plural} left in this 2-minute window (WhatsApp limits how often codes are shown)."
        else:
            button = '<button type="button" class="primary" data-action="pair" disabled>Show a new QR</button>'
            when = countdown(view.next_round_at, now) if view.next_round_at else "shortly"
            hint = f"Three QR rounds were shown in the last 2 minutes, WhatsApp's limit. A new one is possible {when}."
        return f'<h2>Link WhatsApp</h2><p>{h(intro)}</p><div class="actions">{button}</div><p class="hint">{hint}</p>'
    return ""


def qr_section(view: View) -> str:
    if view.status is None or view.status.state is not State.PAIRING or view.qr is None:
        return ""
    rotation = int(view.qr.get("rotation") or 1)
    received = parse_time(view.qr.get("received_at")) or view.now
    lifetimes = view.qr_lifetimes
    lifetime = lifetimes[min(rotation, len(lifetimes)) - 1]
    expires = received + dt.timedelta(seconds=lifetime)
    last = rotation >= len(lifetimes)
    then = "this round ends" if last else "a new code"
    return (
        f'<figure class="qr" data-rotation="{rotation}">{qr_svg(str(view.qr["payload"]))}</figure>'
        f'<p class="qr-meta">Code {rotation} of {len(lifetimes)} · {then} {countdown(expires, view.now, "any moment")}'
        "</p>"
    )


def health_section(view: View) -> str:
    return "<h2>Health</h2>" + figures.health(view.status, view.now) if view.status else ""


def storage_section(view: View) -> str:
    return "<h2>Storage and queues</h2>" + figures.storage(view.status, view.now) if view.status else ""


def history_section(view: View) -> str:
    transitions = view.status.recent_transitions[:HISTORY_SHOWN] if view.status else []
    if not transitions:
        return '<h2>Recent transitions</h2><p class="muted">None recorded yet.</p>'
    items = []
    for row in transitions:
        origin = f"{badge(row.from_.value, small=True)} → " if row.from_ else ""
        detail = f'<span class="detail">{with_local_times(row.detail)}</span>' if row.detail else ""
        items.append(
            f'<li><div class="when">{local_time(row.at)} · {ago(row.at, view.now)}</div>'
            f'<div class="what">{origin}{badge(row.to.value, small=True)}</div>'
            f'<span class="reason">{h(reason_words(row.reason))}</span>{detail}</li>'
        )
    return f'<h2>Recent transitions</h2><ol class="timeline">{"".join(items)}</ol>'


def banner_section(view: View) -> str:
    return f'<p class="banner-text">{h(view.banner)}</p>' if view.banner else ""


RENDERERS = {
    "banner": banner_section,
    "session": session_section,
    "pairing": pairing_section,
    "qr": qr_section,
    "health": health_section,
    "storage": storage_section,
    "history": history_section,
}


def sections(view: View) -> dict[str, str]:
    return {name: RENDERERS[name](view) for name in SECTIONS}


# ---- the frame of every page ---------------------------------------------------------------------------------------


def layout(title: str, body: str, *, csrf: str | None = None, script: bool = False, css: str = "") -> str:
    meta = f'<meta name="csrf-token" content="{h(csrf)}">' if csrf else ""
    js = f'<script src="/static/page.js?v={__version__}" defer></script>' if script else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow"><meta name="referrer" content="same-origin">'
        f"{meta}<title>{h(title)} · WhatsApp gateway</title>"
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
        f'<link rel="stylesheet" href="/static/page.css?v={__version__}">{js}</head>'
        f'<body class="{h(css)}">{body}</body></html>'
    )
