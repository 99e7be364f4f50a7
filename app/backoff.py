"""The one exponential backoff: `base * 2**attempt` capped, with full, equal or no jitter, and a floor.

Every retry in the app draws its delay here: the session's reconnects (full jitter), failed sends and webhook
deliveries (equal jitter: never much sooner than planned) and the loops that wait out a Postgres outage (none).
"""

from __future__ import annotations

import enum
import random


class Jitter(enum.Enum):
    FULL = "full"  # uniform over [0, ceiling]: spreads retries the most (many clients after one outage)
    EQUAL = "equal"  # uniform over [ceiling / 2, ceiling]: spread, but never much sooner than the schedule says
    NONE = "none"  # the ceiling itself: one loop waiting for one server, nobody to spread out from


def backoff(
    attempt: int,
    *,
    base: float,
    cap: float,
    jitter: Jitter = Jitter.FULL,
    floor: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number `attempt` + 1 (`attempt` 0 waits up to `base`)."""
    ceiling = min(cap, base * 2.0 ** min(max(attempt, 0), 64))  # the exponent is bounded: 2**64 * base > any cap
    if jitter is Jitter.FULL:
        delay = (rng or random).uniform(0, ceiling)
    elif jitter is Jitter.EQUAL:
        delay = (rng or random).uniform(ceiling / 2, ceiling)
    else:
        delay = ceiling
    return max(floor, delay)
