"""Whether phone numbers are on WhatsApp: answers kept in `contact_checks` for CHECK_CACHE_DAYS, and look-ups at
WhatsApp paced, because bulk checks get accounts banned.

The pace is counted from the stored look-ups themselves (their `checked_at`), so it holds across restarts: at most
LIMITS numbers per window. A request that would go past it is refused as a whole (RateLimited, with how long to
wait), before anything is asked; answers from the cache never count. Only the process holding the session asks
WhatsApp, and one request asks at a time (a lock), so two requests cannot both slip under the limit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Awaitable, Callable
from typing import Any

from app.db.database import Database
from app.times import utcnow

# (window in seconds, numbers looked up at WhatsApp in it at most)
LIMITS = ((60, 50), (3600, 500))

CACHED = """
SELECT phone, on_whatsapp, jid, checked_at FROM contact_checks
WHERE phone = ANY($1::text[]) AND checked_at > now() - make_interval(days => $2)"""
# The look-ups of the longest window, oldest first: how many fall in each window, and when the oldest leave it.
RECENT = "SELECT checked_at FROM contact_checks WHERE checked_at > now() - make_interval(secs => $1) ORDER BY 1"
STORE = """
INSERT INTO contact_checks (phone, on_whatsapp, jid, checked_at)
SELECT * FROM unnest($1::text[], $2::boolean[], $3::text[], $4::timestamptz[])
ON CONFLICT (phone) DO UPDATE SET on_whatsapp = excluded.on_whatsapp, jid = excluded.jid,
                                  checked_at = excluded.checked_at"""
# Answers past the cache's age serve nobody; they go as new look-ups are stored (the index on checked_at serves both).
PRUNE = "DELETE FROM contact_checks WHERE checked_at < now() - make_interval(days => $1)"

LookUp = Callable[[list[str]], Awaitable[dict[str, Any]]]  # phones -> {"results": [{phone, on_whatsapp, jid}]}


class RateLimited(Exception):
    """Checking these numbers now would go past the pace; `retry_after` seconds from now it would not."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def wait_for_room(recent: list[dt.datetime], wanted: int, now: dt.datetime) -> tuple[str, int] | None:
    """(the limit that `wanted` more look-ups would break, seconds until they fit), or None if they fit now."""
    for window, most in LIMITS:
        since = now - dt.timedelta(seconds=window)
        inside = [at for at in recent if at > since]
        excess = len(inside) + wanted - most
        if excess > 0:
            if wanted > most:
                return f"at most {most} numbers can be checked in {window} s", window
            leaves = inside[excess - 1] + dt.timedelta(seconds=window)  # once this one leaves, they fit
            return f"at most {most} numbers are checked at WhatsApp per {window} s", max(
                1, math.ceil((leaves - now).total_seconds())
            )
    return None


class NumberChecker:
    def __init__(self, database: Database, look_up: LookUp, cache_days: int) -> None:
        self.database = database
        self.look_up = look_up
        self.cache_days = cache_days  # CHECK_CACHE_DAYS
        self._lock = asyncio.Lock()

    async def check(self, phones: list[str]) -> list[dict[str, Any]]:
        """{phone, on_whatsapp, jid, checked_at, cached} for each phone ('+<digits>', distinct), in order."""
        async with self._lock:
            async with self.database.connection() as connection:
                rows = await connection.fetch(CACHED, phones, self.cache_days)
                known = {row["phone"]: {**dict(row), "cached": True} for row in rows}
                missing = [phone for phone in phones if phone not in known]
                if missing:
                    recent = [row["checked_at"] for row in await connection.fetch(RECENT, LIMITS[-1][0])]
                    full = wait_for_room(recent, len(missing), utcnow())
                    if full is not None:
                        reason, retry_after = full
                        raise RateLimited(
                            f"{reason} (bulk checks get accounts banned); {len(missing)} of these are not cached: "
                            f"try again in {retry_after} s",
                            retry_after,
                        )
            if missing:
                answered = (await self.look_up(missing))["results"]
                now = utcnow()
                async with self.database.transaction() as connection:
                    await connection.execute(
                        STORE,
                        [str(item["phone"]) for item in answered],
                        [bool(item["on_whatsapp"]) for item in answered],
                        [item.get("jid") for item in answered],
                        [now] * len(answered),
                    )
                    await connection.execute(PRUNE, self.cache_days)
                for item in answered:
                    known[str(item["phone"])] = {
                        "phone": str(item["phone"]),
                        "on_whatsapp": bool(item["on_whatsapp"]),
                        "jid": item.get("jid"),
                        "checked_at": now,
                        "cached": False,
                    }
        return [
            {**known[phone], "checked_at": known[phone]["checked_at"].isoformat()} for phone in phones if phone in known
        ]
