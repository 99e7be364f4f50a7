"""The webhook operations API and the status section, in the real app (lifespan, dispatcher) with a real receiver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.db.database import Database
from app.main import create_app
from app.settings import load_settings
from tests.processes import BASE_ENV, TOKEN
from tests.web.conftest import serving, state_of
from tests.webhooks.conftest import SECRET, enqueue, signed_correctly
from tests.webhooks.receiver import Receiver, Reply

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROUTES = [
    ("GET", "/api/webhooks/deliveries"),
    ("GET", "/api/webhooks/deliveries/1"),
    ("POST", "/api/webhooks/deliveries/1/retry"),
    ("POST", "/api/webhooks/deliveries/retry"),
    ("GET", "/api/webhooks/endpoints"),
    ("POST", "/api/webhooks/endpoints/1/resume"),
]


@pytest.fixture
async def client(
    database_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    env = {**BASE_ENV, "DATABASE_URL": database_url, "WEBHOOK_URL": receiver.url, "WEBHOOK_SECRET": SECRET}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    async with serving(create_app(load_settings()), headers=AUTH) as http:
        yield http


def database_of(client: httpx.AsyncClient) -> Database:
    return state_of(client)["database"]


async def listed(client: httpx.AsyncClient, status: str, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Poll the list until it holds `count` message deliveries in `status` (outcomes are stored in the background;
    the session's own events are delivered too, and left out here)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get("/api/webhooks/deliveries", params={"status": status})
        assert response.status_code == 200, response.text
        items = [item for item in response.json()["deliveries"] if item["type"] == "message.received"]
        if len(items) == count:
            return items
        assert time.monotonic() < deadline, items
        await asyncio.sleep(0.05)


async def test_every_webhook_route_refuses_without_credentials(client: httpx.AsyncClient) -> None:
    for method, path in ROUTES:
        for headers in ({"Authorization": ""}, {"Authorization": "Bearer nope"}):
            response = await client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path)
            assert response.json()["error"] == "unauthorized"


async def test_failed_deliveries_are_listed_explained_and_retried(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.respond = lambda request: Reply(500 if request.data.get("chat") == "bad" else 200)
    good = await enqueue(database_of(client), "good", n=1)
    bad = await enqueue(database_of(client), "bad", n=2)
    [failed] = await listed(client, "failed", 1)
    assert failed["event_id"] == bad and failed["chat"] == "bad" and failed["attempts"] >= 1
    assert failed["last_status"] == 500 and failed["last_error"].startswith("HTTP 500")
    assert failed["endpoint"]["url"] == receiver.url and failed["next_attempt_at"]
    [delivered] = await listed(client, "delivered", 1)
    assert delivered["event_id"] == good and delivered["delivered_at"]

    one = await client.get(f"/api/webhooks/deliveries/{failed['id']}")
    assert one.status_code == 200
    assert one.json()["event"]["id"] == bad and one.json()["event"]["data"] == {"chat": "bad", "n": 2}

    status = (await client.get("/api/status")).json()["webhooks"]
    assert status["dispatcher"] == "active" and status["endpoints"] == 1 and status["paused"] == []
    assert status["failed"] == 1 and status["dead"] == 0 and status["pending"] >= 1
    assert status["oldest_pending_age_seconds"] >= 0
    assert status["last_error"]["error"].startswith("HTTP 500") and status["last_error"]["url"] == receiver.url

    receiver.respond = lambda request: Reply(200)
    retried = await client.post(f"/api/webhooks/deliveries/{failed['id']}/retry")
    assert retried.status_code == 202 and retried.json() == {"id": failed["id"], "status": "pending"}
    await listed(client, "delivered", 2)
    arrivals = [item for item in receiver.received if item.event_id == bad]
    assert arrivals[-1].headers["x-webhook-id"] == bad and signed_correctly(arrivals[-1])
    status = (await client.get("/api/status")).json()["webhooks"]
    assert status["failed"] == 0


async def test_retry_all_dead_and_resume_a_paused_endpoint(client: httpx.AsyncClient, receiver: Receiver) -> None:
    database = database_of(client)
    first = await enqueue(database, "c", n=1)
    await listed(client, "delivered", 1)
    async with database.connection() as connection:
        # Dead by decree: the 72-hour window is not waited out in a test (test_dispatcher.py shows it with a short one).
        await connection.execute("UPDATE webhook_deliveries SET status = 'dead' WHERE lane = 'c'")
        await connection.execute("UPDATE webhook_endpoints SET paused_at = now(), paused_reason = '410 Gone'")
    assert [item["event_id"] for item in await listed(client, "dead", 1)] == [first]
    status = (await client.get("/api/status")).json()["webhooks"]
    assert status["dead"] == 1 and status["paused"] == [receiver.url]
    async with database.connection() as connection:
        await connection.execute("DELETE FROM outbox_events WHERE type = 'session.state_changed'")  # no noise

    bulk = await client.post("/api/webhooks/deliveries/retry", json={"status": "dead"})
    assert bulk.status_code == 202 and bulk.json() == {"status": "dead", "retried": 1}
    await listed(client, "pending", 1)  # the endpoint is paused: nothing goes out
    [endpoint] = (await client.get("/api/webhooks/endpoints")).json()["endpoints"]
    assert endpoint["paused"] and endpoint["paused_reason"] == "410 Gone" and endpoint["pending"] >= 1
    resumed = await client.post(f"/api/webhooks/endpoints/{endpoint['id']}/resume")
    assert resumed.status_code == 202
    await listed(client, "delivered", 1)
    assert [item.event_id for item in receiver.of_type("message.received")] == [first, first]  # same id again


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("GET", "/api/webhooks/deliveries?status=lost", None, 422, "'status' must be one of"),
        ("GET", "/api/webhooks/deliveries?limit=0", None, 422, "'limit' must be between 1 and 500"),
        ("GET", "/api/webhooks/deliveries?before=x", None, 422, "'before' must be an integer"),
        ("GET", "/api/webhooks/deliveries/999", None, 404, "no delivery 999"),
        ("POST", "/api/webhooks/deliveries/999/retry", None, 404, "no delivery 999"),
        ("POST", "/api/webhooks/deliveries/retry", {"status": "delivered"}, 422, "'status' must be one of dead"),
        ("POST", "/api/webhooks/endpoints/999/resume", None, 404, "no endpoint 999"),
    ],
)
async def test_errors_are_json(
    client: httpx.AsyncClient, method: str, path: str, body: object, status: int, words: str
) -> None:
    response = await client.request(method, path, json=body)
    assert response.status_code == status
    assert words in response.json()["detail"]


async def test_pages_of_deliveries(client: httpx.AsyncClient) -> None:
    for number in range(5):
        await enqueue(database_of(client), "c", n=number)
    await listed(client, "delivered", 5)
    first = (await client.get("/api/webhooks/deliveries", params={"limit": 2})).json()
    assert len(first["deliveries"]) == 2 and first["next"].startswith("/api/webhooks/deliveries?limit=2&before=")
    second = (await client.get(first["next"])).json()
    newest = first["deliveries"][0]["id"]
    assert [item["id"] for item in first["deliveries"] + second["deliveries"]] == [newest - n for n in range(4)]
