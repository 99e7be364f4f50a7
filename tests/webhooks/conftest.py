"""Webhook tests: real receivers on 127.0.0.1, dispatchers and stores against this test's database."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from app.db.database import Database
from app.webhooks.dispatcher import Dispatcher
from app.webhooks.outbox import enqueue_event, sync_endpoints
from app.webhooks.retry import RetryPolicy
from tests.webhooks.receiver import Received, Receiver

SECRET = "test-webhook-secret"
FAST = RetryPolicy(base=0.2, cap=0.5)  # retries within a second; the schedule itself is tested in test_retry.py

MakeDispatcher = Callable[..., Dispatcher]


def hmac_sha256(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 written out from RFC 2104, independent of the app's (and the stdlib's) hmac code."""
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key) + message).digest()
    return hashlib.sha256(bytes(byte ^ 0x5C for byte in key) + inner).hexdigest()


def signed_correctly(request: Received, secret: str = SECRET) -> bool:
    return request.headers.get("x-hub-signature-256") == "sha256=" + hmac_sha256(secret.encode(), request.body)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url, max_size=10)
    yield database
    await database.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.close()


@pytest.fixture
async def make_dispatcher(database: Database, database_url: str) -> AsyncIterator[MakeDispatcher]:
    started: list[Dispatcher] = []

    def make(**options: Any) -> Dispatcher:
        options = {"policy": FAST, "poll_interval": 1.0, "timeout": 5.0, **options}
        dispatcher = Dispatcher(database, database_url, SECRET, **options)
        dispatcher.start()
        started.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in started:
        await dispatcher.stop(5.0)


async def use_endpoints(database: Database, *urls: str) -> None:
    async with database.transaction() as connection:
        await sync_endpoints(connection, urls)


async def enqueue(database: Database, chat: str | None, **data: Any) -> str:
    async with database.transaction() as connection:
        event_id = await enqueue_event(connection, "message.received", {"chat": chat, **data}, chat=chat)
    return str(event_id)
