"""Reactions, edits and deletes for everyone through the app, the durable queue, the sender and the simulated
WhatsApp: each is a queued row of its own with statuses and message.status events; refusals are 4xx with a reason."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.processes import TOKEN
from tests.web.conftest import ClientFactory, linked_app, state_of

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONTACT = "+6281111111111"
CONTACT_JID = "6281111111111@s.whatsapp.net"
GROUP = "120363021234567890@g.us"


@pytest.fixture
async def linked(app_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with linked_app(app_client, SEND_MIN_INTERVAL="0") as client:
        yield client


async def until_status(client: httpx.AsyncClient, message_id: str, *statuses: str) -> dict[str, Any]:
    """Poll the message (the sender works in its own task; the row is the signal)."""
    deadline = time.monotonic() + 15
    while True:
        message: dict[str, Any] = (await client.get(f"/api/messages/{message_id}", headers=AUTH)).json()
        if message["status"] in statuses:
            return message
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.02)


async def sent_message(client: httpx.AsyncClient, text: str = "Your order has shipped") -> dict[str, Any]:
    queued = await client.post("/api/messages", headers=AUTH, json={"to": CONTACT, "text": text})
    assert queued.status_code == 202
    return await until_status(client, queued.json()["id"], "sent")


async def server_actions(client: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    actions = (await client.post("/api/simulator/actions", headers=AUTH)).json()["actions"]
    return [action for action in actions if action["action"] == name]


async def status_events(client: httpx.AsyncClient, message_id: str) -> list[dict[str, Any]]:
    async with state_of(client)["database"].connection() as connection:
        rows = await connection.fetch(
            "SELECT data FROM outbox_events WHERE type = 'message.status' AND data->>'id' = $1 ORDER BY created_at",
            message_id,
        )
    return [json.loads(row["data"]) for row in rows]


async def test_react_edit_and_delete_our_sent_message(linked: httpx.AsyncClient) -> None:
    message = await sent_message(linked)
    whatsapp_id = message["message_id"]

    reaction = await linked.post(f"/api/messages/{message['id']}/reaction", headers=AUTH, json={"emoji": "👍"})
    assert reaction.status_code == 202 and reaction.headers["location"] == f"/api/messages/{reaction.json()['id']}"
    assert (reaction.json()["kind"], reaction.json()["target"], reaction.json()["status"]) == (
        "reaction",
        message["id"],
        "queued",
    )
    assert (await until_status(linked, reaction.json()["id"], "sent"))["message_id"].startswith("3EB0")
    [reacted] = await server_actions(linked, "reaction")
    assert (reacted["chat"], reacted["target_id"], reacted["sender"], reacted["emoji"]) == (
        CONTACT_JID,
        whatsapp_id,
        None,  # our own message
        "👍",
    )
    events = await status_events(linked, reaction.json()["id"])
    assert [event["status"] for event in events] == ["sending", "sent"]
    assert events[-1]["kind"] == "reaction" and events[-1]["target"] == message["id"]
    assert events[-1]["target_id"] == whatsapp_id

    edit = await linked.patch(f"/api/messages/{message['id']}", headers=AUTH, json={"text": "It arrives Monday"})
    assert edit.status_code == 202 and edit.json()["kind"] == "edit"
    await until_status(linked, edit.json()["id"], "sent")
    [edited] = await server_actions(linked, "edit")
    assert (edited["target_id"], edited["text"]) == (whatsapp_id, "It arrives Monday")

    delete = await linked.delete(f"/api/messages/{message['id']}", headers=AUTH)
    assert delete.status_code == 202 and delete.json()["kind"] == "delete"  # sent: deleted for everyone
    await until_status(linked, delete.json()["id"], "sent")
    [revoked] = await server_actions(linked, "revoke")
    assert (revoked["chat"], revoked["target_id"], revoked["sender"]) == (CONTACT_JID, whatsapp_id, None)
    assert (await until_status(linked, message["id"], "sent"))["kind"] == "text"  # the message's row is unchanged


async def test_react_to_an_incoming_message_by_whatsapps_id(linked: httpx.AsyncClient) -> None:
    body = {"from": "+6282222222222", "group": GROUP, "text": "rapat jam 3"}
    incoming = (await linked.post("/api/simulator/incoming", headers=AUTH, json=body)).json()["message_id"]
    deadline = time.monotonic() + 10
    path = f"/api/messages/{incoming}/reaction"
    while (answer := await linked.post(path, headers=AUTH, json={"emoji": "🙏"})).status_code == 404:
        assert time.monotonic() < deadline  # until the store has it
        await asyncio.sleep(0.02)
    assert answer.status_code == 202 and answer.json()["target"] == incoming
    await until_status(linked, answer.json()["id"], "sent")
    [reacted] = await server_actions(linked, "reaction")
    assert (reacted["chat"], reacted["target_id"], reacted["sender"]) == (
        GROUP,
        incoming,
        "6282222222222@s.whatsapp.net",  # a group member's message: the key names them
    )
    removed = await linked.post(f"/api/messages/{incoming}/reaction", headers=AUTH, json={"emoji": ""})
    assert removed.status_code == 202
    await until_status(linked, removed.json()["id"], "sent")
    assert (await server_actions(linked, "reaction"))[-1]["emoji"] == ""


async def test_what_cannot_be_done_is_refused_with_a_reason(app_client: ClientFactory) -> None:
    async with app_client() as client:  # pairing: nothing is sent, so messages stay queued
        queued = (await client.post("/api/messages", headers=AUTH, json={"to": CONTACT, "text": "hi"})).json()
        for method, path, body in [
            ("POST", f"/api/messages/{queued['id']}/reaction", {"emoji": "👍"}),
            ("PATCH", f"/api/messages/{queued['id']}", {"text": "hello"}),
        ]:
            answer = await client.request(method, path, headers=AUTH, json=body)
            assert answer.status_code == 409 and "only a sent message" in answer.json()["detail"], answer.text
        unknown = await client.post("/api/messages/3EB0NOSUCH/reaction", headers=AUTH, json={"emoji": "👍"})
        assert unknown.status_code == 404 and "received here" in unknown.json()["detail"]
        bad = await client.post(f"/api/messages/{queued['id']}/reaction", headers=AUTH, json={"emoji": "x" * 33})
        assert bad.status_code == 422 and "'emoji' must be" in bad.json()["detail"]
        empty = await client.patch(f"/api/messages/{queued['id']}", headers=AUTH, json={"text": ""})
        assert empty.status_code == 422 and "'text' must be" in empty.json()["detail"]
        cancelled = await client.delete(f"/api/messages/{queued['id']}", headers=AUTH)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"  # queued: cancelled
        again = await client.delete(f"/api/messages/{queued['id']}", headers=AUTH)
        assert again.status_code == 409 and "this one is cancelled" in again.json()["detail"]


async def test_an_old_message_cannot_be_edited_and_an_action_is_no_message(linked: httpx.AsyncClient) -> None:
    message = await sent_message(linked)
    reaction = await linked.post(f"/api/messages/{message['id']}/reaction", headers=AUTH, json={"emoji": "👍"})
    await until_status(linked, reaction.json()["id"], "sent")
    on_action = await linked.post(f"/api/messages/{reaction.json()['id']}/reaction", headers=AUTH, json={"emoji": "x"})
    assert on_action.status_code == 422 and "not a message" in on_action.json()["detail"]
    async with state_of(linked)["database"].connection() as connection:
        await connection.execute(
            "UPDATE outgoing_messages SET sent_at = now() - interval '16 minutes' WHERE id = $1::uuid", message["id"]
        )
    late = await linked.patch(f"/api/messages/{message['id']}", headers=AUTH, json={"text": "too late"})
    assert late.status_code == 422 and "15 minutes" in late.json()["detail"]


async def test_an_action_whatsapp_refuses_fails_visibly(linked: httpx.AsyncClient) -> None:
    message = await sent_message(linked)
    failing = {"name": "revoke", "error": "you're not participating in that group", "permanent": True}
    assert (await linked.post("/api/simulator/action_failures", headers=AUTH, json=failing)).status_code == 202
    delete = await linked.delete(f"/api/messages/{message['id']}", headers=AUTH)
    failed = await until_status(linked, delete.json()["id"], "failed")
    assert failed["error"] == "you're not participating in that group" and failed["attempts"] == 1
    events = await status_events(linked, delete.json()["id"])
    assert [(event["status"], event["kind"]) for event in events] == [("sending", "delete"), ("failed", "delete")]
