"""When a failed delivery is tried again: exponential backoff with jitter, until a fixed window has passed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from app.backoff import Jitter, backoff


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Attempt n+1 comes `min(cap, base * 2**(n-1))` seconds after attempt n, less up to half of that at random
    (so receivers coming back are not hit by every chat at once); after `give_up_after` the delivery is dead."""

    base: float = 5.0
    cap: float = 900.0
    give_up_after: dt.timedelta = dt.timedelta(hours=72)

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        return backoff(attempts - 1, base=self.base, cap=self.cap, jitter=Jitter.EQUAL, rng=rng)

    def next_attempt(
        self, attempts: int, window_start: dt.datetime, now: dt.datetime, rng: random.Random
    ) -> dt.datetime | None:
        """When to try again after `attempts` failed attempts, or None: give up, the delivery is dead.

        The last attempt is made at the end of the window, so a receiver that comes back just in time still gets it."""
        deadline = window_start + self.give_up_after
        if now >= deadline:
            return None
        return min(now + dt.timedelta(seconds=self.delay(attempts, rng)), deadline)


DEFAULT = RetryPolicy()
