"""GET /api/groups and /api/groups/{jid} through the app and the simulated WhatsApp, and sending to a group the
account is not in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from app.session.states import State
from tests.processes import TOKEN
from tests.session.conftest import wait_state
from tests.web.conftest import ClientFactory, linked_app, state_of

AUTH = {"Authorization": f"Bearer {TOKEN}"}
GROUP = "120363021234567890@g.us"
OTHER = "120363029999999999@g.us"
GROUPS = {
    "groups": [
        {
            "jid": GROUP,
            "name": "Toko Maju staff",
            "participants": ["+6281234567890", "+6281111111111", "+6282222222222"],
            "admins": ["+6281234567890"],
        },
        {"jid": "6281111111111-1600000000", "name": "Old style", "participants": ["+6281111111111"], "announce": True},
    ]
}


@pytest.fixture
async def linked(app_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with linked_app(app_client, SEND_MIN_INTERVAL="0") as client:
        assert (await client.post("/api/simulator/groups", headers=AUTH, json=GROUPS)).status_code == 202
        yield client


async def test_the_accounts_groups_and_one_with_its_members(linked: httpx.AsyncClient) -> None:
    listed = await linked.get("/api/groups", headers=AUTH)
    assert listed.status_code == 200
    assert [(g["jid"], g["name"], g["participant_count"], g["announce"]) for g in listed.json()["groups"]] == [
        (GROUP, "Toko Maju staff", 3, False),
        ("6281111111111-1600000000@g.us", "Old style", 1, True),
    ]
    one = await linked.get("/api/groups/120363021234567890", headers=AUTH)  # the id alone will do
    assert one.status_code == 200 and one.json()["jid"] == GROUP
    members = {(m["phone"], m["jid"], m["is_admin"]) for m in one.json()["participants"]}
    assert members == {
        ("+6281234567890", "6281234567890@s.whatsapp.net", True),
        ("+6281111111111", "6281111111111@s.whatsapp.net", False),
        ("+6282222222222", "6282222222222@s.whatsapp.net", False),
    }


async def test_a_group_the_account_is_not_in(linked: httpx.AsyncClient) -> None:
    missing = await linked.get(f"/api/groups/{OTHER}", headers=AUTH)
    assert missing.status_code == 404 and "not participating" in missing.json()["detail"]
    bad = await linked.get("/api/groups/not-a-group", headers=AUTH)
    assert bad.status_code == 422 and "group JID" in bad.json()["detail"]
    queued = await linked.post("/api/messages", headers=AUTH, json={"to": OTHER, "text": "halo"})
    deadline = time.monotonic() + 15
    while (message := (await linked.get(f"/api/messages/{queued.json()['id']}", headers=AUTH)).json())[
        "status"
    ] != "failed":
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.02)
    assert message["error"] == "you're not participating in that group" and message["attempts"] == 1


async def test_failures_and_a_session_that_is_down(app_client: ClientFactory) -> None:
    async with app_client() as client:
        await wait_state(state_of(client)["supervisor"], State.PAIRING)
        for path in ("/api/groups", f"/api/groups/{GROUP}"):
            answer = await client.get(path, headers=AUTH)
            assert answer.status_code == 409 and "pairing" in answer.json()["detail"]


async def test_whatsapps_rate_limit_on_group_queries_is_a_429(linked: httpx.AsyncClient) -> None:
    failing = {"name": "joined_groups", "error": "info query returned status 429: rate-overlimit"}
    assert (await linked.post("/api/simulator/action_failures", headers=AUTH, json=failing)).status_code == 202
    limited = await linked.get("/api/groups", headers=AUTH)
    assert limited.status_code == 429 and "rate-overlimit" in limited.json()["detail"]
    assert (await linked.get("/api/groups", headers=AUTH)).status_code == 200


async def test_a_message_to_a_group_mentions_members(linked: httpx.AsyncClient) -> None:
    mentions = ["+6281111111111", "6282222222222@s.whatsapp.net", "+62 811-1111-1111"]  # any form; each once
    body = {"to": GROUP, "text": "@6281111111111 @6282222222222 rapat jam 3", "mentions": mentions}
    queued = await linked.post("/api/messages", headers=AUTH, json=body)
    assert queued.status_code == 202
    assert queued.json()["mentions"] == ["6281111111111@s.whatsapp.net", "6282222222222@s.whatsapp.net"]
    deadline = time.monotonic() + 15
    while (await linked.get(f"/api/messages/{queued.json()['id']}", headers=AUTH)).json()["status"] != "sent":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    actions = (await linked.post("/api/simulator/actions", headers=AUTH)).json()["actions"]
    [sent] = [action for action in actions if action["action"] == "send"]
    assert (sent["to"], sent["mentions"]) == (GROUP, queued.json()["mentions"])


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"to": "+6281111111111", "text": "@6282222222222", "mentions": ["+6282222222222"]}, "only for a message to"),
        ({"to": GROUP, "text": "hello all", "mentions": ["+6282222222222"]}, "it lacks @6282222222222"),
        ({"to": GROUP, "text": f"@{GROUP}", "mentions": [GROUP]}, "not a group"),
        ({"to": GROUP, "text": "x", "mentions": []}, "'mentions' must be a list of 1 to 50"),
        ({"to": GROUP, "text": "@0812", "mentions": ["0812"]}, "international form"),
    ],
)
async def test_mentions_that_cannot_work_are_refused(
    linked: httpx.AsyncClient, body: dict[str, object], words: str
) -> None:
    answer = await linked.post("/api/messages", headers=AUTH, json=body)
    assert answer.status_code == 422 and words in answer.json()["detail"], answer.text
