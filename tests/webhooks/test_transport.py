"""The dispatcher's HTTP/1.1 transport against small real servers: reuse, answers of every framing, TLS, failures."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.webhooks.attempt import http_transport
from app.webhooks.transport import KeepAliveTransport


class Server:
    """A loopback server whose answers a test writes byte by byte; counts connections and requests."""

    def __init__(self, answer: bytes, *, close_after: bool = False) -> None:
        self.answer = answer
        self.close_after = close_after
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
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                self.requests.append(head + await reader.readexactly(length))
                writer.write(self.answer)
                await writer.drain()
                if self.close_after:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def drop_connections(self) -> None:
        for writer in self.writers:
            writer.close()

    async def stop(self) -> None:
        self.drop_connections()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def transport() -> AsyncIterator[KeepAliveTransport]:
    transport = KeepAliveTransport()
    yield transport
    await transport.aclose()


async def post(transport: KeepAliveTransport, url: str, body: bytes = b'{"ok":true}') -> httpx.Response:
    request = httpx.Request("POST", url, content=body, headers={"X-Webhook-Id": "abc"})
    response = await transport.handle_async_request(request)
    await response.aread()
    return response


async def test_one_write_per_request_and_the_connection_is_reused(transport: KeepAliveTransport) -> None:
    server = Server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    port = await server.start()
    try:
        for _ in range(3):
            response = await post(transport, f"http://127.0.0.1:{port}/hook?token=x")
            assert response.status_code == 200 and response.content == b"ok"
        assert server.connections == 1 and len(server.requests) == 3
        request = server.requests[0]
        assert request.startswith(b"POST /hook?token=x HTTP/1.1\r\n")
        assert b"Host: 127.0.0.1:" in request and b"X-Webhook-Id: abc" in request
        assert request.endswith(b'\r\nContent-Length: 11\r\n\r\n{"ok":true}')
    finally:
        await server.stop()


@pytest.mark.parametrize(
    ("answer", "status", "content", "reused"),
    [
        (
            b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nfail\r\n3\r\ned!\r\n0\r\n\r\n",
            500,
            b"failed!",
            True,
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204, b"", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 200, b"ok", False),
        (b"HTTP/1.0 410 Gone\r\nContent-Type: text/plain\r\n\r\nbye", 410, b"bye", False),
    ],
)
async def test_answers_of_every_framing(
    transport: KeepAliveTransport, answer: bytes, status: int, content: bytes, reused: bool
) -> None:
    server = Server(answer, close_after=not reused)
    port = await server.start()
    try:
        for _ in range(2):
            response = await post(transport, f"http://127.0.0.1:{port}/")
            assert (response.status_code, response.content) == (status, content)
        assert server.connections == (1 if reused else 2)
    finally:
        await server.stop()


async def test_an_idle_connection_closed_by_the_server_is_replaced(transport: KeepAliveTransport) -> None:
    server = Server(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    port = await server.start()
    try:
        assert (await post(transport, f"http://127.0.0.1:{port}/")).status_code == 200
        server.drop_connections()
        await asyncio.sleep(0.05)  # let the close reach us (as an idle timeout on the server side would)
        assert (await post(transport, f"http://127.0.0.1:{port}/")).status_code == 200
        assert server.connections == 2
    finally:
        await server.stop()


async def test_failures_are_httpx_errors(transport: KeepAliveTransport) -> None:
    server = Server(b"SMTP ready\r\n\r\n")
    port = await server.start()
    try:
        with pytest.raises(httpx.RemoteProtocolError, match=r"not an HTTP/1\.x answer"):
            await post(transport, f"http://127.0.0.1:{port}/")
    finally:
        await server.stop()
    with pytest.raises(httpx.ConnectError):
        await post(transport, f"http://127.0.0.1:{port}/")


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


async def test_https_with_a_verified_certificate(tmp_path: Path) -> None:
    key, cert = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = Server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    port = await server.start(server_context)
    trusting = KeepAliveTransport(ssl.create_default_context(cafile=str(cert)))
    strict = KeepAliveTransport()
    try:
        for _ in range(2):
            assert (await post(trusting, f"https://localhost:{port}/hook")).content == b"ok"
        assert server.connections == 1
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await post(strict, f"https://localhost:{port}/hook")
    finally:
        await trusting.aclose()
        await strict.aclose()
        await server.stop()


def test_a_proxy_in_the_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(http_transport(), KeepAliveTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert isinstance(http_transport(), httpx.AsyncHTTPTransport)
