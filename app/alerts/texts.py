"""What each alert says: what happened, when (in UTC), and what the operator should do; and its recovery message.

Texts go to a chat channel and to Sentry, so they carry no secret and no message content: the caller scrubs the
configured secrets out of them once more before they are stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.webhooks.outbox import display_url

PREFIX = "WhatsApp gateway"
DETAIL_LIMIT = 300  # a library's error text can be long; the alert must stay readable (Discord stops at 2000)

LOGGED_OUT = "logged_out"
BANNED = "banned"
STOPPED = "stopped"
RECONNECTING = "reconnecting"
DEAD_LETTERS = "dead_letters"
WORKER_MEMORY = "worker_memory"
SESSION_KINDS = (LOGGED_OUT, BANNED, STOPPED, RECONNECTING, WORKER_MEMORY)  # cleared by being connected again
# Incidents that already told a person the session is down: a long reconnect on top of them says nothing new.
NEEDS_A_PERSON = (LOGGED_OUT, BANNED, STOPPED)

# Sentry levels: the session down for good until someone acts is an error; the rest are warnings.
LEVELS = {LOGGED_OUT: "error", BANNED: "error", STOPPED: "error"}

WHAT_RECOVERED = {
    LOGGED_OUT: "the device was unlinked",
    BANNED: "WhatsApp's temporary ban",
    STOPPED: "the session was stopped",
    RECONNECTING: "the session was reconnecting",
    WORKER_MEMORY: "the memory watchdog replaced the worker",
}


def when(at: dt.datetime) -> str:
    return f"{at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


def short(detail: str | None) -> str:
    text = " ".join((detail or "").split())
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"


def logged_out(at: dt.datetime, detail: str | None) -> str:
    return (
        f"{PREFIX}: WhatsApp logged this device out at {when(at)} ({short(detail)}). No messages arrive until it is "
        "linked again. What to do: open the gateway's page and scan the QR code with WhatsApp on the phone "
        "(Settings > Linked devices > Link a device)."
    )


def banned(at: dt.datetime, detail: str | None, retry_at: dt.datetime | None) -> str:
    until = f" The gateway tries again by itself at about {when(retry_at)}." if retry_at else ""
    return (
        f"{PREFIX}: WhatsApp banned this account temporarily at {when(at)} ({short(detail)}).{until} "
        "What to do: check WhatsApp on the phone for a notice, and send nothing from this number until the ban ends; "
        "repeated bans usually mean the number is sending too much to people who did not ask for it."
    )


def stopped(at: dt.datetime, reason: str, detail: str | None) -> str:
    if reason == "replaced":
        advice = (
            "another client (WhatsApp Web, a desktop app, or a second deployment with the same login) keeps taking "
            "this session. Close it, then press 'Reconnect now' on the gateway's page."
        )
    else:
        advice = "WhatsApp refuses this client version. Upgrade the gateway and redeploy; it reconnects at start."
    return f"{PREFIX}: the session stopped at {when(at)} ({short(detail)}). What to do: {advice}"


def reconnecting(since: dt.datetime, now: dt.datetime, detail: str | None) -> str:
    minutes = max(1, round((now - since).total_seconds() / 60))
    return (
        f"{PREFIX}: not connected to WhatsApp since {when(since)} ({minutes} min; {short(detail)}). The gateway keeps "
        "retrying by itself. What to do: check the server's network and WhatsApp's service status; the page shows "
        "each attempt, and 'Reconnect now' starts one at once."
    )


def worker_memory(at: dt.datetime, detail: str | None) -> str:
    return (
        f"{PREFIX}: the memory watchdog replaced the WhatsApp worker at {when(at)} ({short(detail)}). Nothing was "
        "lost, and the session reconnects by itself. What to do: nothing now; if it repeats often, raise "
        "WORKER_MAX_RSS_MB or report a leak with the page's recent transitions."
    )


def dead_letters(now: dt.datetime, count: int, newest: dict[str, Any] | None) -> str:
    many = "10,000 or more deliveries" if count >= 10000 else f"{count} deliveries" if count > 1 else "1 delivery"
    were = "was" if count == 1 else "were"
    latest = ""
    if newest is not None:
        error = newest["last_error"] or (f"HTTP {newest['last_status']}" if newest["last_status"] else "no answer")
        at = f" at {when(newest['last_attempt_at'])}" if newest["last_attempt_at"] else ""
        latest = f" The latest, to {display_url(newest['url'])}, failed{at}: {short(error)}."
    return (
        f"{PREFIX}: {many} to the webhook failed for 72 hours and {were} dead-lettered (seen {when(now)}).{latest} "
        'What to do: fix the receiver, then replay them with POST /api/webhooks/deliveries/retry {"status": "dead"}.'
    )


def recovery(kind: str, opened_at: dt.datetime, now: dt.datetime) -> str:
    if kind == DEAD_LETTERS:
        return f"{PREFIX}: resolved at {when(now)}: no dead-lettered webhook deliveries are left."
    return (
        f"{PREFIX}: resolved: connected to WhatsApp again at {when(now)} "
        f"({WHAT_RECOVERED.get(kind, kind)} at {when(opened_at)})."
    )
