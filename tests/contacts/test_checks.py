"""POST /api/contacts/check through the app and the simulated WhatsApp: answers, the cache, the pace (the app's and
WhatsApp's own rate limit), and every refusal a 4xx with its reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.contacts.checks import LIMITS, wait_for_room
from app.session.states import State
from app.session.supervisor import SessionError
from app.whatsapp import protocol
from tests.processes import TOKEN
from tests.session.conftest import wait_state
from tests.web.conftest import ClientFactory, linked_app, state_of

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ON = "+6281111111111"
ABSENT = "+6282222222222"


@pytest.fixture
async def linked(app_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with linked_app(app_client, CHECK_CACHE_DAYS="3") as client:
        assert (await client.post("/api/simulator/numbers", headers=AUTH, json={"absent": [ABSENT]})).status_code == 202
        yield client


async def look_ups(client: httpx.AsyncClient) -> list[list[str]]:
    actions = (await client.post("/api/simulator/actions", headers=AUTH)).json()["actions"]
    return [action["phones"] for action in actions if action["action"] == "check_numbers"]


def phones(start: int, count: int) -> list[str]:
    return [f"+62812{number:08d}" for number in range(start, start + count)]


async def test_answers_then_the_cache(linked: httpx.AsyncClient) -> None:
    body = {"phones": [ON, "+62 822-2222-2222", ON]}  # the second is ABSENT, written another way
    first = await linked.post("/api/contacts/check", headers=AUTH, json=body)
    assert first.status_code == 200
    results = first.json()["results"]
    assert [(r["phone"], r["on_whatsapp"], r["jid"], r["cached"]) for r in results] == [
        (ON, True, "6281111111111@s.whatsapp.net", False),
        (ABSENT, False, None, False),
    ]
    again = await linked.post("/api/contacts/check", headers=AUTH, json={"phones": [ABSENT, ON, "+6283333333333"]})
    assert [(r["phone"], r["cached"]) for r in again.json()["results"]] == [
        (ABSENT, True),
        (ON, True),
        ("+6283333333333", False),
    ]
    assert again.json()["results"][0]["checked_at"] == results[1]["checked_at"]
    assert await look_ups(linked) == [[ON, ABSENT], ["+6283333333333"]]  # only what was not cached

    async with state_of(linked)["database"].connection() as connection:  # CHECK_CACHE_DAYS=3 have passed for ON
        await connection.execute(
            "UPDATE contact_checks SET checked_at = now() - interval '73 hours' WHERE phone = $1", ON
        )
    expired = await linked.post("/api/contacts/check", headers=AUTH, json={"phones": [ON]})
    assert expired.json()["results"][0]["cached"] is False and (await look_ups(linked))[-1] == [ON]


async def test_look_ups_are_paced_and_cached_answers_are_not(linked: httpx.AsyncClient) -> None:
    batch = phones(0, 50)
    assert (await linked.post("/api/contacts/check", headers=AUTH, json={"phones": batch})).status_code == 200
    refused = await linked.post("/api/contacts/check", headers=AUTH, json={"phones": [*batch[:3], ON]})
    assert refused.status_code == 429
    assert "at most 50 numbers" in refused.json()["detail"] and "banned" in refused.json()["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    cached = await linked.post("/api/contacts/check", headers=AUTH, json={"phones": batch[:10]})
    assert cached.status_code == 200 and all(r["cached"] for r in cached.json()["results"])
    assert len(await look_ups(linked)) == 1  # the refused request asked WhatsApp nothing


async def test_whatsapps_own_rate_limit_and_failures_are_4xx(linked: httpx.AsyncClient) -> None:
    supervisor = state_of(linked)["supervisor"]
    with pytest.raises(SessionError) as limited:  # the simulated WhatsApp allows 60 numbers a minute
        await supervisor.command(protocol.CHECK_NUMBERS, {"phones": phones(100, 61)})
    assert limited.value.status == 429 and "rate-overlimit" in str(limited.value)
    failing = {"name": "check_numbers", "error": "info query returned status 429: rate-overlimit"}
    assert (await linked.post("/api/simulator/action_failures", headers=AUTH, json=failing)).status_code == 202
    answer = await linked.post("/api/contacts/check", headers=AUTH, json={"phones": [ON]})
    assert answer.status_code == 429 and "WhatsApp limits" in answer.json()["detail"]
    failing = {"name": "check_numbers", "error": "usync timed out"}
    assert (await linked.post("/api/simulator/action_failures", headers=AUTH, json=failing)).status_code == 202
    answer = await linked.post("/api/contacts/check", headers=AUTH, json={"phones": [ON]})
    assert answer.status_code == 409 and "usync timed out" in answer.json()["detail"]
    async with state_of(linked)["database"].connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM contact_checks") == 0  # nothing answered, nothing kept


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"phones": []}, "'phones' must be a list of 1 to 50"),
        ({"phones": phones(0, 51)}, "'phones' must be a list of 1 to 50"),
        ({"phones": [ON, "081234567890"]}, "phones.1"),
        ({"phones": ON}, "'phones' must be a list"),
        ({}, "'phones'"),
    ],
)
async def test_invalid_requests(linked: httpx.AsyncClient, body: dict[str, Any], words: str) -> None:
    answer = await linked.post("/api/contacts/check", headers=AUTH, json=body)
    assert answer.status_code == 422 and words in answer.json()["detail"], answer.text


async def test_not_connected_is_a_409(app_client: ClientFactory) -> None:
    async with app_client() as client:
        await wait_state(state_of(client)["supervisor"], State.PAIRING)
        answer = await client.post("/api/contacts/check", headers=AUTH, json={"phones": [ON]})
        assert answer.status_code == 409 and "pairing" in answer.json()["detail"]


def test_the_hourly_pace() -> None:
    now = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
    hour_limit = LIMITS[-1][1]
    recent = [now - dt.timedelta(minutes=59, seconds=30)] * 10 + [now - dt.timedelta(minutes=30)] * (hour_limit - 10)
    assert wait_for_room(recent, 5, now) == (f"at most {hour_limit} numbers are checked at WhatsApp per 3600 s", 30)
    assert wait_for_room(recent, 11, now) == (f"at most {hour_limit} numbers are checked at WhatsApp per 3600 s", 1800)
    assert wait_for_room(recent[:-5], 5, now) is None
