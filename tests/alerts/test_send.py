"""Sending one alert: the body, retries with backoff, no retry of a refusal, and Sentry when it is configured."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Iterator

import pytest
import sentry_sdk

from app.alerts import send
from app.alerts.watch import Alerts
from app.db.database import Database
from app.session.states import State
from tests.alerts.test_incidents import transition
from tests.webhooks.receiver import Received, Receiver, Reply


def test_the_body_carries_the_text_for_slack_and_for_discord() -> None:
    assert send.body("logged out") == {"text": "logged out", "content": "logged out"}
    assert len(send.body("x" * 5000)["content"]) == send.DISCORD_LIMIT


def test_logs_show_the_host_only() -> None:
    assert send.host_of("https://hooks.slack.com/services/T/B/token") == "https://hooks.slack.com"
    assert send.host_of("http://[::1]:8080/hook?key=1") == "http://::1:8080"


async def test_a_failure_is_retried_with_backoff() -> None:
    answers = iter([500, 503, 200])
    receiver = Receiver(lambda _: Reply(next(answers))).start()
    try:
        assert await send.post(receiver.url, "banned", tries=3, backoff=0.1) is None
        arrivals = [request.at for request in receiver.received]
        assert len(arrivals) == 3
        assert arrivals[1] - arrivals[0] >= 0.1 and arrivals[2] - arrivals[1] >= 0.2  # 0.1 s, then twice that
    finally:
        await asyncio.to_thread(receiver.close)


async def test_a_refusal_is_not_retried_and_a_dead_host_is_an_outcome() -> None:
    receiver = Receiver(lambda _: Reply(400)).start()
    try:
        assert await send.post(receiver.url, "banned", tries=3, backoff=0.05) == "HTTP 400"
        assert len(receiver.received) == 1
        await asyncio.to_thread(receiver.stop)
        error = await send.post(receiver.url, "banned", tries=2, backoff=0.05)
        assert error is not None and "/hook" not in error
    finally:
        await asyncio.to_thread(receiver.close)


@pytest.fixture
def sentry() -> Iterator[Receiver]:
    """Sentry on, with its DSN pointing at a local receiver that plays sentry.io."""
    receiver = Receiver().start()
    sentry_sdk.init(dsn=f"http://publickey@127.0.0.1:{receiver.port}/42", default_integrations=False)
    yield receiver
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)
    receiver.close()


def sentry_events(received: list[Received]) -> list[dict[str, object]]:
    """The events in the envelopes Sentry's SDK posted (header line, then item header and payload lines), gzipped
    (the SDK's choice without the brotli module, which is not installed)."""
    events = []
    for request in received:
        body = gzip.decompress(request.body) if request.headers.get("content-encoding") == "gzip" else request.body
        lines = body.decode().splitlines()
        events += [json.loads(lines[index + 1]) for index in range(1, len(lines) - 1, 2)]
    return [event for event in events if "level" in event]


async def test_an_alert_goes_to_sentry_with_its_level(sentry: Receiver, database: Database) -> None:
    alerts = Alerts(database, webhook_url=None, after_seconds=300)  # Sentry only
    await alerts.check()
    await transition(database, State.CONNECTED, State.LOGGED_OUT, "logged_out")
    await alerts.check()
    await transition(database, State.PAIRING, State.CONNECTED, "paired")
    await alerts.check()
    await asyncio.to_thread(sentry_sdk.flush, 5.0)
    events = sentry_events(sentry.received)
    assert [event["level"] for event in events] == ["error", "info"]
    assert "logged this device out" in str(events[0]["message"])
    assert "resolved" in str(events[1]["message"])
