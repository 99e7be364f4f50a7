"""/healthz is public and never needs the database; every error is JSON; /api/* refuses without the token."""

from __future__ import annotations

import httpx
import pytest

from tests.processes import TOKEN


async def test_healthz_is_public_and_reports_the_state(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert response.json()["state"] in {"starting", "connecting", "pairing"}  # a fresh database has no device


async def test_errors_are_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/no/such/page")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "detail": "Not Found"}
    wrong_method = await client.post("/healthz")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"]
)
async def test_api_refuses_without_the_token(client: httpx.AsyncClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await client.get("/api/status", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_api_status_with_the_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    body = response.json()
    assert body["schema_version"] >= 1 and body["auth_store"]["kind"] == "postgres"
    assert body["incoming"] == {"waiting_to_be_stored": 0, "store_error": None, "stored_since_start": 0}
