"""Times as they cross the app's boundaries: ISO-8601 text from the worker, the API and the status dict."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """Now, aware and in UTC: every time the app stores or shows is aware."""
    return dt.datetime.now(dt.UTC)


def parse_time(value: object) -> dt.datetime | None:
    """An aware datetime from ISO-8601 text (naive text counts as UTC); None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
