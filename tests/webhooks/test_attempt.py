"""A delivery attempt on the wire (app/webhooks/attempt.py over aiohttp) against small real servers: keep-alive
reuse, a dead connection tried again, timeouts, error texts, TLS, and a proxy named in the environment."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from app.webhooks.attempt import MAX_BODY, http_session, post
from app.webhooks.deliveries import Claimed

SECRET = "transport-secret"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class Server:
    """A loopback server whose answers a test writes byte by byte; counts connections and keeps each request.

    `drop`: numbers (from 1, over all connections) of requests whose connection is closed without an answer;
    `silent`: never answer."""

    def __init__(self, answer: bytes = OK, *, drop: frozenset[int] = frozenset(), silent: bool = False) -> None:
        self.answer = answer
        self.drop = drop
        self.silent = silent
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> int:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0, ssl=ssl_context)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                sizes = [int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length")]
                self.requests.append(head + await reader.readexactly(sizes[0] if sizes else 0))
                if self.silent:
                    await reader.read()  # until the client gives up
                    return
                if len(self.requests) in self.drop:
                    break
                writer.write(self.answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def stop(self) -> None:
        for writer in self.writers:
            writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    session = http_session()
    yield session
    await session.close()


def claimed(url: str, attempts: int = 0) -> Claimed:
    now = dt.datetime.now(dt.UTC)
    data = '{"chat": "x@s.whatsapp.net", "text": "halo"}'
    return Claimed(1, 1, url, "x@s.whatsapp.net", 1, attempts, now, uuid.uuid4(), "message.received", now, data)


async def test_the_connection_is_kept_alive_and_reused(session: aiohttp.ClientSession) -> None:
    server = Server(OK[:-2].replace(b"\r\n\r\n", b"\r\nSet-Cookie: sid=abc\r\n\r\n") + b"ok")
    port = await server.start()
    try:
        for _ in range(3):
            assert await post(session, SECRET, claimed(f"http://127.0.0.1:{port}/hook?token=x"), 5.0) == (200, None)
        assert server.connections == 1 and len(server.requests) == 3
        request = server.requests[-1]
        head, body = request.split(b"\r\n\r\n", 1)
        assert head.startswith(b"POST /hook?token=x HTTP/1.1\r\n")
        assert b"\r\nHost: 127.0.0.1:" in head and b"\r\nX-Webhook-Id: " in head
        assert f"\r\nContent-Length: {len(body)}".encode() in head and body.startswith(b'{"id":"')
        # No cookie jar: a receiver's cookie never follows later events; no Accept headers of aiohttp's own.
        assert b"cookie" not in head.lower() and b"accept" not in head.lower()
    finally:
        await server.stop()


async def test_a_connection_that_dies_before_answering_is_tried_once_more(session: aiohttp.ClientSession) -> None:
    server = Server(drop=frozenset({2}))  # the second request's connection closes without an answer
    port = await server.start()
    url = f"http://127.0.0.1:{port}/"
    try:
        assert await post(session, SECRET, claimed(url), 5.0) == (200, None)
        assert await post(session, SECRET, claimed(url), 5.0) == (200, None)
        assert server.connections == 2 and len(server.requests) == 3
        assert server.requests[1] == server.requests[2]  # the same bytes again: same id, same signature
    finally:
        await server.stop()


async def test_a_server_that_never_answers_times_out(session: aiohttp.ClientSession) -> None:
    server = Server(silent=True)
    port = await server.start()
    try:
        started = asyncio.get_running_loop().time()
        outcome = await post(session, SECRET, claimed(f"http://127.0.0.1:{port}/"), 0.3)
        assert outcome == (None, "no answer within 0.3 s")
        assert asyncio.get_running_loop().time() - started < 2.0
    finally:
        await server.stop()


@pytest.mark.parametrize(
    ("answer", "status", "error"),
    [
        (
            b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndatabase\n\r\n6\r\n  down\r\n0\r\n\r\n",
            500,
            "HTTP 500: database down",
        ),
        (b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n", 400, "HTTP 400"),
        (
            b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
            302,
            "HTTP 302 (redirects are not followed: set WEBHOOK_URL to the final address)",
        ),
        (
            b"HTTP/1.1 503 Busy\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 10) + b"x" * (MAX_BODY + 10),
            503,
            "HTTP 503: " + "x" * 200,
        ),
    ],
)
async def test_a_failed_answer_keeps_the_start_of_its_body(
    session: aiohttp.ClientSession, answer: bytes, status: int, error: str
) -> None:
    server = Server(answer)
    port = await server.start()
    try:
        assert await post(session, SECRET, claimed(f"http://127.0.0.1:{port}/"), 5.0) == (status, error)
    finally:
        await server.stop()


async def test_failures_without_an_answer_are_named(session: aiohttp.ClientSession) -> None:
    server = Server(b"SMTP ready\r\n\r\n")
    port = await server.start()
    try:
        code, error = await post(session, SECRET, claimed(f"http://127.0.0.1:{port}/"), 5.0)
        assert code is None and error is not None and error.startswith("ClientResponseError: ")
    finally:
        await server.stop()
    code, error = await post(session, SECRET, claimed(f"http://127.0.0.1:{port}/"), 5.0)
    assert code is None and error is not None and error.startswith("ClientConnectorError: Cannot connect to host")
    code, error = await post(session, SECRET, claimed("not a url"), 5.0)
    assert code is None and error is not None and error.startswith("InvalidUrlClientError: not")


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


async def test_https_with_a_verified_certificate(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    key, cert = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = Server()
    port = await server.start(server_context)
    trusting = http_session(ssl.create_default_context(cafile=str(cert)))
    url = f"https://localhost:{port}/hook"
    try:
        for _ in range(2):
            assert await post(trusting, SECRET, claimed(url), 5.0) == (200, None)
        assert server.connections == 1
        code, error = await post(session, SECRET, claimed(url), 5.0)  # the system's CAs do not know this one
        assert code is None and error is not None and "CERTIFICATE_VERIFY_FAILED" in error
    finally:
        await trusting.close()
        await server.stop()


async def test_a_proxy_in_the_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    proxy = Server()
    port = await proxy.start()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    session = http_session()
    try:
        # The receiver's name need not resolve here: the proxy is asked for it, in absolute form.
        assert await post(session, SECRET, claimed("http://receiver.invalid/hook"), 5.0) == (200, None)
        assert proxy.requests[0].startswith(b"POST http://receiver.invalid/hook HTTP/1.1\r\n")
    finally:
        await session.close()
        await proxy.stop()
