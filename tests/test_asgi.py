"""The app as served: deployed, behind the platform's router (one trusted hop); locally, exactly as built."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from app.asgi import RouterHop, behind_router
from app.settings import load_settings
from tests.processes import AppProcess
from tests.test_server_process import procfile_command


class Recorder:
    """An ASGI app that keeps the scope it was called with."""

    def __init__(self) -> None:
        self.scope: Scope | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope


async def nothing() -> Message:
    return {"type": "http.disconnect"}


async def discard(message: Message) -> None:
    pass


async def test_one_hop_is_trusted_and_the_lifespan_state_is_shared() -> None:
    services = object()  # stands for the lifespan's state: shared by reference, never copied
    headers = [
        (b"host", b"gateway.example"),
        (b"x-forwarded-for", b"203.0.113.1, 198.51.100.7"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"evil.example"),
    ]
    scope: Scope = {
        "type": "http",
        "scheme": "http",
        "client": ("10.1.2.3", 41000),
        "headers": headers,
        "state": {"services": services},
    }
    inner = Recorder()
    await RouterHop(inner)(scope, nothing, discard)
    assert inner.scope is not None
    assert inner.scope["client"] == ("198.51.100.7", 0) and inner.scope["scheme"] == "https"
    assert (b"host", b"gateway.example") in inner.scope["headers"]  # the router's Host, not the client's claim
    assert all(name != b"x-forwarded-host" for name, _ in inner.scope["headers"])
    assert inner.scope["state"] is scope["state"] and inner.scope["state"]["services"] is services
    assert scope["client"] == ("10.1.2.3", 41000)  # the server's own scope is left as it was


async def test_lifespan_passes_through() -> None:
    inner = Recorder()
    scope: Scope = {"type": "lifespan", "state": {}}
    await RouterHop(inner)(scope, nothing, discard)
    assert inner.scope is scope


def test_only_a_deployed_app_trusts_a_router(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    settings = load_settings()
    app = Recorder()
    assert behind_router(app, dataclasses.replace(settings, deployed=False)) is app
    wrapped = behind_router(app, dataclasses.replace(settings, deployed=True))
    assert isinstance(wrapped, RouterHop) and wrapped.app is app


@pytest.mark.parametrize("how", ["python -m app", "Procfile web"])
def test_the_served_app_trusts_the_routers_hop_when_deployed(database_url: str, tmp_path: Path, how: str) -> None:
    command = [sys.executable, *procfile_command("web")[1:]] if how == "Procfile web" else None
    app = AppProcess(database_url, tmp_path / "app.log", env={"DYNO": "web.1"}, command=command).start()
    try:
        app.wait_healthy()
        router = {"X-Forwarded-For": "203.0.113.1, 198.51.100.7", "X-Forwarded-Proto": "https"}
        answer = httpx.post(f"{app.url}/login", data={"password": "wrong"}, headers=router, timeout=10)
        plain = httpx.get(f"{app.url}/healthz", timeout=10)
        assert app.terminate() == 0
    finally:
        app.ensure_stopped()
    assert answer.status_code == 401 and answer.headers["strict-transport-security"].startswith("max-age=")
    assert "strict-transport-security" not in plain.headers  # the router said nothing: plain http
    output = app.output()
    assert "POST /login 401" in output and " 198.51.100.7" in output  # the access log names the client
    assert "203.0.113.1" not in output and "Traceback" not in output
