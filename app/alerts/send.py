"""Where an alert goes: ALERT_WEBHOOK_URL (a Slack, Discord, Mattermost or similar incoming webhook) and Sentry.

The body carries the text twice, as `text` (Slack, Mattermost, Rocket.Chat, Google Chat, Teams' legacy connectors) and
as `content` (Discord, which refuses a body without it): each service ignores the key it does not know, so one body
works everywhere and nobody has to say which service the URL belongs to.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from app.backoff import Jitter
from app.backoff import backoff as delay
from app.db.database import describe
from app.observability import report_message

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds for one POST, connection included
TRIES = 3  # POSTs per send: the first and two retries ...
BACKOFF = 1.0  # ... after 1 s, then 2 s
DISCORD_LIMIT = 2000  # Discord refuses a longer `content`


def host_of(url: str) -> str:
    """The URL as logs may show it: scheme and host only. Incoming-webhook URLs carry their token in the path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}"


def body(text: str) -> dict[str, str]:
    text = text if len(text) <= DISCORD_LIMIT else text[: DISCORD_LIMIT - 1] + "…"
    return {"text": text, "content": text}


async def post(
    url: str, text: str, *, timeout: float = TIMEOUT, tries: int = TRIES, backoff: float = BACKOFF
) -> str | None:
    """POST the alert, retrying a failure with backoff; None once delivered, else what went wrong (never raises,
    never names the URL's path)."""
    import aiohttp  # only when an alert is sent: most processes never send one

    error = "not tried"
    for attempt in range(tries):
        if attempt:
            await asyncio.sleep(delay(attempt - 1, base=backoff, cap=TIMEOUT, jitter=Jitter.NONE))
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
                session.post(url, json=body(text), allow_redirects=False) as response,
            ):
                if 200 <= response.status < 300:
                    return None
                error = f"HTTP {response.status}"
                if 400 <= response.status < 500 and response.status not in (408, 429):
                    break  # a wrong URL or a refused body: the same request will be refused again
        except Exception as failure:  # aiohttp's errors, a timeout, an invalid URL: an outcome, never a crash
            error = describe(failure).replace(url, host_of(url))
        log.warning("alert to %s failed (try %d of %d): %s", host_of(url), attempt + 1, tries, error)
    return error


async def deliver(
    url: str | None, text: str, level: str, *, first: bool, tries: int = TRIES, backoff: float = BACKOFF
) -> str | None:
    """Send one alert or recovery everywhere configured; None if it went (or there was nowhere to send it), else the
    webhook's error. Sentry and the log have it on the first try only: a retry is for the webhook."""
    if first:
        log.log(logging.INFO if level == "info" else logging.WARNING, "alert: %s", text)
        report_message(text, level)
    if url is None:
        return None
    return await post(url, text, tries=tries, backoff=backoff)
