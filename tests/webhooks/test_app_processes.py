"""No event is lost across the real app process being killed, stopped, or cut off from a restarting Postgres."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from app.db.embedded import EmbeddedPostgres
from app.settings import resolve_database_url
from tests.processes import AppProcess
from tests.session.test_app_processes import pair
from tests.webhooks.conftest import SECRET, signed_correctly
from tests.webhooks.receiver import Received, Receiver, Reply

RECEIVED = "message.received"


def webhook_env(receiver: Receiver) -> dict[str, str]:
    return {"WEBHOOK_URL": receiver.url, "WEBHOOK_SECRET": SECRET}


def inject(app: AppProcess, chats: int, per_chat: int) -> dict[str, list[str]]:
    """`per_chat` messages from each of `chats` senders, through the simulated WhatsApp; message ids per chat."""
    sent: dict[str, list[str]] = {}
    with app.api() as api:
        for chat in range(chats):
            response = api.post(
                "/api/simulator/incoming", json={"from": f"+62822000000{chat}", "text": "x", "count": per_chat}
            )
            assert response.status_code == 202, response.text
            sent[response.json()["chat"]] = response.json()["message_ids"]
    return sent


def message_ids(received: list[Received]) -> set[str]:
    return {item.data["message_id"] for item in received if item.type == RECEIVED}


def stored_events(database_url: str) -> list[tuple[str, str, str]]:
    """(event id, chat, message id) of every stored message.received event, in seq order."""

    async def fetch() -> list[tuple[str, str, str]]:
        connection = await asyncpg.connect(database_url)
        try:
            rows = await connection.fetch(
                "SELECT id::text, chat, data->>'message_id' AS message_id FROM outbox_events"
                " WHERE type = $1 ORDER BY seq",
                RECEIVED,
            )
        finally:
            await connection.close()
        return [(row["id"], row["chat"], row["message_id"]) for row in rows]

    return asyncio.run(fetch())


def first_arrivals(received: list[Received]) -> list[Received]:
    """Each event once, at its first arrival (at-least-once delivery may repeat an event after a crash)."""
    seen: set[str] = set()
    firsts = []
    for item in received:
        if item.type == RECEIVED and item.event_id not in seen:
            seen.add(item.event_id)
            firsts.append(item)
    return firsts


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    # Slow enough (10 ms per request, four chats at a time) that deliveries are still under way when a test strikes.
    server = Receiver(lambda request: Reply(200, delay=0.01)).start()
    yield server
    server.close()


def test_kill_9_mid_delivery_then_restart_delivers_every_stored_event(
    database_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    first = AppProcess(database_url, tmp_path / "first.log", env=webhook_env(receiver)).start()
    try:
        pair(first)
        sent = inject(first, chats=4, per_chat=150)
        receiver.wait(lambda got: len(message_ids(got)) >= 50)
        first.kill()
    finally:
        first.ensure_stopped()
    before_restart = message_ids(receiver.received)
    stored = stored_events(database_url)
    assert len(stored) >= len(before_restart) and len(before_restart) < 600, "the kill came after everything"
    assert {message_id for _, _, message_id in stored} <= {m for ids in sent.values() for m in ids}

    second = AppProcess(database_url, tmp_path / "second.log", env=webhook_env(receiver)).start()
    try:
        stored_ids = {event_id for event_id, _, _ in stored}
        got = receiver.wait(lambda got: {item.event_id for item in got} >= stored_ids, timeout=60)
    finally:
        second.ensure_stopped()
    assert all(signed_correctly(item) for item in got)
    firsts = first_arrivals(got)
    for chat in sent:
        in_seq = [event_id for event_id, event_chat, _ in stored if event_chat == chat]
        arrived = [item.event_id for item in firsts if item.data["chat"] == chat]
        assert arrived[: len(in_seq)] == in_seq  # per chat, first arrivals in the stored order


def test_postgres_restart_mid_run_loses_nothing(tmp_path: Path, receiver: Receiver) -> None:
    server = EmbeddedPostgres(tmp_path / "pg")
    app = AppProcess(resolve_database_url(server.url()), tmp_path / "app.log", env=webhook_env(receiver))
    try:
        app.start()
        pair(app)
        before = inject(app, chats=4, per_chat=100)
        receiver.wait(lambda got: len(message_ids(got)) >= 40)
        server.stop()
        app.wait_state("standby", "stopped", "starting")  # the session's lease went with the connection
        assert len(message_ids(receiver.received)) < 400, "Postgres stopped after everything was delivered"
        server.start()
        app.wait_state("connected", timeout=60)
        after = inject(app, chats=2, per_chat=50)
        expected = {m for ids in (*before.values(), *after.values()) for m in ids}
        got = receiver.wait(lambda got: message_ids(got) >= expected, timeout=90)
        assert len(expected) == 500
        for chat, ids in (*before.items(), *after.items()):
            arrived = [item.data["message_id"] for item in first_arrivals(got) if item.data["chat"] == chat]
            assert [m for m in arrived if m in ids] == ids  # no gaps, no reordering within a chat
    finally:
        app.ensure_stopped()
        server.close()
    assert "Traceback" not in app.output()


def test_sigterm_with_a_hanging_receiver_exits_within_20_s_and_nothing_is_lost(
    database_url: str, tmp_path: Path
) -> None:
    hanging = Receiver(lambda request: Reply(200, delay=60.0)).start()
    try:
        first = AppProcess(database_url, tmp_path / "first.log", env=webhook_env(hanging)).start()
        try:
            pair(first)
            inject(first, chats=3, per_chat=5)
            hanging.wait(lambda got: len(message_ids(got)) >= 3)
            started = time.monotonic()
            status = first.terminate()
            elapsed = time.monotonic() - started
        finally:
            first.ensure_stopped()
        assert status == 0, first.output()
        assert elapsed < 20
        assert "shutdown complete" in first.output()
        stored = {event_id for event_id, _, _ in stored_events(database_url)}
        assert len(stored) == 15
        hanging.respond = lambda request: Reply(200)
        second = AppProcess(database_url, tmp_path / "second.log", env=webhook_env(hanging)).start()
        try:
            hanging.wait(lambda got: {item.event_id for item in got} >= stored, timeout=60)
        finally:
            second.ensure_stopped()
    finally:
        hanging.close()
