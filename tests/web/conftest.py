"""The app in-process over ASGI, with its lifespan (database, migrations, supervisor and a real worker) running,
served as app/asgi.py serves it (deployed, behind the router's one trusted hop)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette

from app.asgi import behind_router
from app.main import create_app
from app.settings import load_settings
from tests.processes import BASE_ENV

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def app_client(database_url: str, monkeypatch: pytest.MonkeyPatch) -> ClientFactory:
    @asynccontextmanager
    async def open_client(**env: str) -> AsyncIterator[httpx.AsyncClient]:
        for name, value in {**BASE_ENV, "DATABASE_URL": database_url, **env}.items():
            monkeypatch.setenv(name, value)
        settings = load_settings()
        app: Starlette = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=behind_router(app, settings))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                http.app = app  # type: ignore[attr-defined]
                yield http

    return open_client


@pytest.fixture
async def client(app_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client() as http:
        yield http
