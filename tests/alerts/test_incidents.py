"""Incidents kept in Postgres: the rate limits, two processes at once, and a restart that neither repeats nor forgets.

The session's trail is written here with the supervisor's own function (audit.record_transition), so each test sets
up exactly the history it needs; test_watch.py drives the same watch with real simulator sessions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from app.alerts.incidents import Limits
from app.alerts.watch import Alerts
from app.db.database import Database
from app.session import audit
from app.session.states import State
from app.times import utcnow
from tests.webhooks.receiver import Receiver, Reply

MakeAlerts = Callable[..., Alerts]
TOKEN = "T0001/B0002/very-secret-token"


@pytest.fixture
def make_alerts(database: Database, receiver: Receiver) -> MakeAlerts:
    def make(**options: Any) -> Alerts:
        return Alerts(database, **{"webhook_url": receiver.url, "after_seconds": 300, "backoff": 0.05, **options})

    return make


async def transition(database: Database, from_state: State, to_state: State, reason: str, detail: str = "") -> None:
    async with database.transaction() as connection:
        change = audit.Transition(utcnow(), from_state, to_state, reason, detail or None)
        await audit.record_transition(connection, change, "test:1")


async def alert_rows(database: Database) -> list[dict[str, Any]]:
    async with database.connection() as connection:
        return [dict(row) for row in await connection.fetch("SELECT * FROM alerts ORDER BY id")]


async def test_one_alert_per_kind_within_the_window_and_the_rest_waits(
    make_alerts: MakeAlerts, receiver: Receiver, database: Database
) -> None:
    alerts = make_alerts(limits=Limits(per_kind=dt.timedelta(hours=1), per_hour=10))
    await alerts.check()
    await transition(database, State.CONNECTED, State.LOGGED_OUT, "logged_out")
    await alerts.check()
    await transition(database, State.PAIRING, State.CONNECTED, "paired")
    await alerts.check()
    assert len(receiver.received) == 2  # the alert and its recovery
    await transition(database, State.CONNECTED, State.LOGGED_OUT, "logged_out")  # logged out again at once
    for _ in range(3):
        await alerts.check()
    assert len(receiver.received) == 2
    waiting = (await alert_rows(database))[-1]
    assert waiting["cleared_at"] is None and waiting["notified_at"] is None  # kept, not dropped
    later = make_alerts(limits=Limits(per_kind=dt.timedelta(0), per_hour=10))  # once the window has passed
    await later.check()
    assert len(receiver.received) == 3 and "logged this device out" in receiver.received[2].json()["text"]


async def test_at_most_so_many_messages_an_hour(
    make_alerts: MakeAlerts, receiver: Receiver, database: Database
) -> None:
    alerts = make_alerts(limits=Limits(per_kind=dt.timedelta(minutes=15), per_hour=2))
    await alerts.check()
    await transition(database, State.CONNECTED, State.LOGGED_OUT, "logged_out")
    await transition(database, State.LOGGED_OUT, State.BANNED, "banned", "temporarily banned")
    await transition(database, State.BANNED, State.STOPPED, "outdated", "client outdated")
    await alerts.check()
    await alerts.check()
    assert len(receiver.received) == 2
    assert len(await alert_rows(database)) == 3  # the third incident is open, waiting for the hour to allow it


async def test_two_processes_checking_at_once_send_one_alert(
    make_alerts: MakeAlerts, receiver: Receiver, database: Database
) -> None:
    first, second = make_alerts(), make_alerts()
    await first.check()
    await transition(database, State.CONNECTED, State.STOPPED, "replaced", "replaced 3 times in 10 minutes")
    await asyncio.gather(first.check(), second.check(), first.check(), second.check())
    assert len(receiver.received) == 1
    assert "another client" in receiver.received[0].json()["text"]


async def test_a_restart_neither_repeats_nor_forgets_an_alert(
    make_alerts: MakeAlerts, receiver: Receiver, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    secret_url = f"http://127.0.0.1:{receiver.port}/services/{TOKEN}"
    before = make_alerts(webhook_url=secret_url, tries=2)
    await before.check()
    await transition(database, State.CONNECTED, State.LOGGED_OUT, "logged_out", "401: logged out from the phone")
    await asyncio.to_thread(receiver.stop)  # the chat service is down
    await before.check()
    [row] = await alert_rows(database)
    assert row["notified_at"] is None and row["attempts"] == 1 and row["next_attempt_at"] > utcnow()
    assert row["last_error"] and "very-secret-token" not in row["last_error"]
    assert f"alert to http://127.0.0.1:{receiver.port} failed" in caplog.text
    assert "very-secret-token" not in caplog.text  # the URL's path is its token
    await asyncio.to_thread(receiver.start)
    after = make_alerts(webhook_url=secret_url)  # the process restarted
    await after.check()
    assert receiver.received == []  # not due yet: the retry waits its minute
    async with database.connection() as connection:
        await connection.execute("UPDATE alerts SET next_attempt_at = now()")  # ... and the minute has passed
    await after.check()
    assert len(receiver.received) == 1 and receiver.received[0].path == f"/services/{TOKEN}"
    await make_alerts(webhook_url=secret_url).check()  # and once more restarted: nothing is repeated
    assert len(receiver.received) == 1


async def test_a_send_that_keeps_failing_is_given_up_and_its_recovery_still_goes(
    make_alerts: MakeAlerts, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    answers = iter([500, 500, 200])
    receiver = Receiver(lambda _: Reply(next(answers))).start()
    try:
        alerts = make_alerts(webhook_url=receiver.url, tries=1, give_up_after=2)
        await alerts.check()
        await transition(database, State.CONNECTED, State.STOPPED, "outdated", "client outdated")
        await alerts.check()
        async with database.connection() as connection:
            await connection.execute("UPDATE alerts SET next_attempt_at = now()")  # its retry is due
        await alerts.check()
        [row] = await alert_rows(database)
        assert row["notified_at"] is not None and row["last_error"] == "HTTP 500" and row["attempts"] == 0
        assert "gave up sending the stopped alert after 2 tries" in caplog.text
        await alerts.check()
        assert len(receiver.received) == 2  # given up: not tried again
        await transition(database, State.CONNECTING, State.CONNECTED, "logged_in")
        await alerts.check()
        assert len(receiver.received) == 3 and "resolved" in receiver.received[2].json()["text"]
    finally:
        await asyncio.to_thread(receiver.close)


async def test_secrets_never_reach_an_alert(make_alerts: MakeAlerts, receiver: Receiver, database: Database) -> None:
    alerts = make_alerts(secrets=["hunter2-api-token"])
    await alerts.check()
    await transition(database, State.CONNECTED, State.LOGGED_OUT, "logged_out", "refused with hunter2-api-token")
    await alerts.check()
    assert len(receiver.received) == 1 and "hunter2" not in receiver.received[0].body.decode()
