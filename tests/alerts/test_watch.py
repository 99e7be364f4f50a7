"""The alert watch driven by real simulator sessions and a real webhook: one alert per incident, then its recovery."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from app.alerts.watch import Alerts
from app.db.database import Database
from app.session.states import State
from app.webhooks import operator
from app.webhooks.retry import RetryPolicy
from tests.session.conftest import FAST, MakeSupervisor, paired, wait_state, wait_trail
from tests.webhooks.conftest import enqueue, make_dispatcher, use_endpoints
from tests.webhooks.receiver import Received, Receiver, Reply

__all__ = ["make_dispatcher"]

MakeAlerts = Callable[..., Alerts]


@pytest.fixture
async def make_alerts(database: Database, receiver: Receiver) -> AsyncIterator[MakeAlerts]:
    started: list[Alerts] = []

    def make(start: bool = False, **options: Any) -> Alerts:
        alerts = Alerts(database, **{"webhook_url": receiver.url, "after_seconds": 300, "backoff": 0.05, **options})
        if start:
            alerts.start()
            started.append(alerts)
        return alerts

    yield make
    for alerts in started:
        await alerts.stop()


def texts(received: list[Received]) -> list[str]:
    return [str(request.json()["text"]) for request in received]


async def test_a_logout_alerts_once_and_recovers_when_connected_again(
    make_supervisor: MakeSupervisor, make_alerts: MakeAlerts, receiver: Receiver
) -> None:
    supervisor = await paired(make_supervisor)
    alerts = make_alerts()
    await alerts.check()  # the watch starts at the end of the trail: being paired is no news
    await supervisor.simulate("disconnect", {"reason": "logged_out"})
    await wait_state(supervisor, State.PAIRING)
    for _ in range(3):
        await alerts.check()
    assert len(receiver.received) == 1
    alert = receiver.received[0].json()
    assert alert["text"] == alert["content"]  # Slack/Mattermost read `text`, Discord `content`
    assert "logged this device out at 20" in alert["text"] and " UTC " in alert["text"]
    assert "scan the QR code" in alert["text"]
    await supervisor.simulate("pair", {"phone": "+6281234567890"})
    await wait_state(supervisor, State.CONNECTED)
    await alerts.check()
    await alerts.check()
    assert len(receiver.received) == 2
    assert "resolved: connected to WhatsApp again" in texts(receiver.received)[1]


@pytest.mark.parametrize(
    ("reason", "state", "words"),
    [
        ("banned", State.BANNED, "tries again by itself at about"),
        ("outdated", State.STOPPED, "refuses this client version"),
    ],
)
async def test_a_ban_and_a_stop_say_what_to_do(
    make_supervisor: MakeSupervisor,
    make_alerts: MakeAlerts,
    receiver: Receiver,
    reason: str,
    state: State,
    words: str,
) -> None:
    supervisor = await paired(make_supervisor)
    alerts = make_alerts()
    await alerts.check()
    await supervisor.simulate("disconnect", {"reason": reason, "seconds": 600})
    await wait_state(supervisor, state)
    await alerts.check()
    await alerts.check()
    assert len(receiver.received) == 1 and words in texts(receiver.received)[0]
    await supervisor.reconnect()  # the operator acts
    await wait_state(supervisor, State.CONNECTED)
    await alerts.check()
    assert len(receiver.received) == 2 and "resolved" in texts(receiver.received)[1]


async def test_reconnecting_longer_than_the_threshold_alerts_from_the_running_watch(
    make_supervisor: MakeSupervisor, make_alerts: MakeAlerts, receiver: Receiver
) -> None:
    # whatsmeow "reconnects" for 4 s here; the threshold is 1 s
    supervisor = await paired(make_supervisor, policy=dataclasses.replace(FAST, reconnect_grace=4.0))
    make_alerts(start=True, after_seconds=1, interval=0.2, changed=supervisor.state_changed)
    await supervisor.simulate("disconnect", {"reason": "connection_lost", "reconnect": False})
    await wait_state(supervisor, State.RECONNECTING)
    received = await receiver.until(lambda received: len(received) >= 1, timeout=10)
    assert supervisor.state is State.RECONNECTING  # told while it was still down
    assert "not connected to WhatsApp since" in texts(received)[0] and "connection lost" in texts(received)[0]
    received = await receiver.until(lambda received: len(received) >= 2, timeout=20)
    assert "resolved: connected to WhatsApp again" in texts(received)[1]
    assert len(received) == 2


async def test_a_short_reconnect_does_not_alert(
    make_supervisor: MakeSupervisor, make_alerts: MakeAlerts, receiver: Receiver
) -> None:
    supervisor = await paired(make_supervisor)
    alerts = make_alerts(after_seconds=60)
    await supervisor.simulate("disconnect", {"reason": "connection_lost"})
    await wait_state(supervisor, State.RECONNECTING)
    await alerts.check()
    await wait_state(supervisor, State.CONNECTED)
    await alerts.check()
    assert receiver.received == []


async def test_the_memory_watchdog_alerts(
    make_supervisor: MakeSupervisor, make_alerts: MakeAlerts, receiver: Receiver, database: Database
) -> None:
    supervisor = await paired(make_supervisor)
    alerts = make_alerts()
    await alerts.check()
    supervisor.worker_max_rss_mb = 150  # WORKER_MAX_RSS_MB; the simulator worker starts near 50 MB
    await supervisor.simulate("grow", {"mb": 200})
    await supervisor.heartbeat()  # the watchdog looks at every heartbeat
    await wait_trail(supervisor, database, lambda rows: any(row[1] == "worker_memory" for row in rows))
    await alerts.check()
    assert len(receiver.received) == 1
    assert "memory watchdog replaced the WhatsApp worker" in texts(receiver.received)[0]
    assert "more than 150 MB" in texts(receiver.received)[0]
    await wait_state(supervisor, State.CONNECTED)
    await alerts.check()
    assert len(receiver.received) == 2 and "resolved" in texts(receiver.received)[1]


async def test_dead_letters_alert_and_clear_once_replayed(
    make_dispatcher: Callable[..., object], make_alerts: MakeAlerts, receiver: Receiver, database: Database
) -> None:
    failing = True
    hooks = Receiver(lambda _: Reply(500 if failing else 200)).start()
    try:
        await use_endpoints(database, hooks.url)
        make_alerts(start=True, interval=0.2)
        make_dispatcher(policy=RetryPolicy(base=0.1, cap=0.2, give_up_after=dt.timedelta(seconds=0.5)))
        await enqueue(database, "6281234567890@s.whatsapp.net", text="hello")
        received = await receiver.until(lambda received: len(received) >= 1, timeout=20)
        assert "1 delivery to the webhook failed for 72 hours and was dead-lettered" in texts(received)[0]
        assert f"127.0.0.1:{hooks.port}/hook" in texts(received)[0] and "500" in texts(received)[0]
        failing = False
        async with database.transaction() as connection:
            assert await operator.retry_all(connection, "dead") == 1
        received = await receiver.until(lambda received: len(received) >= 2, timeout=20)
        assert "no dead-lettered webhook deliveries are left" in texts(received)[1]
        assert hooks.received[-1].json()["data"]["text"] == "hello"
    finally:
        await asyncio.to_thread(hooks.close)
