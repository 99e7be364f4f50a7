"""The OpenAPI document: public, written from the route table and the models, so every /api route is in it as it
answers (the drift a hand-written document had: POST /api/messages documented with a 200 and no body)."""

from __future__ import annotations

import json
import re

import httpx
from starlette.routing import Route

from app.phone import normalise_phone, parse_recipient
from app.web import api, chats_api, contacts_api, groups_api, messages_api, simulator_api, webhooks_api
from app.web.endpoint import Operation
from app.web.openapi import openapi_document
from tests.processes import BASE_ENV

ROUTES = [
    *api.ROUTES,
    *simulator_api.ROUTES,
    *messages_api.ROUTES,
    *chats_api.ROUTES,
    *contacts_api.ROUTES,
    *groups_api.ROUTES,
    *webhooks_api.ROUTES,
]


async def test_every_api_route_is_described_from_its_operation(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/openapi.json")  # public: no credentials
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"].startswith("3.1") and document["info"]["version"]
    routes = [r for r in client.app.routes if isinstance(r, Route) and r.path.startswith("/api/")]  # type: ignore[attr-defined]
    described = 0
    for route in routes:
        if route.path == "/api/openapi.json":
            continue
        assert isinstance(getattr(route, "operation", None), Operation), route.path  # no route left undeclared
        path = route.path.replace(":int}", "}")
        for method in (route.methods or set()) - {"HEAD"}:
            operation = document["paths"][path][method.lower()]
            assert operation["security"] == [{"bearer": []}, {"cookie": []}]
            assert {"401", "403"} <= set(operation["responses"])
            described += 1
    assert described == sum(len(methods) for methods in document["paths"].values())
    for secret in (BASE_ENV["ADMIN_PASSWORD"], BASE_ENV["API_TOKEN"], BASE_ENV["SECRET_KEY"]):
        assert secret not in response.text


async def test_answers_are_documented_as_sent(client: httpx.AsyncClient) -> None:
    document = (await client.get("/api/openapi.json")).json()
    schemas = document["components"]["schemas"]
    send = document["paths"]["/api/messages"]["post"]
    assert "200" in send["responses"] and "202" in send["responses"]
    queued = send["responses"]["202"]
    assert queued["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Message"}
    assert "Location" in queued["headers"]
    assert {"id", "to", "jid", "status", "created_at"} <= set(schemas["Message"]["required"])
    assert {"409", "413", "415", "422"} <= set(send["responses"])
    for status, answer in send["responses"].items():
        if int(status) >= 400:
            assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert schemas["Error"]["required"] == ["error", "detail"]
    to = schemas["SendMessage"]["properties"]["to"]
    assert all(kind in to["description"] for kind in ("@s.whatsapp.net", "@c.us", "@lid", "@g.us"))
    idempotency = [p for p in send["parameters"] if p["in"] == "header"]
    assert idempotency[0]["name"] == "Idempotency-Key" and idempotency[0]["schema"]["maxLength"] == 255
    listing = document["paths"]["/api/messages"]["get"]
    limit = next(p for p in listing["parameters"] if p["name"] == "limit")
    assert limit == {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": limit["schema"],
        "description": "a whole number from 1 to 200",
    }
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"], limit["schema"]["type"]) == (1, 200, "integer")
    assert document["paths"]["/api/status"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StatusAnswer"
    }
    # The typed status (app/status.py) is the schema, with the JSON names /api/status uses.
    assert {"state", "since", "account", "worker", "incoming", "webhooks", "send_queue", "tasks"} <= set(
        schemas["Status"]["properties"]
    )
    assert "from" in schemas["TransitionEntry"]["properties"] and "import" in schemas["AuthStoreStatus"]["properties"]


async def test_actions_on_chats_are_documented_with_examples(client: httpx.AsyncClient) -> None:
    document = (await client.get("/api/openapi.json")).json()
    read = document["paths"]["/api/chats/{chat}/read"]["post"]
    chat = next(parameter for parameter in read["parameters"] if parameter["name"] == "chat")
    assert "@g.us" in chat["schema"]["examples"][-1]
    assert {"200", "404", "409", "422"} <= set(read["responses"])
    assert [status for status in read["responses"] if status >= "500"] == ["503"]  # only the database's, as everywhere
    body = document["components"]["schemas"]["MarkRead"]["properties"]
    listed = next(kind for kind in body["message_ids"]["anyOf"] if kind["type"] == "array")
    assert listed["maxItems"] == 100 and body["message_ids"]["examples"] and body["up_to"]["examples"]


async def test_the_documented_examples_are_accepted(client: httpx.AsyncClient) -> None:
    """The phone form the document shows is the one app/phone.py takes (it is the only place phones are checked)."""
    schemas = (await client.get("/api/openapi.json")).json()["components"]["schemas"]
    phone = schemas["PairCodeBody"]["properties"]["phone"]
    assert "+<country code><number>" in phone["description"] and "pattern" not in phone
    for example in phone["examples"]:
        assert normalise_phone(example) == example
    for example in schemas["SendMessage"]["properties"]["to"]["examples"]:
        parse_recipient(example)


def test_every_reference_resolves_and_every_definition_is_used() -> None:
    document = openapi_document(ROUTES)
    text = json.dumps(document)
    referenced = set(re.findall(r'"#/components/schemas/(\w+)"', text))
    assert referenced == set(document["components"]["schemas"])


def test_the_simulator_is_documented_only_where_it_runs() -> None:
    assert not any(
        path.startswith("/api/simulator/") for path in openapi_document(simulator_api.routes("neonize"))["paths"]
    )
    assert "/api/simulator/incoming" in openapi_document(simulator_api.routes("simulator"))["paths"]
