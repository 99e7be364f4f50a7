"""The outbox: events in the caller's transaction, one delivery per configured URL, endpoints following the config."""

from __future__ import annotations

import pytest

from app.db.database import Database
from app.webhooks.outbox import display_url, enqueue_event, json_text, sync_endpoints


async def rows(database: Database, query: str) -> list[tuple[object, ...]]:
    async with database.connection() as connection:
        return [tuple(row) for row in await connection.fetch(query)]


async def test_an_event_is_stored_with_its_transaction_or_not_at_all(database: Database) -> None:
    async with database.transaction() as connection:
        await sync_endpoints(connection, ["http://a.example/hook", "http://b.example/hook"])
    with pytest.raises(RuntimeError):
        async with database.transaction() as connection:
            await enqueue_event(connection, "message.received", {"n": 1}, chat="c")
            raise RuntimeError("the caller's work failed")
    assert await rows(database, "SELECT * FROM outbox_events") == []
    async with database.transaction() as connection:
        event_id = await enqueue_event(connection, "message.received", {"n": 2}, chat="c")
        await enqueue_event(connection, "session.state_changed", {"to": "connected"})
    deliveries = await rows(
        database,
        "SELECT e.url, d.lane, d.status FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id"
        " ORDER BY d.seq, e.url",
    )
    assert deliveries == [
        ("http://a.example/hook", "c", "pending"),
        ("http://b.example/hook", "c", "pending"),
        ("http://a.example/hook", "session", "pending"),
        ("http://b.example/hook", "session", "pending"),
    ]
    assert await rows(database, "SELECT id, type, chat FROM outbox_events ORDER BY seq LIMIT 1") == [
        (event_id, "message.received", "c")
    ]


async def test_endpoints_follow_the_configuration(database: Database) -> None:
    async with database.transaction() as connection:
        await sync_endpoints(connection, ["http://a.example/hook", "http://b.example/hook"])
        await connection.execute("UPDATE webhook_endpoints SET paused_at = now() WHERE url = 'http://b.example/hook'")
    async with database.transaction() as connection:
        await sync_endpoints(connection, ["http://b.example/hook", "http://c.example/hook"])
    async with database.transaction() as connection:
        await enqueue_event(connection, "message.received", {}, chat="c")
    assert await rows(database, "SELECT url, active, paused_at IS NOT NULL FROM webhook_endpoints ORDER BY url") == [
        ("http://a.example/hook", False, False),
        ("http://b.example/hook", True, True),  # a pause survives a restart with the same configuration
        ("http://c.example/hook", True, False),
    ]
    assert await rows(
        database, "SELECT e.url FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id ORDER BY 1"
    ) == [("http://b.example/hook",), ("http://c.example/hook",)]
    async with database.transaction() as connection:
        await sync_endpoints(connection, [])
    assert await rows(database, "SELECT count(*) FROM webhook_endpoints WHERE active") == [(0,)]


def test_json_for_jsonb_drops_nul_characters_only() -> None:
    assert json_text({"text": "a\x00b", "list": ["\x00"], "k\x00": 1}) == '{"text":"ab","list":[""],"k":1}'
    assert json_text({"text": "back\\u0000slash é"}) == '{"text":"back\\\\u0000slash é"}'


def test_urls_are_shown_without_secrets() -> None:
    assert (
        display_url("https://user:pw@hooks.example.com:8443/in?token=s3cret") == "https://hooks.example.com:8443/in?…"
    )
    assert display_url("http://[::1]/hook") == "http://[::1]/hook"
