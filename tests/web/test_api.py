"""The session and simulator API: authentication on every route, validation, and the flows through a real worker."""

from __future__ import annotations

import httpx
import pytest

from app.sending import queue
from app.session.states import State
from app.session.supervisor import Supervisor
from tests.processes import TOKEN
from tests.session.conftest import wait_state
from tests.web.conftest import ClientFactory, state_of
from tests.whatsapp_stand_in import WHATSAPP_CONNECT, RefusingProxy

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROUTES = [
    ("GET", "/api/status"),
    ("GET", "/api/session/qr"),
    ("POST", "/api/session/pair-code"),
    ("POST", "/api/session/reconnect"),
    ("POST", "/api/session/logout"),
    ("POST", "/api/session/pair"),
    ("POST", "/api/simulator/pair"),
    ("POST", "/api/simulator/incoming"),
    ("POST", "/api/simulator/receipt"),
    ("POST", "/api/simulator/disconnect"),
    ("POST", "/api/simulator/crash"),
    ("POST", "/api/simulator/hang"),
    ("POST", "/api/simulator/actions"),
    ("POST", "/api/simulator/action_failures"),
    ("POST", "/api/chats/+6281234567890/read"),
    ("POST", "/api/chats/+6281234567890/presence"),
    ("POST", "/api/contacts/check"),
    ("GET", "/api/groups"),
    ("GET", "/api/groups/120363021234567890@g.us"),
    ("POST", "/api/simulator/groups"),
    ("POST", "/api/messages/3EB0A/reaction"),
    ("PATCH", "/api/messages/9b1c2d3e-4f50-4a6b-8c7d-0e1f2a3b4c5d"),
    ("DELETE", "/api/messages/9b1c2d3e-4f50-4a6b-8c7d-0e1f2a3b4c5d"),
    ("POST", "/api/simulator/numbers"),
    ("POST", "/api/media"),
]


def supervisor(client: httpx.AsyncClient) -> Supervisor:
    return state_of(client)["supervisor"]


async def test_every_api_route_refuses_without_credentials(client: httpx.AsyncClient) -> None:
    for method, path in ROUTES:
        for headers in ({}, {"Authorization": "Bearer nope"}):
            response = await client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path)
            assert response.json()["error"] == "unauthorized"


TOKEN_VARIANTS = [
    b"Bearer " + TOKEN.encode() + b"\xa0",  # a no-break space, which str.strip() removes
    b"Bearer " + TOKEN.encode() + "\u3000".encode(),  # an ideographic space, sent as UTF-8
    b"Bearer " + TOKEN.encode() + b"\x85",  # NEL: Unicode whitespace in Latin-1
    b"Bearer \xa0" + TOKEN.encode(),
    b"Bearer  " + TOKEN.encode(),  # two spaces
    b"Bearer\t" + TOKEN.encode(),
    b"Bearer " + TOKEN.encode() + b"x",
    b"Bearer " + TOKEN.encode()[:-1],
    b"Bearer " + TOKEN.encode() + b" ",
]


async def test_the_bearer_token_is_compared_exactly(client: httpx.AsyncClient) -> None:
    for value in TOKEN_VARIANTS:
        response = await client.get("/api/status", headers=[(b"authorization", value)])
        assert response.status_code == 401, value
    exact = await client.get("/api/status", headers=[(b"authorization", b"bEaReR " + TOKEN.encode())])
    assert exact.status_code == 200  # the scheme is case-insensitive; the token is not


async def test_pairing_flow_over_the_api(client: httpx.AsyncClient) -> None:
    await wait_state(supervisor(client), State.PAIRING)
    qr = await client.get("/api/session/qr", headers=AUTH)
    assert qr.status_code == 200 and qr.headers["cache-control"] == "no-store"
    assert qr.json()["payload"].startswith("2@") and qr.json()["svg"].startswith("<svg")
    code = await client.post("/api/session/pair-code", headers=AUTH, json={"phone": "+6281234567890"})
    assert code.status_code == 200 and len(code.json()["code"]) == 8
    paired = await client.post("/api/simulator/pair", headers=AUTH, json={"phone": "+6281234567890"})
    assert paired.status_code == 202 and paired.json()["jid"] == "6281234567890@s.whatsapp.net"
    await wait_state(supervisor(client), State.CONNECTED)
    assert (await client.get("/healthz")).json()["state"] == "connected"
    no_qr = await client.get("/api/session/qr", headers=AUTH)
    assert no_qr.status_code == 409 and "connected" in no_qr.json()["detail"]
    incoming = await client.post("/api/simulator/incoming", headers=AUTH, json={"from": "+628111", "text": "halo"})
    assert incoming.status_code == 422  # too short to be a phone number
    incoming = await client.post("/api/simulator/incoming", headers=AUTH, json={"from": "+6281111111111", "text": "x"})
    assert incoming.status_code == 202 and incoming.json()["message_id"].startswith("3EB0")
    logout = await client.post("/api/session/logout", headers=AUTH)
    assert logout.status_code == 202
    await wait_state(supervisor(client), State.PAIRING)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"phone": "081234567890"}, 422, "+<country code><number>"),
        ({"phone": "+62 812-3456"}, 422, "+<country code><number>"),
        ({"phone": 6281234567890}, 422, "international phone number"),
        ({}, 422, "'phone'"),
        ([1, 2], 422, "JSON object"),
    ],
)
async def test_pair_code_validation(client: httpx.AsyncClient, body: object, status: int, words: str) -> None:
    response = await client.post("/api/session/pair-code", headers=AUTH, json=body)
    assert response.status_code == status
    assert words in response.json()["detail"]


async def test_malformed_bodies_get_clear_4xx(client: httpx.AsyncClient) -> None:
    broken = await client.post(
        "/api/simulator/incoming", headers={**AUTH, "Content-Type": "application/json"}, content=b"{not json"
    )
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["detail"]
    form = await client.post("/api/simulator/incoming", headers=AUTH, data={"from": "+6281111111"})
    assert form.status_code == 415
    unknown = await client.post("/api/simulator/explode", headers=AUTH)
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    reason = await client.post("/api/simulator/disconnect", headers=AUTH, json={"reason": "meteor"})
    assert reason.status_code == 422 and "connection_lost" in reason.json()["detail"]


async def test_simulator_routes_are_404_with_the_neonize_backend(
    app_client: ClientFactory, whatsapp_proxy: RefusingProxy
) -> None:
    async with app_client(WHATSAPP_BACKEND="neonize", **whatsapp_proxy.env()) as client:
        for action in ("pair", "incoming", "disconnect", "crash"):
            response = await client.post(f"/api/simulator/{action}", headers=AUTH, json={})
            assert response.status_code == 404, action
            assert "simulator is not in use" in response.json()["detail"]
        # the neonize worker's dial (refused by the local stand-in, never WhatsApp) fails and the session backs off
        await wait_state(supervisor(client), State.RECONNECTING, timeout=30)
        assert supervisor(client).reason == "dial_failed"
    assert whatsapp_proxy.requests[:1] == [WHATSAPP_CONNECT]


async def test_an_unhandled_error_is_a_json_500_with_the_security_headers(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("a bug in a query, mentioning internal-detail-1234")

    monkeypatch.setattr(queue, "get", broken)
    response = await client.get("/api/messages/00000000-0000-0000-0000-000000000000", headers=AUTH)
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "detail": "internal error; it has been logged"}
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "internal-detail-1234" not in response.text  # the cause is logged, not shown
    assert any("internal-detail-1234" in str(record.exc_info) for record in caplog.records if record.exc_info)


@pytest.mark.parametrize(
    ("group", "chat"),
    [
        ("120363025246125486@g.us", "120363025246125486@g.us"),  # a group JID as webhook events name it
        ("120363025246125486", "120363025246125486@g.us"),  # or its id
        ("6281234567890-1596000000", "6281234567890-1596000000@g.us"),  # the older <creator>-<time> form
        ("6281234567890-1596000000@g.us", "6281234567890-1596000000@g.us"),
        ("not a group!!", None),
        ("120363025246125486@g.us@g.us", None),
        ("6281234567890@s.whatsapp.net", None),
        ("12-34-56", None),
        ("-123", None),
    ],
)
async def test_simulated_groups_are_a_group_jid_or_its_id(
    client: httpx.AsyncClient, group: str, chat: str | None
) -> None:
    await wait_state(supervisor(client), State.PAIRING)
    await client.post("/api/simulator/pair", headers=AUTH, json={"phone": "+6281234567890"})
    await wait_state(supervisor(client), State.CONNECTED)
    for action, body in (
        ("incoming", {"from": "+6281111111111", "text": "halo", "group": group}),
        ("receipt", {"from": "+6281111111111", "message_ids": ["3EB0OURS"], "status": "read", "group": group}),
    ):
        response = await client.post(f"/api/simulator/{action}", headers=AUTH, json=body)
        if chat is None:
            assert response.status_code == 422, (action, response.text)
            assert "'group' must be a group JID" in response.json()["detail"]
        else:
            assert response.status_code == 202, (action, response.text)
            assert response.json()["chat"] == chat
