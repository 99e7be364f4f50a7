"""The sender's pace as a pure function of the send times."""

from __future__ import annotations

import itertools
import random

from app.sending.sender import MAX_ATTEMPTS, RateLimiter, retry_delay


def run(limiter: RateLimiter, count: int, start: float = 1000.0) -> list[float]:
    """Send `count` messages as early as the limiter allows; return the send times."""
    now, times = start, []
    for _ in range(count):
        now += limiter.delay(now)
        limiter.record(now)
        times.append(now)
    return times


def test_spacing_at_least_the_interval_plus_a_small_random_extra() -> None:
    times = run(RateLimiter(per_minute=600, min_interval=2.0, rng=random.Random(7)), 50)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 2.0 and max(gaps) <= 2.5
    assert len({round(gap, 3) for gap in gaps}) > 40  # jittered, not a metronome


def test_per_minute_cap_holds_in_every_window() -> None:
    times = run(RateLimiter(per_minute=20, min_interval=0.5, rng=random.Random(1)), 100)
    for index in range(len(times) - 20):
        assert times[index + 20] - times[index] >= 60.0 - 1e-9  # the 21st send is a full minute after the 1st
    assert times[19] - times[0] < 15  # but a burst up to the cap is not slowed by the cap


def test_seeded_from_stored_sends_after_a_restart() -> None:
    limiter = RateLimiter(per_minute=3, min_interval=1.0, rng=random.Random(2))
    limiter.seed([990.0, 995.0, 999.0])  # three sends in the minute before the restart
    assert limiter.delay(1000.0) == 990.0 + 60 - 1000.0
    assert RateLimiter(per_minute=3, min_interval=1.0).delay(1000.0) == 0.0


def test_zero_interval_has_no_extra() -> None:
    times = run(RateLimiter(per_minute=600, min_interval=0.0), 5)
    assert times == [1000.0] * 5


def test_retry_delays_grow_and_are_jittered() -> None:
    rng = random.Random(3)
    delays = [retry_delay(attempt, rng) for attempt in range(1, MAX_ATTEMPTS + 1)]
    assert all(low < high for low, high in zip(delays, delays[2:], strict=False))
    assert 2.5 <= delays[0] <= 5.0 and delays[-1] <= 300.0
