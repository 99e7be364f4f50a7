"""REJECT_CALLS through the app and the simulated WhatsApp: a call is declined as it arrives, call.received says so,
and REJECT_CALLS_MESSAGE goes to the caller through the send queue, once per call."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from app.session.states import State
from tests.processes import TOKEN
from tests.session.conftest import wait_state
from tests.web.conftest import app_client, state_of
from tests.webhooks.receiver import Receiver

__all__ = ["app_client"]

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CALLER = "+6281111111111"
SORRY = "Sorry, we cannot take calls here. Please write to us."


async def link(client: httpx.AsyncClient) -> None:
    await wait_state(state_of(client)["supervisor"], State.PAIRING)
    assert (await client.post("/api/simulator/pair", headers=AUTH, json={})).status_code == 202
    await wait_state(state_of(client)["supervisor"], State.CONNECTED)


async def call(client: httpx.AsyncClient, receiver: Receiver, call_id: str) -> dict[str, Any]:
    body = {"from": CALLER, "type": "call", "message_id": call_id}
    assert (await client.post("/api/simulator/incoming", headers=AUTH, json=body)).status_code == 202
    got = await receiver.until(lambda got: any(item.data.get("call_id") == call_id for item in got))
    return next(item.data for item in got if item.data.get("call_id") == call_id)


async def actions(client: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    answer = (await client.post("/api/simulator/actions", headers=AUTH)).json()["actions"]
    return [action for action in answer if action["action"] == name]


async def texts(client: httpx.AsyncClient) -> list[str]:
    async with state_of(client)["database"].connection() as connection:
        return [row["text"] for row in await connection.fetch("SELECT text FROM outgoing_messages ORDER BY created_at")]


async def test_calls_are_declined_and_the_caller_gets_the_message_once(app_client: Any) -> None:
    receiver = Receiver().start()
    env = {
        "WEBHOOK_URL": receiver.url,
        "WEBHOOK_SECRET": "s" * 32,
        "REJECT_CALLS": "true",
        "REJECT_CALLS_MESSAGE": SORRY,
        "SEND_MIN_INTERVAL": "0",
    }
    try:
        async with app_client(**env) as client:
            await link(client)
            first = await call(client, receiver, "CALL1")
            assert first["rejected"] is True and first["from"] == CALLER
            [declined] = await actions(client, "reject_call")
            assert (declined["call_id"], declined["caller"]) == ("CALL1", "6281111111111@s.whatsapp.net")

            deadline = time.monotonic() + 15
            while not (sent := (await client.get("/api/messages?status=sent", headers=AUTH)).json()["items"]):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            assert [m["to"] for m in sent] == [CALLER]
            assert await texts(client) == [SORRY]

            # WhatsApp's library failed to decline the next one: it rings on, and the caller gets no message.
            failing = {"name": "reject_call", "error": "rejecting call: websocket not connected"}
            assert (await client.post("/api/simulator/action_failures", headers=AUTH, json=failing)).status_code == 202
            assert (await call(client, receiver, "CALL2"))["rejected"] is False
            body = {"from": CALLER, "type": "call", "message_id": "CALL1"}  # the same offer again
            assert (await client.post("/api/simulator/incoming", headers=AUTH, json=body)).status_code == 202
            # The simulated server takes it in its own time: the next failure must not be spent on it.
            deadline = time.monotonic() + 15
            while len(await actions(client, "reject_call")) < 2:
                assert time.monotonic() < deadline, "the repeated offer was never declined"
                await asyncio.sleep(0.05)
            assert (await client.post("/api/simulator/action_failures", headers=AUTH, json=failing)).status_code == 202
            assert (await call(client, receiver, "CALL4"))["rejected"] is False  # stored after the repeated CALL1
            assert [a["call_id"] for a in await actions(client, "reject_call")] == ["CALL1", "CALL1"]
            assert await texts(client) == [SORRY]  # declined twice, answered once
    finally:
        receiver.close()


async def test_without_reject_calls_a_call_only_rings(app_client: Any) -> None:
    receiver = Receiver().start()
    try:
        async with app_client(WEBHOOK_URL=receiver.url, WEBHOOK_SECRET="s" * 32) as client:
            await link(client)
            assert (await call(client, receiver, "CALL3"))["rejected"] is False
            assert await actions(client, "reject_call") == []
            assert await texts(client) == []
    finally:
        receiver.close()
