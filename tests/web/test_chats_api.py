"""POST /api/chats/{chat}/read through the app, its real worker and the simulated WhatsApp: who the receipts name,
what is refused, and every failure a 4xx with its reason."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.session.states import State
from tests.processes import TOKEN
from tests.session.conftest import wait_state
from tests.web.conftest import ClientFactory, linked_app, state_of

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONTACT = "+6281111111111"
CONTACT_JID = "6281111111111@s.whatsapp.net"
MEMBER = "+6282222222222"
GROUP = "120363021234567890@g.us"


@pytest.fixture
async def linked(app_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with linked_app(app_client) as client:
        yield client


async def incoming(client: httpx.AsyncClient, **body: Any) -> str:
    """A message arrives; returns its id once it is stored (the store writes in its own task: its row is the sign)."""
    answer = await client.post("/api/simulator/incoming", headers=AUTH, json=body)
    assert answer.status_code == 202
    message_id = str(answer.json()["message_id"])
    deadline = time.monotonic() + 10
    while True:
        async with state_of(client)["database"].connection() as connection:
            if await connection.fetchval("SELECT 1 FROM incoming_messages WHERE message_id = $1", message_id):
                return message_id
        assert time.monotonic() < deadline, f"{message_id} was never stored"
        await asyncio.sleep(0.02)


async def server_actions(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    answer = await client.post("/api/simulator/actions", headers=AUTH)
    assert answer.status_code == 202
    actions: list[dict[str, Any]] = answer.json()["actions"]
    return actions


async def test_read_receipts_name_each_sender(linked: httpx.AsyncClient) -> None:
    first = await incoming(linked, **{"from": CONTACT, "text": "halo"})
    read = await linked.post(f"/api/chats/{CONTACT}/read", headers=AUTH, json={"message_ids": [first, "3EB0OLDER"]})
    assert read.status_code == 200
    # In a 1:1 chat the sender is the chat: an id this gateway never stored (pruned, older) is marked all the same.
    assert read.json() == {"chat": CONTACT_JID, "message_ids": [first, "3EB0OLDER"], "receipts": 1}

    in_group = await incoming(linked, **{"from": MEMBER, "group": GROUP, "text": "rapat jam 3"})
    other = await incoming(linked, **{"from": CONTACT, "group": GROUP, "text": "ok"})
    read = await linked.post(f"/api/chats/{GROUP}/read", headers=AUTH, json={"message_ids": [in_group, other]})
    assert read.status_code == 200 and read.json()["receipts"] == 2

    marked = [action for action in await server_actions(linked) if action["action"] == "mark_read"]
    assert [(action["chat"], action["sender"], action["message_ids"]) for action in marked] == [
        (CONTACT_JID, CONTACT_JID, [first, "3EB0OLDER"]),
        (GROUP, "6282222222222@s.whatsapp.net", [in_group]),
        (GROUP, CONTACT_JID, [other]),
    ]


async def test_read_up_to_a_message_marks_it_and_those_before_it(linked: httpx.AsyncClient) -> None:
    first = await incoming(linked, **{"from": CONTACT, "text": "satu"})
    second = await incoming(linked, **{"from": CONTACT, "text": "dua"})
    elsewhere = await incoming(linked, **{"from": MEMBER, "text": "another chat"})
    later = await incoming(linked, **{"from": CONTACT, "text": "tiga"})
    read = await linked.post(f"/api/chats/{CONTACT}/read", headers=AUTH, json={"up_to": second})
    assert read.status_code == 200
    assert read.json() == {"chat": CONTACT_JID, "message_ids": [first, second], "receipts": 1}  # not `later`
    marked = [action for action in await server_actions(linked) if action["action"] == "mark_read"]
    assert [action["message_ids"] for action in marked] == [[first, second]]
    assert elsewhere not in marked[0]["message_ids"] and later not in marked[0]["message_ids"]
    unknown = await linked.post(f"/api/chats/{CONTACT}/read", headers=AUTH, json={"up_to": elsewhere})
    assert unknown.status_code == 404 and elsewhere in unknown.json()["detail"]  # received, but in another chat


async def test_what_cannot_be_marked_read_is_refused_with_a_reason(linked: httpx.AsyncClient) -> None:
    unknown = await linked.post(f"/api/chats/{GROUP}/read", headers=AUTH, json={"message_ids": ["3EB0NEVER"]})
    assert unknown.status_code == 404 and "3EB0NEVER" in unknown.json()["detail"]
    own = await incoming(linked, **{"from": CONTACT, "text": "typed on the phone", "from_me": True})
    refused = await linked.post(f"/api/chats/{CONTACT}/read", headers=AUTH, json={"message_ids": [own]})
    assert refused.status_code == 422 and "sent by this account" in refused.json()["detail"]
    bad_chat = await linked.post("/api/chats/status@broadcast/read", headers=AUTH, json={"message_ids": ["x"]})
    assert bad_chat.status_code == 422 and "the chat in the path" in bad_chat.json()["detail"]
    for body, words in [
        ({"message_ids": []}, "'message_ids' must be a list of 1 to 100"),
        ({"message_ids": ["x"] * 101}, "'message_ids' must be a list of 1 to 100"),
        ({"message_ids": [""]}, "message_ids.0"),
        ({}, "either 'message_ids' or 'up_to'"),
        ({"message_ids": ["x"], "up_to": "x"}, "not both"),
    ]:
        answer = await linked.post(f"/api/chats/{CONTACT}/read", headers=AUTH, json=body)
        assert answer.status_code == 422 and words in answer.json()["detail"], (body, answer.text)
    assert not [action for action in await server_actions(linked) if action["action"] == "mark_read"]


@pytest.mark.parametrize(
    ("error", "permanent", "status"),
    [
        ("info query timed out", False, 409),
        ("server returned error 403", True, 422),
        ("info query returned status 429: rate-overlimit", False, 429),
    ],
)
async def test_whatsapp_failures_are_4xx_with_whatsapps_reason(
    linked: httpx.AsyncClient, error: str, permanent: bool, status: int
) -> None:
    failing = {"name": "mark_read", "error": error, "permanent": permanent}
    assert (await linked.post("/api/simulator/action_failures", headers=AUTH, json=failing)).status_code == 202
    answer = await linked.post(f"/api/chats/{CONTACT}/read", headers=AUTH, json={"message_ids": ["3EB0A"]})
    assert answer.status_code == status and error in answer.json()["detail"]
    again = await linked.post(f"/api/chats/{CONTACT}/read", headers=AUTH, json={"message_ids": ["3EB0A"]})
    assert again.status_code == 200  # the failure was for one call only


async def test_not_connected_is_a_409(app_client: ClientFactory) -> None:
    async with app_client() as client:
        await wait_state(state_of(client)["supervisor"], State.PAIRING)
        answer = await client.post(f"/api/chats/{CONTACT}/read", headers=AUTH, json={"message_ids": ["3EB0A"]})
        assert answer.status_code == 409 and "pairing" in answer.json()["detail"]


async def test_presence_in_a_chat(linked: httpx.AsyncClient) -> None:
    for state in ("typing", "recording", "paused"):
        answer = await linked.post(f"/api/chats/{GROUP}/presence", headers=AUTH, json={"state": state})
        assert answer.status_code == 200 and answer.json() == {"chat": GROUP, "state": state}
    shown = [(a["chat"], a["state"]) for a in await server_actions(linked) if a["action"] == "presence"]
    assert shown == [(GROUP, "typing"), (GROUP, "recording"), (GROUP, "paused")]
    wrong = await linked.post(f"/api/chats/{CONTACT}/presence", headers=AUTH, json={"state": "online"})
    assert wrong.status_code == 422 and "one of typing, recording, paused" in wrong.json()["detail"]
    failing = {"name": "presence", "error": "rate-overlimit"}
    assert (await linked.post("/api/simulator/action_failures", headers=AUTH, json=failing)).status_code == 202
    refused = await linked.post(f"/api/chats/{CONTACT}/presence", headers=AUTH, json={"state": "typing"})
    assert refused.status_code == 429 and "rate-overlimit" in refused.json()["detail"]  # WhatsApp's rate limit
