"""Incoming messages and receipts through the real simulator worker into Postgres: stored once, with their events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app.db.database import Database
from app.db.embedded import EmbeddedPostgres
from app.db.migrations import migrate_url
from app.incoming.store import MessageStore
from app.session.supervisor import Supervisor
from app.settings import resolve_database_url
from tests.session.conftest import linked_supervisor
from tests.webhooks.conftest import MakeDispatcher, signed_correctly, use_endpoints
from tests.webhooks.receiver import Receiver

SENDER = "+6281111111111"
SENDER_CHAT = "6281111111111@s.whatsapp.net"


@pytest.fixture
async def store(database: Database) -> AsyncIterator[MessageStore]:
    store = MessageStore(database)
    store.start()
    yield store
    await store.close(5.0)


@pytest.fixture
async def session(database: Database, database_url: str, store: MessageStore) -> AsyncIterator[Supervisor]:
    """A supervisor whose simulated account is linked, its workers' incoming items going to `store`."""
    async with linked_supervisor(database, database_url, incoming=store.take) as supervisor:
        yield supervisor


async def events_of(database: Database, event_type: str, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The `data` of stored events of a type, once there are `count` of them (the store writes in the background;
    a test cannot see when the supervisor has handed the worker's events over, so it polls)."""
    deadline = time.monotonic() + timeout
    while True:
        async with database.connection() as connection:
            rows = await connection.fetch(
                "SELECT data::text FROM outbox_events WHERE type = $1 ORDER BY seq", event_type
            )
        if len(rows) >= count or time.monotonic() > deadline:
            assert len(rows) == count, rows
            return [json.loads(row["data"]) for row in rows]
        await asyncio.sleep(0.02)


async def test_a_message_is_stored_with_its_event(session: Supervisor, database: Database) -> None:
    reply = await session.simulate("incoming", {"from": SENDER, "text": "Halo, ada stok?", "push_name": "Budi"})
    [data] = await events_of(database, "message.received", 1)
    assert data["message_id"] == reply["message_id"] and data["chat"] == SENDER_CHAT
    assert data["from"] == SENDER and data["push_name"] == "Budi" and data["text"] == "Halo, ada stok?"
    assert data["type"] == "text" and data["media"] is None and data["is_group"] is False
    assert data["is_from_me"] is False and data["timestamp"].endswith("+00:00")
    async with database.connection() as connection:
        row = await connection.fetchrow("SELECT * FROM incoming_messages")
    assert (row["chat"], row["message_id"], row["sender"], row["text"]) == (
        SENDER_CHAT,
        reply["message_id"],
        SENDER,
        "Halo, ada stok?",
    )
    assert row["sent_at"] is not None


async def test_a_redelivered_message_makes_no_second_event(session: Supervisor, database: Database) -> None:
    await session.simulate("incoming", {"from": SENDER, "text": "once", "message_id": "3EB0AAAA"})
    await session.simulate("incoming", {"from": SENDER, "text": "once", "message_id": "3EB0AAAA"})
    await session.simulate("incoming", {"from": SENDER, "text": "twice", "message_id": "3EB0BBBB", "count": 3})
    await session.simulate("incoming", {"from": SENDER, "text": "marker"})
    events = await events_of(database, "message.received", 3)
    assert [item["text"] for item in events] == ["once", "twice", "marker"]
    async with database.connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM incoming_messages") == 3


async def test_media_and_group_messages_carry_their_metadata(session: Supervisor, database: Database) -> None:
    media = {"mimetype": "application/pdf", "size": 52311, "file_name": "invoice.pdf", "direct_path": "/x"}
    await session.simulate("incoming", {"from": SENDER, "type": "document", "text": "the invoice", "media": media})
    await session.simulate("incoming", {"from": SENDER, "type": "hologram", "text": None, "group": "120363000000001"})
    document, other = await events_of(database, "message.received", 2)
    assert document["type"] == "document" and document["text"] == "the invoice"
    # This store was given no media folder: the file cannot be handed over, and the event says so.
    assert document["media"] == {
        "mimetype": "application/pdf", "size": 52311, "file_name": "invoice.pdf",
        "error": "not stored: the worker was given no folder for media",
    }  # fmt: skip
    assert other["type"] == "other" and other["text"] is None
    assert other["chat"] == "120363000000001@g.us" and other["is_group"] is True and other["from"] == SENDER


async def test_messages_typed_on_the_phone_are_a_separate_type(session: Supervisor, database: Database) -> None:
    await session.simulate("incoming", {"from": SENDER, "text": "sent from my phone", "from_me": True})
    [data] = await events_of(database, "message.from_me", 1)
    assert data["is_from_me"] is True and data["text"] == "sent from my phone"
    await events_of(database, "message.received", 0)


async def test_receipts_become_message_status_once_each(session: Supervisor, database: Database) -> None:
    both = ["3EB0OURS1", "3EB0OURS2"]
    await session.simulate("receipt", {"from": SENDER, "message_ids": both, "status": "delivered"})
    await session.simulate("receipt", {"from": SENDER, "message_ids": ["3EB0OURS1"], "status": "delivered"})
    await session.simulate("receipt", {"from": SENDER, "message_ids": ["3EB0OURS1"], "status": "played"})
    events = await events_of(database, "message.status", 3)
    assert [(item["message_id"], item["status"]) for item in events] == [
        ("3EB0OURS1", "delivered"),
        ("3EB0OURS2", "delivered"),
        ("3EB0OURS1", "read"),
    ]
    assert all(item["id"] is None and item["error"] is None and item["chat"] == SENDER_CHAT for item in events)


async def test_the_receipt_hook_names_our_message(database: Database) -> None:
    seen: list[dict[str, Any]] = []

    async def ours(connection: asyncpg.Connection, receipt: dict[str, Any]) -> str | None:
        seen.append(receipt)
        return "msg_42" if receipt["message_id"] == "3EB0MINE" else None

    store = MessageStore(database, receipt_hook=ours)
    store.start()
    try:
        store.take("receipt", {"chat": SENDER_CHAT, "message_ids": ["3EB0MINE", "3EB0PHONE"], "status": "read"})
        await store.drained()
    finally:
        await store.close(5.0)
    events = await events_of(database, "message.status", 2)
    assert [(item["id"], item["message_id"], item["status"]) for item in events] == [
        ("msg_42", "3EB0MINE", "read"),
        (None, "3EB0PHONE", "read"),
    ]
    assert [item["message_id"] for item in seen] == ["3EB0MINE", "3EB0PHONE"]


async def test_a_nul_character_does_not_stop_the_store(store: MessageStore, database: Database) -> None:
    message = {"message_id": "3EB0NUL", "chat": SENDER_CHAT, "from": SENDER, "text": "a\x00b", "type": "text"}
    store.take("message", message)
    await store.drained()
    [data] = await events_of(database, "message.received", 1)
    assert data["text"] == "ab"


async def test_from_the_worker_to_the_receiver_in_order_per_chat(
    session: Supervisor, database: Database, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    await use_endpoints(database, receiver.url)
    make_dispatcher()
    sent: dict[str, list[str]] = {}
    for _ in range(3):
        for sender in range(4):
            reply = await session.simulate("incoming", {"from": f"+62822000000{sender}", "text": "hi", "count": 25})
            sent.setdefault(reply["chat"], []).extend(reply["message_ids"])
    everything = {message_id for ids in sent.values() for message_id in ids}
    got = await receiver.until(lambda got: {item.data.get("message_id") for item in got} >= everything)
    assert all(signed_correctly(item) for item in got)
    for chat, message_ids in sent.items():
        assert [item.data["message_id"] for item in got if item.data.get("chat") == chat] == message_ids


@pytest.fixture
async def own_postgres_database(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedPostgres, Database]]:
    server = EmbeddedPostgres(tmp_path / "pg")
    url = resolve_database_url(server.url())
    await migrate_url(url)
    database = await Database.open(url)
    yield server, database
    await database.close()
    server.close()


async def test_messages_are_held_while_postgres_restarts(
    own_postgres_database: tuple[EmbeddedPostgres, Database],
) -> None:
    server, database = own_postgres_database
    store = MessageStore(database)
    store.start()
    try:
        store.take("message", {"message_id": "before", "chat": SENDER_CHAT, "text": "1"})
        await store.drained()
        await asyncio.to_thread(server.stop)
        for number in range(50):
            store.take("message", {"message_id": f"during-{number}", "chat": SENDER_CHAT, "text": "2"})
        await asyncio.sleep(0.3)  # let the writer meet the outage (it retries with backoff)
        assert store.backlog == 50
        await asyncio.to_thread(server.start)
        await asyncio.wait_for(store.drained(), 30)
    finally:
        await store.close(5.0)
    events = await events_of(database, "message.received", 51)
    assert [item["message_id"] for item in events] == ["before"] + [f"during-{number}" for number in range(50)]


async def test_a_status_never_goes_backwards(database: Database) -> None:
    store = MessageStore(database)
    store.start()
    try:
        # A read, then the late delivered receipt of the same message: no `delivered` after the `read`. Within one
        # batch, a delivered that comes after the read is dropped the same way; one before it is not backwards.
        store.take("receipt", {"chat": SENDER_CHAT, "message_ids": ["3EB0A"], "status": "read"})
        await store.drained()
        store.take("receipt", {"chat": SENDER_CHAT, "message_ids": ["3EB0A"], "status": "delivered"})
        store.take("receipt", {"chat": SENDER_CHAT, "message_ids": ["3EB0B"], "status": "delivered"})
        store.take("receipt", {"chat": SENDER_CHAT, "message_ids": ["3EB0B"], "status": "read"})
        store.take("receipt", {"chat": SENDER_CHAT, "message_ids": ["3EB0C"], "status": "played"})
        store.take("receipt", {"chat": SENDER_CHAT, "message_ids": ["3EB0C"], "status": "delivered"})
        await store.drained()
    finally:
        await store.close(5.0)
    events = await events_of(database, "message.status", 4)
    assert [(item["message_id"], item["status"]) for item in events] == [
        ("3EB0A", "read"),
        ("3EB0B", "delivered"),
        ("3EB0B", "read"),
        ("3EB0C", "read"),
    ]


async def test_a_message_typed_on_the_phone_names_the_account_as_its_sender(
    session: Supervisor, database: Database
) -> None:
    await session.simulate("incoming", {"from": SENDER, "text": "we open at nine", "from_me": True})
    [data] = await events_of(database, "message.from_me", 1)
    assert data["chat"] == SENDER_CHAT  # the chat it was typed in: the contact's
    assert (data["from"], data["sender_jid"]) == ("+6281234567890", "6281234567890@s.whatsapp.net")  # the account
    assert data["push_name"] == "Toko Maju"


async def test_a_receipt_in_a_group_names_the_group_as_its_chat(session: Supervisor, database: Database) -> None:
    group = "120363025246125486@g.us"
    await session.simulate("receipt", {"from": SENDER, "message_ids": ["3EB0GROUP"], "status": "read", "group": group})
    [data] = await events_of(database, "message.status", 1)
    assert (data["message_id"], data["status"], data["chat"]) == ("3EB0GROUP", "read", group)
