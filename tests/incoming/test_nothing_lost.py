"""Nothing WhatsApp acknowledged is lost: the simulated server forgets a message the moment the worker has it (as
whatsmeow acknowledges on receipt), so every message below must reach the webhook through drops with an offline
backlog, a graceful restart and a standby takeover in the middle of a stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from app.db.database import Database
from app.db.embedded import EmbeddedPostgres
from app.db.migrations import migrate_url
from app.incoming.store import MessageStore
from app.sending import queue
from app.session.states import State
from app.session.supervisor import Supervisor
from app.settings import resolve_database_url
from tests.session.conftest import simulator_supervisor, wait_state, wait_trail
from tests.webhooks.conftest import MakeDispatcher, use_endpoints
from tests.webhooks.receiver import Received, Receiver

SENDER = "+6281111111111"
MakeSession = Callable[[], Supervisor]


@pytest.fixture
async def store(database: Database) -> AsyncIterator[MessageStore]:
    store = MessageStore(database, receipt_hook=queue.receipt_hook)
    store.start()
    yield store
    await store.close(5.0)


@pytest.fixture
async def make_session(database: Database, database_url: str, store: MessageStore) -> AsyncIterator[MakeSession]:
    started: list[Supervisor] = []

    def make() -> Supervisor:
        supervisor = simulator_supervisor(database, database_url, incoming=store.take)
        started.append(supervisor)
        return supervisor

    yield make
    for supervisor in started:
        await supervisor.stop()


@pytest.fixture
async def receiver(receiver: Receiver, database: Database, make_dispatcher: MakeDispatcher) -> Receiver:
    """The webhook receiver, with a dispatcher delivering this test's events to it."""
    await use_endpoints(database, receiver.url)
    make_dispatcher()
    return receiver


async def linked(make_session: MakeSession) -> Supervisor:
    supervisor = make_session()
    await wait_state(supervisor, State.PAIRING)
    await supervisor.simulate("pair", {"phone": "+6281234567890", "push_name": "Toko Maju"})
    await wait_state(supervisor, State.CONNECTED)
    return supervisor


async def stored_ids(database: Database, count: int, timeout: float = 60.0) -> set[str]:
    """The stored incoming message ids, once there are `count` and the simulated server holds nothing more (rows
    taken while Postgres was down could not be deleted; the next worker takes them again, and they are stored once).
    The store writes in the background: polled."""
    deadline = time.monotonic() + timeout
    while True:
        async with database.connection() as connection:
            ids = {row[0] for row in await connection.fetch("SELECT message_id FROM incoming_messages")}
            held = await connection.fetchval("SELECT count(*) FROM simulator_inbox")
        if (len(ids) >= count and held == 0) or time.monotonic() > deadline:
            assert held == 0
            return ids
        await asyncio.sleep(0.05)


def message_ids(got: list[Received]) -> set[str]:
    return {str(item.data["message_id"]) for item in got if item.type == "message.received"}


async def test_three_drops_with_an_offline_backlog_lose_nothing(
    make_session: MakeSession, database: Database, receiver: Receiver
) -> None:
    supervisor = await linked(make_session)
    assert supervisor.worker is not None
    generation = supervisor.worker.generation
    for _ in range(3):
        await supervisor.simulate("incoming", {"from": SENDER, "text": "order", "count": 2000})
        await supervisor.simulate("disconnect", {"reason": "connection_lost", "backlog": 500})
        await wait_state(supervisor, State.CONNECTED)
    # (the predicate runs on every request: the cheap length test first keeps it from going quadratic)
    got = await receiver.until(lambda got: len(got) >= 7500 and len(message_ids(got)) >= 7500, timeout=120)
    assert len(message_ids(got)) == 7500
    # whatsmeow mended every drop itself: one worker throughout, and nothing waits to be stored
    assert supervisor.worker is not None and supervisor.worker.generation == generation
    async with database.connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM simulator_inbox") == 0
        assert await connection.fetchval("SELECT count(*) FROM incoming_messages") == 7500


async def test_a_graceful_restart_in_the_middle_of_a_stream_loses_nothing(
    make_session: MakeSession, database: Database, receiver: Receiver
) -> None:
    first = await linked(make_session)
    reply = await first.simulate("incoming", {"from": SENDER, "text": "stream", "count": 5000})
    sent = set(reply["message_ids"])
    await receiver.until(lambda got: len(message_ids(got)) >= 200)  # the stream is flowing
    await first.stop()  # SIGTERM's path: the worker drains, the lease is released
    second = make_session()
    await wait_state(second, State.CONNECTED)
    got = await receiver.until(lambda got: len(got) >= len(sent) and message_ids(got) >= sent, timeout=120)
    assert message_ids(got) == sent


async def test_a_standby_takes_over_in_the_middle_of_a_stream_and_loses_nothing(
    make_session: MakeSession, database: Database, receiver: Receiver
) -> None:
    holder = await linked(make_session)
    standby = make_session()
    await wait_state(standby, State.STANDBY)
    assert standby.reason == "lease_held_elsewhere"
    reply = await holder.simulate("incoming", {"from": SENDER, "text": "stream", "count": 5000})
    sent = set(reply["message_ids"])
    await receiver.until(lambda got: len(message_ids(got)) >= 200)
    await holder.stop()
    await wait_state(standby, State.CONNECTED)
    got = await receiver.until(lambda got: len(got) >= len(sent) and message_ids(got) >= sent, timeout=120)
    assert message_ids(got) == sent


@pytest.fixture
async def own_postgres(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedPostgres, str]]:
    server = EmbeddedPostgres(tmp_path / "pg")
    url = resolve_database_url(server.url())
    await migrate_url(url)
    yield server, url
    server.close()


async def test_while_postgres_is_down_whatsapp_keeps_the_messages_and_the_status_says_why(
    own_postgres: tuple[EmbeddedPostgres, str],
) -> None:
    server, url = own_postgres
    database = await Database.open(url)
    store = MessageStore(database)
    store.start()
    supervisor = simulator_supervisor(database, url, incoming=store.take)
    try:
        await wait_state(supervisor, State.PAIRING)
        await supervisor.simulate("pair", {"phone": "+6281234567890"})
        await wait_state(supervisor, State.CONNECTED)
        reply = await supervisor.simulate("incoming", {"from": SENDER, "text": "before", "count": 300})
        await asyncio.to_thread(server.stop)
        await wait_state(supervisor, State.STANDBY, timeout=30)
        assert supervisor.reason == "database_unavailable"
        assert "Postgres is unavailable" in (supervisor.detail or "")
        await asyncio.to_thread(server.start)
        await wait_state(supervisor, State.CONNECTED, timeout=60)
        assert await stored_ids(database, 300) == set(reply["message_ids"])
    finally:
        await supervisor.stop()
        await store.close(5.0)
        await database.close()


async def test_the_memory_watchdog_replaces_a_grown_worker_and_loses_nothing(
    make_session: MakeSession, database: Database
) -> None:
    supervisor = await linked(make_session)
    supervisor.worker_max_rss_mb = 150  # WORKER_MAX_RSS_MB; the simulator worker starts near 50 MB
    assert supervisor.worker is not None
    first = supervisor.worker.generation
    reply = await supervisor.simulate("incoming", {"from": SENDER, "text": "before the leak", "count": 500})
    await supervisor.simulate("grow", {"mb": 200})
    await supervisor.heartbeat()  # the watchdog looks at every heartbeat
    trail = await wait_trail(supervisor, database, lambda rows: any(row[1] == "worker_memory" for row in rows))
    memory = next(row for row in trail if row[1] == "worker_memory")
    assert memory[0] == "reconnecting" and "more than 150 MB" in (memory[2] or "")
    await wait_state(supervisor, State.CONNECTED)
    assert supervisor.worker is not None and supervisor.worker.generation > first
    assert await stored_ids(database, 500) == set(reply["message_ids"])
