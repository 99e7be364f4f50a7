"""`python -m app status`: what the page shows, as plain text, read from Postgres by a process of its own (a
`heroku run` dyno, a cron job); exit 0 when the session is connected, 1 when not, 2 when Postgres cannot be reached.

The text is the page's own sections (app/web/render.py) with the markup taken off, so the two never say different
things; times are in UTC (said so) because a terminal has no browser to turn them into local ones.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from html.parser import HTMLParser
from typing import TextIO

import asyncpg

from app.session.states import State
from app.settings import Settings
from app.status import MediaSettings, Status, heartbeat_stale, is_connected, stored_status
from app.web import render
from app.web.words import span, state_name

log = logging.getLogger(__name__)

CONNECTED, NOT_CONNECTED, UNREACHABLE = 0, 1, 2
CONNECT_TIMEOUT = 10.0
SKIPPED = {"button", "dialog", "form", "details", "svg", "script", "style", "figure"}
SHOWN = ("session", "health", "storage", "history")


class PlainText(HTMLParser):
    """HTML of a section -> lines: headings as they are, each figure as "name: value", list items indented."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.in_item = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        css = dict(attrs).get("class") or ""
        if tag in SKIPPED:
            self.skipping += 1
        elif tag == "li":
            self.in_item = True
            self.out.append("\n  - ")
        elif tag in ("h2", "p", "div", "dl", "br") and not self.in_item:
            self.out.append("\n")
        elif tag == "dt":
            self.out.append("\n  ")
        elif tag == "dd":
            self.out.append(": ")
        elif "reason" in css.split() or "detail" in css.split():
            self.out.append(" — ")
        elif tag in ("span", "time", "div", "br"):
            self.out.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "li":
            self.in_item = False
        elif tag in ("h2", "p"):
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(re.sub(r"\s+", " ", data))

    def text(self) -> str:
        lines = []
        for line in "".join(self.out).split("\n"):
            indent = "  " if line.startswith("  ") else ""
            words = re.sub(r" {2,}", " ", line).replace("( ", "(").replace(" )", ")").strip()
            if words:
                lines.append(indent + words)
        return "\n".join(lines)


def plain(html: str) -> str:
    parser = PlainText()
    parser.feed(html)
    parser.close()
    return parser.text()


def describe(status: Status) -> str:
    """The page's cards as text, with a first line that says the state and whether it can be believed."""
    view = render.View(status, status.checked_at)
    sections = render.sections(view)
    head = f"WhatsApp gateway: {state_name(status.state.value)}"
    lines = [head, "=" * len(head)]
    if status.state is not State.STOPPED and heartbeat_stale(status, status.checked_at):
        quiet = max(filter(None, (status.last_heartbeat_at, status.updated_at, status.since)))
        lines.append(
            f"Warning: {status.process}, which holds the session, has not reported for "
            f"{span((status.checked_at - quiet).total_seconds())}: it may not be running."
        )
    for name in SHOWN:
        if sections[name]:
            lines.append(plain(sections[name]))
            lines.append("")
    lines.append(f"Read from Postgres at {status.checked_at:%Y-%m-%d %H:%M:%S} UTC · version {status.version}")
    return "\n".join(lines)


async def read(settings: Settings) -> Status:
    assert settings.database_url
    connection = await asyncpg.connect(settings.database_url, timeout=CONNECT_TIMEOUT)
    try:
        return await stored_status(
            connection,
            backend=settings.whatsapp_backend,
            heartbeat_interval=settings.heartbeat_interval,
            webhooks_configured=bool(settings.webhook_urls),
            media=MediaSettings.of(settings),
        )
    finally:
        await connection.close()


def run(settings: Settings, out: TextIO = sys.stdout) -> int:
    from app.db.database import start_failure

    assert settings.database_url
    try:
        status = asyncio.run(read(settings))
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        reason = start_failure(settings.database_url, error) or str(error)
        print(f"cannot read the status: {reason}", file=sys.stderr)
        return UNREACHABLE
    print(describe(status), file=out)
    return CONNECTED if is_connected(status) else NOT_CONNECTED
