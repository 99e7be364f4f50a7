"""The app in-process over ASGI, with its lifespan (database, migrations, supervisor and a real worker) running,
served as app/asgi.py serves it (deployed, behind the router's one trusted hop)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from app.asgi import behind_router
from app.main import create_app
from app.session.states import State
from app.settings import Settings, load_settings
from app.web.state import AppState
from tests.processes import BASE_ENV, TOKEN
from tests.session.conftest import wait_state
from tests.webhooks.conftest import receiver  # a real receiver, for the webhook API's tests

__all__ = ["receiver"]  # re-exported as a fixture; the rest is imported by name

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@asynccontextmanager
async def serving(
    app: Starlette, headers: Mapping[str, str] | None = None, settings: Settings | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of `app` with its lifespan running. Like an ASGI server, each request gets a shallow copy of
    the lifespan's state; the state itself is `client.state` (a test may swap a service in it). With `settings`, the
    app is served as app/asgi.py serves it (deployed, behind the router's one trusted hop)."""
    served = behind_router(app, settings) if settings is not None else app
    async with app.router.lifespan_context(app) as state:
        shared: dict[str, Any] = dict(state or {})

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] in ("http", "websocket"):
                scope["state"] = dict(shared)
            await served(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as http:
            http.app = app  # type: ignore[attr-defined]
            http.state = shared  # type: ignore[attr-defined]
            yield http


def state_of(client: httpx.AsyncClient) -> AppState:
    state: AppState = client.state  # type: ignore[attr-defined]
    return state


@pytest.fixture
def app_client(database_url: str, monkeypatch: pytest.MonkeyPatch) -> ClientFactory:
    @asynccontextmanager
    async def open_client(**env: str) -> AsyncIterator[httpx.AsyncClient]:
        for name, value in {**BASE_ENV, "DATABASE_URL": database_url, **env}.items():
            monkeypatch.setenv(name, value)
        settings = load_settings()
        async with serving(create_app(settings), settings=settings) as http:
            yield http

    return open_client


@pytest.fixture
async def client(app_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client() as http:
        yield http


@asynccontextmanager
async def linked_app(app_client: ClientFactory, **env: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app (with `env` set) whose simulated account is linked and connected."""
    async with app_client(**env) as client:
        supervisor = state_of(client)["supervisor"]
        await wait_state(supervisor, State.PAIRING)
        paired = await client.post(
            "/api/simulator/pair", headers={"Authorization": f"Bearer {TOKEN}"}, json={"phone": "+6281234567890"}
        )
        assert paired.status_code == 202, paired.text
        await wait_state(supervisor, State.CONNECTED)
        yield client
