"""The one backoff formula, with each of its jitter variants: the schedules built on it are tested where they live."""

from __future__ import annotations

import random

import pytest

from app.backoff import Jitter, backoff


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(0, 2.0), (1, 4.0), (3, 16.0), (7, 256.0), (8, 300.0), (10**6, 300.0)]
)
def test_the_ceiling_doubles_per_attempt_up_to_the_cap(attempt: int, ceiling: float) -> None:
    assert backoff(attempt, base=2.0, cap=300.0, jitter=Jitter.NONE) == ceiling


def test_full_jitter_spreads_over_the_whole_range() -> None:
    delays = [backoff(4, base=2.0, cap=300.0, jitter=Jitter.FULL, rng=random.Random(seed)) for seed in range(200)]
    assert all(0 <= delay <= 32 for delay in delays)
    assert min(delays) < 4 and max(delays) > 28  # reconnecting clients are spread apart, not bunched at the top
    assert len({round(delay, 3) for delay in delays}) > 190


def test_equal_jitter_stays_in_the_upper_half() -> None:
    delays = [backoff(2, base=5.0, cap=900.0, jitter=Jitter.EQUAL, rng=random.Random(seed)) for seed in range(200)]
    assert all(10 <= delay <= 20 for delay in delays)
    assert max(delays) - min(delays) > 5  # jittered, not a fixed delay


def test_the_floor_holds_however_the_jitter_falls() -> None:
    delays = [backoff(0, base=2.0, cap=300.0, floor=0.5, rng=random.Random(seed)) for seed in range(200)]
    assert min(delays) == 0.5 and max(delays) <= 2.0


def test_a_negative_attempt_counts_as_the_first() -> None:
    assert backoff(-3, base=5.0, cap=900.0, jitter=Jitter.NONE) == 5.0
