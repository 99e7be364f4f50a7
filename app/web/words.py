"""The page's vocabulary: states and reasons in words a shop owner reads, durations, local times and long values
shortened. Every function returns escaped HTML; the browser's script (static/page.js) turns each <time> into the
reader's local time and keeps durations ticking."""

from __future__ import annotations

import datetime as dt
import html
import re

STATE_NAMES = {
    "starting": "Starting",
    "standby": "Standing by",
    "connecting": "Connecting",
    "pairing": "Waiting to be linked",
    "connected": "Connected",
    "reconnecting": "Reconnecting",
    "logged_out": "Not linked",
    "replaced": "Taken over",
    "banned": "Banned",
    "stopped": "Stopped",
}
REASONS = {
    "connecting": "connecting",
    "qr_offered": "QR code shown",
    "paired": "linked with the QR code",
    "logged_in": "connected with the stored login",
    "reconnected": "reconnected by itself",
    "connection_lost": "the connection dropped",
    "dial_failed": "WhatsApp could not be reached",
    "connect_failure": "WhatsApp refused the connection",
    "worker_crashed": "the WhatsApp process crashed",
    "worker_hung": "the WhatsApp process stopped answering",
    "heartbeat_lost": "the heartbeat found the link down",
    "logged_out": "logged out",
    "pairing_expired": "the QR code expired unscanned",
    "pairing_failed": "the phone refused the link",
    "replaced": "another client took over",
    "banned": "banned by WhatsApp",
    "outdated": "WhatsApp refused this client version",
    "bad_user_agent": "WhatsApp refuses this client",
    "pump_ended": "the library stopped passing messages on",
    "worker_memory": "the WhatsApp process used too much memory and was replaced",
    "shutdown": "the app stopped",
    "process_lost": "the app ended without shutting down",
    "lease_lost": "lost the session to another process",
    "lease_held_elsewhere": "another process holds the session",
    "database_unavailable": "the database is unavailable",
    "supervisor_failed": "the session supervisor failed",
}
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2}|Z)?")
LONG = 64  # characters of a URL or path shown whole; longer ones are shortened in the middle (whole in the title)


def h(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def state_name(state: str) -> str:
    return STATE_NAMES.get(state, state.replace("_", " ").capitalize())


def reason_words(reason: str) -> str:
    return REASONS.get(reason, reason.replace("_", " "))


def count(number: int, one: str, many: str | None = None) -> str:
    return f"{number:,} {one if number == 1 else (many or one + 's')}"


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


def utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%d %b %Y, %H:%M UTC")


def local_time(moment: dt.datetime) -> str:
    """A moment the script rewrites in the reader's local time; until then (or without script), in UTC, said so."""
    iso = h(moment.isoformat())
    return f'<time class="local" datetime="{iso}">{h(utc_text(moment))}</time>'


def ago(moment: dt.datetime, now: dt.datetime, *, stale_after: float | None = None) -> str:
    """A <time> the page's script keeps ticking: "12 s ago"."""
    stale = stale_after is not None and (now - moment).total_seconds() > stale_after
    extra = f' data-stale-after="{stale_after:g}"' if stale_after is not None else ""
    return (
        f'<time class="ago{" stale" if stale else ""}" datetime="{h(moment.isoformat())}" '
        f'data-since="{h(moment.isoformat())}"{extra} title="{h(utc_text(moment))}">'
        f"{span((now - moment).total_seconds())} ago</time>"
    )


def countdown(moment: dt.datetime, now: dt.datetime, done: str = "now") -> str:
    """A <time> counting down to `moment`: "in 17 s", then `done`."""
    left = (moment - now).total_seconds()
    text = f"in {span(left)}" if left > 0 else done
    return (
        f'<time class="countdown" datetime="{h(moment.isoformat())}" data-until="{h(moment.isoformat())}" '
        f'data-done="{h(done)}" title="{h(utc_text(moment))}">{text}</time>'
    )


def with_local_times(text: str | None) -> str:
    """Free text (a detail from the trail) escaped, with any ISO-8601 time in it shown as a local time."""
    if not text:
        return ""
    parts, last = [], 0
    for found in ISO_TIME.finditer(text):
        parts.append(h(text[last : found.start()]))
        try:
            moment = dt.datetime.fromisoformat(found.group(0).replace("Z", "+00:00"))
        except ValueError:
            parts.append(h(found.group(0)))
        else:
            parts.append(local_time(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)))
        last = found.end()
    parts.append(h(text[last:]))
    return "".join(parts)


def shortened(value: str, limit: int = LONG) -> str:
    """A long URL or path cut in the middle (its start and its end say the most), whole in the title; it also wraps."""
    if len(value) <= limit:
        return f'<span class="long">{h(value)}</span>'
    keep = (limit - 1) // 2
    return f'<span class="long" title="{h(value)}">{h(value[:keep])}…{h(value[-keep:])}</span>'
