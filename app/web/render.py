"""HTML of the status page's sections, built from `session_status()` alone (plus the current QR code), and the frame
every page shares.

Each section is rendered here both for the first page load (app/web/page.py) and for every live update (Server-Sent
Events send the same fragments), so there is one renderer and the browser's script only swaps them in and ticks the
clocks. Every value is escaped; no page carries inline script or style (the CSP forbids both).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from typing import Any

import segno

from app import __version__
from app.times import parse_time
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
# Where "Reconnect now" makes sense: the account is (or was) linked and this process holds the session.
RECONNECTABLE = ("connected", "reconnecting", "replaced", "banned", "stopped", "connecting")
SECTIONS = ("banner", "session", "pairing", "qr", "health", "storage", "history")
STORED_SECTIONS = ("health", "storage", "history")  # figures read from Postgres
LOGO = (
    '<svg class="logo" viewBox="0 0 32 32" aria-hidden="true"><circle cx="16" cy="16" r="15" fill="#1f9d55"/>'
    '<path d="M9 23l1.4-4.2A7.5 7.5 0 1 1 13.6 22z" fill="none" stroke="#fff" stroke-width="2" '
    'stroke-linejoin="round"/></svg>'
)


def h(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


@dataclasses.dataclass
class View:
    """What one rendering of the status page shows."""

    status: dict[str, Any]
    now: dt.datetime
    qr: dict[str, Any] | None = None  # the supervisor's current QR: payload, rotation, received_at
    qr_lifetimes: tuple[float, ...] = WHATSAPP_QR_SECONDS
    next_round_at: dt.datetime | None = None  # when all pairing rounds of the window are used: when one frees
    banner: str | None = None


# ---- small pieces -------------------------------------------------------------------------------------------------


def span(seconds: float) -> str:
    """A duration as people read it: 42 s, 5 min, 3 h 10 min, 2 d 4 h (same rules as page.js)."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(seconds // 3600, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def ago(moment: dt.datetime, now: dt.datetime, *, stale_after: float | None = None) -> str:
    """A <time> the page's script keeps ticking: "12 s ago"."""
    stale = stale_after is not None and (now - moment).total_seconds() > stale_after
    extra = f' data-stale-after="{stale_after:g}"' if stale_after is not None else ""
    return (
        f'<time class="ago{" stale" if stale else ""}" datetime="{h(moment.isoformat())}" '
        f'data-since="{h(moment.isoformat())}"{extra} title="{h(clock(moment))}">'
        f"{span((now - moment).total_seconds())} ago</time>"
    )


def countdown(moment: dt.datetime, now: dt.datetime, done: str = "now") -> str:
    """A <time> counting down to `moment`: "in 17 s", then `done`."""
    left = (moment - now).total_seconds()
    text = f"in {span(left)}" if left > 0 else done
    return (
        f'<time class="countdown" datetime="{h(moment.isoformat())}" data-until="{h(moment.isoformat())}" '
        f'data-done="{h(done)}" title="{h(clock(moment))}">{text}</time>'
    )


def clock(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def badge(state: str, small: bool = False) -> str:
    tone = TONES.get(state, "idle")
    return f'<span class="badge tone-{tone}{" small" if small else ""}" data-state="{h(state)}">{h(state)}</span>'


def rows(items: list[tuple[str, str]], css: str = "figures") -> str:
    """A definition list; values are HTML already (escape before)."""
    body = "".join(f"<div><dt>{h(name)}</dt><dd>{value}</dd></div>" for name, value in items)
    return f'<dl class="{css}">{body}</dl>'


def generic(value: object, depth: int = 0) -> str:
    """Whatever another part of the app puts in the status (webhooks, import, queues), readable and escaped."""
    if isinstance(value, dict):
        if depth >= 2:
            return h(", ".join(f"{k}: {v}" for k, v in value.items()))
        items = [(str(key).replace("_", " "), generic(item, depth + 1)) for key, item in value.items()]
        return rows(items, "figures nested") if items else '<span class="muted">none</span>'
    if isinstance(value, list):
        return h(", ".join(str(item) for item in value)) if value else '<span class="muted">none</span>'
    if value is None:
        return '<span class="muted">—</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    return h(value)


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


def headline(state: str, reason: object) -> str:
    return REASON_LABELS.get((state, str(reason)), STATE_LABELS.get(state, state))


def session_section(view: View) -> str:
    status, now = view.status, view.now
    state = str(status.get("state"))
    since = parse_time(status.get("since")) or now
    parts = [
        '<div class="state-head">',
        badge(state),
        f'<span class="muted">since {ago(since, now)}</span>',
        "</div>",
        f'<p class="headline">{h(headline(state, status.get("reason")))}</p>',
    ]
    retry_at = parse_time(status.get("retry_at"))
    if retry_at is not None:
        verb = "Waiting until the ban ends:" if state == "banned" else "Next attempt"
        parts.append(f'<p class="next">{verb} {countdown(retry_at, now)}</p>')
    reason, detail = status.get("reason"), status.get("detail")
    if reason or detail:
        parts.append(
            f'<p class="why"><span class="reason">{h(reason)}</span>'
            + (f' <span class="detail">{h(detail)}</span>' if detail else "")
            + "</p>"
        )
    if state == "standby":
        holder = status.get("holder") or {}
        parts.append(
            '<p class="note">The WhatsApp session belongs to '
            f"<strong>{h(holder.get('process') or 'another process')}</strong>"
            + (f" (its state: {badge(str(holder['state']), small=True)})" if holder.get("state") else "")
            + ". Stop that process, or keep one web dyno, to run it here. Actions are disabled in standby.</p>"
        )
    account = status.get("account")
    if account and state not in ("pairing", "logged_out"):
        parts.append(
            rows(
                [
                    ("Phone", f'<span class="phone">{h(account.get("phone") or account.get("jid"))}</span>'),
                    ("Name", f'<span class="push-name">{h(account.get("push_name") or "—")}</span>'),
                ],
                "account",
            )
        )
    actions = []
    if state in RECONNECTABLE:
        actions.append('<button type="button" data-action="reconnect">Reconnect now</button>')
    if state == "connected":
        who = (account or {}).get("phone") or (account or {}).get("jid") or "this account"
        actions.append(
            f'<button type="button" class="danger" data-action="logout" data-account="{h(who)}">Log out…</button>'
        )
    if actions:
        parts.append(f'<div class="actions">{"".join(actions)}</div>')
    return "".join(parts)


def pairing_section(view: View) -> str:
    status, now = view.status, view.now
    state = status.get("state")
    pairing = status.get("pairing") or {}
    if state == "pairing":
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
    if state == "logged_out":
        reason = status.get("reason")
        if reason == "pairing_expired":
            intro = "The QR code expired without being scanned."
        elif reason == "pairing_failed":
            intro = f"Linking failed: {status.get('detail') or 'the phone refused the link'}"
        else:
            intro = "This gateway is not linked to a WhatsApp account. Link it to start receiving messages."
        left = int(pairing.get("rounds_left") or 0)
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
    if view.status.get("state") != "pairing" or view.qr is None:
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
    status, now = view.status, view.now
    interval = float(status.get("heartbeat_interval") or 30)
    beat = parse_time(status.get("last_heartbeat_at"))
    if beat is None:
        heartbeat = f'<span class="muted">none yet</span> <span class="muted">(every {interval:g} s)</span>'
    else:
        ok = status.get("heartbeat_ok")
        verdict = "" if ok is None else (" · ok" if ok else ' · <span class="bad">failed</span>')
        heartbeat = (
            f'{ago(beat, now, stale_after=2 * interval + 5)} <span class="muted">every {interval:g} s{verdict}</span>'
        )
    uptime = status.get("uptime_24h_percent")
    items = [
        ("Heartbeat", heartbeat),
        ("Uptime, 24 h", f"{uptime:g} %" if isinstance(uptime, int | float) else '<span class="muted">—</span>'),
        ("Disconnects, 24 h", h(status.get("disconnects_24h", "—"))),
        ("Reconnects, 24 h", h(status.get("reconnects_24h", "—"))),
    ]
    last_connected = parse_time(status.get("last_connected_at"))
    if last_connected is not None and status.get("state") != "connected":
        items.append(("Last connected", ago(last_connected, now)))
    worker = status.get("worker")
    if worker:
        # Whole seconds, so that the section is the same from one refresh to the next (page.js keeps it ticking).
        started = (now - dt.timedelta(seconds=float(worker.get("uptime_seconds") or 0))).replace(microsecond=0)
        items.append(
            (
                "Worker",
                f"pid {h(worker.get('pid'))} · run {h(worker.get('generation'))} · up "
                f'<time class="ago bare" data-since="{h(started.isoformat())}">{span((now - started).total_seconds())}'
                "</time>",
            )
        )
    else:
        items.append(("Worker", '<span class="muted">not running</span>'))
    return "<h2>Health</h2>" + rows(items)


def storage_section(view: View) -> str:
    status = view.status
    store = status.get("auth_store") or {}
    devices = store.get("devices")
    if "devices" not in store:
        device = "device unknown"
    elif devices is None:
        device = "no device store yet"
    elif devices:
        device = "device present" if devices == 1 else f"{devices} devices present"
    else:
        device = "no device (not linked)"
    kind = "Postgres" if store.get("kind") == "postgres" else h(store.get("kind") or "—")
    items = [("Auth state", f"{kind} · {h(device)} <span class='muted'>({h(store.get('backend'))})</span>")]
    if "import" in store:
        items.append(("File-auth import", generic(store["import"])))
    outbox = status.get("outbox")
    if isinstance(outbox, dict) and outbox:
        shown = {key: value for key, value in outbox.items() if key != "events"}
        events = outbox.get("events")
        text = f"{h(events)} events stored" if events is not None else ""
        items.append(("Outbox", " · ".join(filter(None, [text, generic(shown) if shown else ""]))))
    elif outbox is not None:
        items.append(("Outbox", generic(outbox)))
    if "webhooks" in status:
        items.append(("Webhooks", generic(status["webhooks"])))
    for key in ("send_queue", "queue", "messages"):
        if key in status:
            items.append(("Send queue", generic(status[key])))
            break
    return "<h2>Storage and queues</h2>" + rows(items)


def history_section(view: View) -> str:
    transitions = view.status.get("recent_transitions") or []
    if not transitions:
        return '<h2>Recent transitions</h2><p class="muted">None recorded yet.</p>'
    items = []
    for row in transitions:
        at = parse_time(row.get("at")) or view.now
        origin = f'<span class="from">{h(row.get("from") or "—")}</span> → ' if row.get("from") else ""
        detail = f'<span class="detail">{h(row["detail"])}</span>' if row.get("detail") else ""
        items.append(
            f'<li><div class="when"><time class="clock" datetime="{h(at.isoformat())}">{at:%H:%M:%S}</time> '
            f"{ago(at, view.now)}</div>"
            f'<div class="what">{origin}{badge(str(row.get("to")), small=True)} '
            f'<span class="reason">{h(row.get("reason"))}</span></div>{detail}</li>'
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
