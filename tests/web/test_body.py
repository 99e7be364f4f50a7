"""Request bodies: bounded while they stream (413 and the connection closed), a client that leaves mid-body is not an
error, and a body the app never reads (refused, or a route that takes none) leaves the connection usable."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp, Message

from app.web import body, errors
from app.web.body import BODY_LIMIT, FORM_LIMIT, has_body
from tests.processes import TOKEN, AppProcess
from tests.web.conftest import state_of
from tests.web.test_api import AUTH


def test_unread_bodies_do_not_break_keep_alive_connections(database_url: str, tmp_path: Path) -> None:
    app = AppProcess(database_url, tmp_path / "app.log").start()
    try:
        app.wait_healthy()
        failures = []
        with httpx.Client(base_url=app.url, timeout=10) as client:  # one connection, reused
            for i in range(300):
                try:
                    if i % 3 == 0:
                        client.request("GET", "/api/status", headers={"Authorization": "Bearer no"}, content=b"x" * 64)
                    elif i % 3 == 1:
                        client.post("/api/session/pair-code", content=b'{"phone": "+6281234567890"}')
                    else:
                        assert client.get("/healthz").status_code == 200
                except httpx.TransportError as error:
                    failures.append(f"{i}: {error!r}")
        assert failures == []
    finally:
        app.terminate()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], False),
        ([(b"content-length", b"0")], False),
        ([(b"content-length", b"12")], True),
        ([(b"transfer-encoding", b"chunked")], True),
        ([(b"host", b"example.com")], False),
    ],
)
def test_only_requests_with_a_body_are_drained(headers: list[tuple[bytes, bytes]], expected: bool) -> None:
    assert has_body({"type": "http", "headers": headers}) is expected


# --- Bodies are bounded while they stream -----------------------------------------------------------------------


def form(size: int) -> bytes:
    return (b"password=" + b"a" * size)[:size]


async def chunks(sent: list[int], size: int, count: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        sent.append(size)
        yield b" " * size


async def test_a_declared_length_above_the_limit_is_refused_before_the_handler_runs(
    client: httpx.AsyncClient,
) -> None:
    throttle = state_of(client)["login_throttle"]
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    refused = await client.post("/login", content=form(FORM_LIMIT + 1), headers=headers)
    assert refused.status_code == 413 and refused.headers["connection"] == "close"
    assert refused.json() == {"error": "payload_too_large", "detail": f"the body is larger than {FORM_LIMIT} bytes"}
    assert refused.headers["x-frame-options"] == "DENY"  # answered inside the security headers like everything
    assert throttle.failures("127.0.0.1") == 0  # the login handler never ran
    at_limit = await client.post("/login", content=form(FORM_LIMIT), headers=headers)
    assert at_limit.status_code == 401  # read and checked: a wrong password
    api = await client.post("/api/messages", content=b" " * (BODY_LIMIT + 1), headers=AUTH)
    assert api.status_code == 413 and str(BODY_LIMIT) in api.json()["detail"]
    unauthenticated = await client.post("/api/messages", content=b" " * (BODY_LIMIT + 1))
    assert unauthenticated.status_code == 413  # refused before anything else, credentials or not


async def test_a_body_without_a_length_is_refused_as_soon_as_it_passes_the_limit(client: httpx.AsyncClient) -> None:
    sent: list[int] = []
    refused = await client.post("/login", content=chunks(sent, 1024, 1000))
    assert refused.status_code == 413 and refused.headers["connection"] == "close"
    assert sum(sent) == FORM_LIMIT + 1024  # the chunk that passed the limit was the last one read
    sent.clear()
    api = await client.post("/api/messages", content=chunks(sent, 64 * 1024, 1000), headers=AUTH)
    assert api.status_code == 413 and api.json()["error"] == "payload_too_large"
    assert sum(sent) == BODY_LIMIT + 64 * 1024


async def test_a_body_up_to_the_limit_is_taken(client: httpx.AsyncClient) -> None:
    message = json.dumps({"to": "+6281234567890", "text": "hello"}).encode()
    padded = message + b" " * (BODY_LIMIT - len(message))  # JSON allows trailing whitespace
    queued = await client.post("/api/messages", content=padded, headers={**AUTH, "Content-Type": "application/json"})
    assert queued.status_code == 202, queued.text
    sent: list[int] = []
    streamed = await client.post("/api/messages", content=chunks(sent, 1024, 4), headers=AUTH)
    assert streamed.status_code == 422  # all 4 KB read: an empty object, so 'to' is missing
    assert sum(sent) == 4096


async def abandon_mid_body(client: httpx.AsyncClient, path: str, headers: list[tuple[bytes, bytes]]) -> list[Message]:
    """Call the app as hypercorn does when the client sends 12 of its announced 1000 bytes and then goes away."""
    incoming: list[Message] = [
        {"type": "http.request", "body": b"password=abc", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-length", b"1000"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
        "state": dict(state_of(client)),
    }
    app: ASGIApp = client.app  # type: ignore[attr-defined]
    await app(scope, receive, send)
    return sent


async def test_a_client_that_disconnects_mid_body_is_not_an_error(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    reported: list[BaseException] = []
    monkeypatch.setattr(errors, "report", reported.append)
    for path, headers in [
        ("/login", [(b"content-type", b"application/x-www-form-urlencoded")]),
        ("/api/messages", [(b"authorization", AUTH["Authorization"].encode())]),
    ]:
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            sent = await abandon_mid_body(client, path, headers)
        assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 499, path
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [], path
        assert any("disconnected before sending the whole body" in r.getMessage() for r in caplog.records)
    assert reported == []


def raw_exchange(port: int, request: bytes, *, timeout: float = 10.0) -> bytes:
    """Send `request`, then read until the server closes the connection (fails if it stays open `timeout` s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):  # socket.timeout (an OSError) fails the test if the server never closes
            answer += chunk
        return answer


def chunked(total: int, size: int = 1024) -> bytes:
    piece = f"{size:x}\r\n".encode() + b"a" * size + b"\r\n"
    return piece * (total // size)


def test_hostile_bodies_over_real_connections(database_url: str, tmp_path: Path) -> None:
    app = AppProcess(database_url, tmp_path / "app.log").start()
    try:
        app.wait_healthy()
        port = app.port
        token = f"Authorization: Bearer {TOKEN}\r\n"
        # A declared 60 MB: answered at once, nothing of the body sent, and the connection closed by the server.
        for path, auth in (("/login", ""), ("/api/messages", token)):
            head = f"POST {path} HTTP/1.1\r\nHost: t\r\n{auth}Content-Length: {60 * 2**20}\r\n\r\n".encode()
            answer = raw_exchange(port, head)
            assert answer.startswith(b"HTTP/1.1 413 ") and b"connection: close" in answer.lower(), answer
            assert b'"payload_too_large"' in answer
        # Chunked, past the limit, and then the client waits: the 413 comes and the server closes the connection.
        for path, auth, limit in (("/login", "", FORM_LIMIT), ("/api/messages", token, BODY_LIMIT)):
            head = f"POST {path} HTTP/1.1\r\nHost: t\r\n{auth}Transfer-Encoding: chunked\r\n\r\n".encode()
            answer = raw_exchange(port, head + chunked(limit + 2048))
            assert answer.startswith(b"HTTP/1.1 413 "), answer
        # Disconnects mid-body, on the public form and on the API.
        for path, auth in (("/login", ""), ("/api/messages", token)):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                head = f"POST {path} HTTP/1.1\r\nHost: t\r\n{auth}Content-Length: 1000\r\n\r\n".encode()
                sock.sendall(head + b"password=" + b"a" * 100)
        wait_for_lines(app, "POST /login 499", "POST /api/messages 499")
        assert httpx.get(f"{app.url}/healthz").status_code == 200
    finally:
        app.terminate()
    output = app.output()
    assert " ERROR " not in output and "Traceback" not in output and " 500 " not in output, output


def wait_for_lines(app: AppProcess, *needles: str, timeout: float = 10.0) -> None:
    """The app's access log is the only sign, from outside, that it has handled a request the client abandoned."""
    deadline = time.monotonic() + timeout
    while not all(needle in app.output() for needle in needles):
        assert time.monotonic() < deadline, f"{needles} not logged within {timeout} s:\n{app.output()}"
        time.sleep(0.05)


async def test_a_body_that_trickles_is_answered_408(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(body, "BODY_SECONDS", 0.5)
    sent: list[int] = []

    async def trickle() -> AsyncIterator[bytes]:
        for _ in range(100):
            sent.append(1)
            yield b" "
            await asyncio.sleep(0.05)  # the slow client itself: nothing to await but the passing of time

    response = await client.post("/api/messages", content=trickle(), headers=AUTH)
    assert response.status_code == 408 and response.headers["connection"] == "close"
    assert response.json() == {"error": "request_timeout", "detail": "the body did not arrive within 0.5 s"}
    assert 5 <= len(sent) <= 20  # stopped at the deadline, not at the end of the body
