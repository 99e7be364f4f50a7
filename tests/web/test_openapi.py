"""The OpenAPI document: public, complete (every /api route of the app), and consistent with the API's rules."""

from __future__ import annotations

import re

import httpx
from starlette.routing import Route

from app.web.api import PHONE
from app.web.openapi import PHONE_PATTERN, openapi_document
from tests.processes import BASE_ENV


async def test_openapi_document_lists_every_api_route(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1") and document["info"]["version"]
    routes = [r for r in client.app.routes if isinstance(r, Route) and r.path.startswith("/api/")]  # type: ignore[attr-defined]
    for route in routes:
        if route.path == "/api/openapi.json":
            continue
        path = re.sub(r"{(\w+):\w+}", r"{\1}", route.path)
        assert path in document["paths"], path
        for method in (route.methods or set()) - {"HEAD"}:
            operation = document["paths"][path][method.lower()]
            assert operation["security"] == [{"bearer": []}, {"cookie": []}]
            assert "401" in operation["responses"]
    for secret in (BASE_ENV["ADMIN_PASSWORD"], BASE_ENV["API_TOKEN"], BASE_ENV["SECRET_KEY"]):
        assert secret not in response.text
    pair_code = document["paths"]["/api/session/pair-code"]["post"]
    assert "422" in pair_code["responses"] and "+<country code><number>" in str(pair_code)
    send = document["paths"]["/api/messages"]["post"]
    to = send["requestBody"]["content"]["application/json"]["schema"]["properties"]["to"]
    assert all(kind in to["description"] for kind in ("@s.whatsapp.net", "@c.us", "@lid", "@g.us"))


def test_undocumented_routes_still_appear() -> None:
    async def deliveries() -> None:
        """Failed webhook deliveries."""

    document = openapi_document([Route("/api/webhooks/deliveries/{id:int}/retry", deliveries, methods=["POST"])])
    operation = document["paths"]["/api/webhooks/deliveries/{id}/retry"]["post"]
    assert operation["summary"] == "Failed webhook deliveries."
    assert operation["parameters"][0]["name"] == "id"


def test_the_documented_phone_pattern_is_the_one_enforced() -> None:
    samples = ["+6281234567890", "+1555000", "081234567890", "+0123456789", "+62812345678901234", "+٦٢٨١٢٣٤٥٦٧٨"]
    assert [bool(re.fullmatch(PHONE_PATTERN.strip("^$"), s)) for s in samples] == [
        bool(PHONE.fullmatch(s)) for s in samples
    ]
