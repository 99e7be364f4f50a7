"""The retry schedule: exponential, jittered, capped, and ending in dead after the window."""

from __future__ import annotations

import datetime as dt
import random

from app.webhooks.retry import DEFAULT, RetryPolicy

START = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)


def test_delays_double_from_5_s_up_to_15_min_within_the_upper_half() -> None:
    rng = random.Random(7)  # the jitter itself is tested in tests/test_backoff.py
    for attempts, ceiling in [(1, 5), (2, 10), (3, 20), (8, 640), (9, 900), (50, 900), (10_000, 900)]:
        delays = [DEFAULT.delay(attempts, rng) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays), (attempts, min(delays), max(delays))


def test_retries_stop_after_72_hours_with_a_last_attempt_at_the_end() -> None:
    rng = random.Random(1)
    now = START
    attempts = 0
    while (after := DEFAULT.next_attempt(attempts + 1, START, now, rng)) is not None:
        assert after > now
        now, attempts = after, attempts + 1
    assert now == START + dt.timedelta(hours=72)  # the last retry is at the deadline
    assert 250 < attempts < 400  # about four an hour once at the cap


def test_a_short_window_for_tests() -> None:
    policy = RetryPolicy(base=0.1, cap=0.2, give_up_after=dt.timedelta(seconds=1))
    rng = random.Random(3)
    assert policy.next_attempt(1, START, START, rng) is not None
    assert policy.next_attempt(9, START, START + dt.timedelta(seconds=1), rng) is None
