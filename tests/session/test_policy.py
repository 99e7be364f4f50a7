"""The reconnect policy as a table: reason x attempt -> state and delay bounds."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from app.session.policy import DEFAULT, TRANSIENT, decide
from app.session.states import Reason, State

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


@pytest.mark.parametrize(
    ("reason", "attempt", "state", "low", "high"),
    [
        (Reason.CONNECTION_LOST, 0, State.RECONNECTING, 0.5, 2.0),
        (Reason.CONNECTION_LOST, 1, State.RECONNECTING, 0.5, 4.0),
        (Reason.CONNECTION_LOST, 3, State.RECONNECTING, 0.5, 16.0),
        (Reason.CONNECTION_LOST, 7, State.RECONNECTING, 0.5, 256.0),
        (Reason.CONNECTION_LOST, 8, State.RECONNECTING, 0.5, 300.0),  # capped at 5 min
        (Reason.CONNECTION_LOST, 500, State.RECONNECTING, 0.5, 300.0),
        (Reason.DIAL_FAILED, 0, State.RECONNECTING, 0.5, 2.0),
        (Reason.DIAL_FAILED, 5, State.RECONNECTING, 0.5, 64.0),
        (Reason.CONNECT_FAILURE, 2, State.RECONNECTING, 0.5, 8.0),
        (Reason.WORKER_CRASHED, 0, State.RECONNECTING, 0.5, 0.5),  # respawn at once
        (Reason.WORKER_CRASHED, 1, State.RECONNECTING, 0.5, 4.0),  # a crash loop backs off
        (Reason.WORKER_CRASHED, 6, State.RECONNECTING, 0.5, 128.0),
        (Reason.WORKER_HUNG, 0, State.RECONNECTING, 0.5, 2.0),
        (Reason.HEARTBEAT_LOST, 2, State.RECONNECTING, 0.5, 8.0),
        (Reason.REPLACED, 0, State.REPLACED, 48.0, 72.0),  # >= 60 s +- 20 %
        (Reason.REPLACED, 9, State.REPLACED, 48.0, 72.0),
    ],
)
def test_delayed_retries(reason: Reason, attempt: int, state: State, low: float, high: float) -> None:
    rng = random.Random(attempt)
    for _ in range(300):
        decision = decide(reason, attempt=attempt, now=NOW, rng=rng)
        assert decision.state is state
        assert decision.delay is not None and low <= decision.delay <= high, decision


@pytest.mark.parametrize(
    ("reason", "state"),
    [
        (Reason.LOGGED_OUT, State.LOGGED_OUT),
        (Reason.PAIRING_EXPIRED, State.LOGGED_OUT),
        (Reason.OUTDATED, State.STOPPED),
    ],
)
@pytest.mark.parametrize("attempt", [0, 1, 10])
def test_reasons_that_wait_for_the_operator(reason: Reason, state: State, attempt: int) -> None:
    decision = decide(reason, attempt=attempt, now=NOW)
    assert (decision.state, decision.delay) == (state, None)
    assert decision.explanation


@pytest.mark.parametrize(
    ("earlier", "state"),
    [
        ((), State.REPLACED),
        ((NOW - 5 * MINUTE,), State.REPLACED),
        ((NOW - 9 * MINUTE, NOW - 1 * MINUTE), State.STOPPED),  # third in ten minutes
        ((NOW - 11 * MINUTE, NOW - 1 * MINUTE), State.REPLACED),  # the first fell out of the window
        ((NOW - 30 * MINUTE, NOW - 20 * MINUTE, NOW - 15 * MINUTE), State.REPLACED),
        ((NOW - 3 * MINUTE, NOW - 2 * MINUTE, NOW - 1 * MINUTE), State.STOPPED),
    ],
)
def test_replaced_three_times_in_ten_minutes_stops(earlier: tuple[dt.datetime, ...], state: State) -> None:
    decision = decide(Reason.REPLACED, attempt=0, now=NOW, replaced_at=earlier)
    assert decision.state is state
    assert (decision.delay is None) == (state is State.STOPPED)


@pytest.mark.parametrize(("minutes", "low", "high"), [(30, 1800, 1830), (0.001, 0.5, 30.5), (-5, 0.5, 30.5)])
def test_ban_waits_until_its_expiry(minutes: float, low: float, high: float) -> None:
    until = NOW + dt.timedelta(minutes=minutes)
    decision = decide(Reason.BANNED, attempt=0, now=NOW, banned_until=until, rng=random.Random(1))
    assert decision.state is State.BANNED
    assert decision.delay is not None and low <= decision.delay <= high


def test_ban_without_expiry_looks_again_in_an_hour() -> None:
    decision = decide(Reason.BANNED, attempt=3, now=NOW)
    assert (decision.state, decision.delay) == (State.BANNED, DEFAULT.ban_fallback)


def test_every_reason_has_a_decision() -> None:
    for reason in Reason:
        decision = decide(reason, attempt=0, now=NOW)
        assert decision.state in State
        assert (reason in TRANSIENT) == (decision.state is State.RECONNECTING)
