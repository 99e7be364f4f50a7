"""The login throttle: failed password attempts per client address are slowed down, then refused (429).

In memory, on purpose: there is exactly one web process (the session lease guarantees it matters for nothing else),
and a restart resetting the counters costs an attacker a restart's worth of guesses at most: a few dozen a day.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from collections.abc import Callable

from starlette.requests import Request

from app.backoff import Jitter, backoff


@dataclasses.dataclass
class Verdict:
    allowed: bool
    delay: float = 0.0  # seconds to wait before answering this attempt
    retry_after: int = 0  # when refused: seconds until the next attempt can be made


class LoginThrottle:
    """`free` failures per `window` answer at once; the next ones wait `base_delay` doubling up to `max_delay`;
    after `limit` failures within the window the address is refused until its oldest failure leaves the window."""

    def __init__(
        self,
        *,
        free: int = 3,
        limit: int = 10,
        window: float = 15 * 60,
        base_delay: float = 1.0,
        max_delay: float = 8.0,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.limit, self.window = free, limit, window
        self.base_delay, self.max_delay = base_delay, max_delay
        self.max_addresses = max_addresses
        self.clock = clock
        self._failures: dict[str, collections.deque[float]] = {}

    def _recent(self, address: str) -> collections.deque[float]:
        now = self.clock()
        failures = self._failures.get(address)
        if failures is None:
            if len(self._failures) >= self.max_addresses:
                self._prune(now)
            failures = self._failures[address] = collections.deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def _prune(self, now: float) -> None:
        for address in [a for a, f in self._failures.items() if not f or f[-1] <= now - self.window]:
            del self._failures[address]
        while len(self._failures) >= self.max_addresses:  # still full: forget the quietest addresses
            del self._failures[min(self._failures, key=lambda a: self._failures[a][-1])]

    def attempt(self, address: str) -> Verdict:
        """Call before checking a password. The attempt counts as a failure until `succeeded` says otherwise, so
        concurrent guesses cannot slip past the limit."""
        failures = self._recent(address)
        if len(failures) >= self.limit:
            return Verdict(False, retry_after=max(1, math.ceil(failures[0] + self.window - self.clock())))
        excess = len(failures) - self.free
        delay = 0.0 if excess < 0 else backoff(excess, base=self.base_delay, cap=self.max_delay, jitter=Jitter.NONE)
        failures.append(self.clock())
        return Verdict(True, delay=delay)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def failures(self, address: str) -> int:
        return len(self._recent(address))


def client_address(request: Request) -> str:
    """The address to count failures against: the TCP peer, or, deployed, the client as the platform's router
    named it (the last entry of X-Forwarded-For, the one nobody but the router wrote: app/asgi.py)."""
    return (request.client.host[:64] or "-") if request.client else "-"
