"""A stand-in for WhatsApp's address, so that no test ever dials WhatsApp, with or without internet.

whatsmeow dials the constant `socket.URL` (wss://web.whatsapp.com/ws/chat); nothing in neonize 0.5.2 changes it. But
its websocket goes through an http.Client whose transport is a clone of Go's DefaultTransport, whose Proxy is
http.ProxyFromEnvironment (whatsmeow `NewClient`), and neonize leaves it alone when connect() gets no ProxySettings
(goneonize `applyProxySettings`: nil settings, no SetProxyAddress). So HTTPS_PROXY in the worker's environment sends
the dial to a local HTTP proxy as `CONNECT web.whatsapp.com:443`: this one records the request and refuses it, and
the dial fails (whatsmeow: "failed to dial whatsapp web websocket: ... Refused by the test stand-in").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

REFUSAL = b"HTTP/1.1 403 Refused by the test stand-in\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
WHATSAPP_CONNECT = "CONNECT web.whatsapp.com:443 HTTP/1.1"
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY",
                   "all_proxy")  # fmt: skip


class RefusingProxy:
    """An HTTP proxy on 127.0.0.1 that answers every request with 403 and records its request line."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.arrived = asyncio.Condition()
        self.answering = asyncio.Event()  # clear it to hold the refusals back (the dialling client waits meanwhile)
        self.answering.set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What a process needs in its environment to dial through this proxy, whatever the caller's has: Go takes
        the first non-empty of HTTPS_PROXY/https_proxy and NO_PROXY/no_proxy, so every spelling is set."""
        values = dict.fromkeys(PROXY_VARIABLES, "")
        values.update(HTTPS_PROXY=self.url, https_proxy=self.url, HTTP_PROXY=self.url, http_proxy=self.url)
        return values

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.answering.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[str]:
        """The request lines once at least `count` have arrived."""
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.requests) >= count), timeout)
        return list(self.requests)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            async with self.arrived:
                self.requests.append(line)
                self.arrived.notify_all()
            await asyncio.wait_for(self.answering.wait(), 60)
            writer.write(REFUSAL)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def refusing_proxy() -> AsyncIterator[RefusingProxy]:
    proxy = RefusingProxy()
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
