"""A lean HTTP/1.1 transport under the dispatcher's httpx client: keep-alive connections over asyncio streams.

Why not httpx's default (httpcore over anyio): a webhook POST is one small request whose answer is mostly ignored,
and httpcore spends about 1.5 ms of CPU on each one on a small dyno (2 vCPUs), three times what the rest of the
delivery costs; this transport sends the request in one write and costs a third of that. It does not do HTTP/2 or
1xx interim answers (the dispatcher never sends Expect); with HTTP(S)_PROXY set, httpx routes through its own proxy
transport instead of this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time

import httpx

IDLE_EXPIRY = 4.0  # reuse an idle connection only this long: many servers drop idle ones after 5 s (Node's default)
MAX_IDLE_PER_ORIGIN = 16
MAX_HEAD = 64 * 1024  # status line and headers
MAX_BODY = 1024 * 1024  # a longer answer is cut off and its connection closed (the dispatcher keeps 200 characters)
NO_BODY = frozenset({204, 304})

Origin = tuple[str, str, int]


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()

    def usable(self) -> bool:
        fresh = time.monotonic() - self.idle_since < IDLE_EXPIRY
        return fresh and not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """One request at a time per connection; idle connections are kept per origin and reused."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context or httpx.create_ssl_context()
        self._idle: dict[Origin, list[Connection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = (request.url.scheme, request.url.host, request.url.port or _default_port(request.url.scheme))
        payload = _serialise(request, await request.aread())
        connection = self._take_idle(origin)
        if connection is not None:
            try:
                return await self._exchange(origin, connection, request, payload)
            except _Stale:
                pass  # the server closed the idle connection before reading anything: once more, on a new one
        connection = await self._connect(origin)
        try:
            return await self._exchange(origin, connection, request, payload)
        except _Stale as stale:
            raise httpx.RemoteProtocolError("the server closed the connection without answering") from stale

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def _take_idle(self, origin: Origin) -> Connection | None:
        connections = self._idle.get(origin, [])
        while connections:
            connection = connections.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    async def _connect(self, origin: Origin) -> Connection:
        scheme, host, port = origin
        try:
            reader, writer = await asyncio.open_connection(
                host, port, ssl=self.ssl_context if scheme == "https" else None, limit=MAX_HEAD
            )
        except (OSError, ssl.SSLError) as error:
            raise httpx.ConnectError(f"{type(error).__name__}: {error}") from error
        return Connection(reader, writer)

    async def _exchange(
        self, origin: Origin, connection: Connection, request: httpx.Request, payload: bytes
    ) -> httpx.Response:
        """Send, read the whole answer, and put the connection back if it can be reused; close it otherwise."""
        reusable = False
        try:
            try:
                connection.writer.write(payload)
                await connection.writer.drain()
                head = await connection.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as error:
                if not error.partial:
                    raise _Stale from error
                raise httpx.RemoteProtocolError("the server closed the connection mid-answer") from error
            except asyncio.LimitOverrunError as error:
                raise httpx.RemoteProtocolError("the answer's headers are too long") from error
            except (OSError, ssl.SSLError) as error:
                raise httpx.ReadError(f"{type(error).__name__}: {error}") from error
            status, headers = _parse_head(head)
            content, reusable = await _read_body(connection.reader, status, headers)
            return httpx.Response(status, headers=headers, content=content, request=request)
        finally:
            if reusable:
                connection.idle_since = time.monotonic()
                idle = self._idle.setdefault(origin, [])
                idle.append(connection)
                if len(idle) > MAX_IDLE_PER_ORIGIN:
                    idle.pop(0).close()
            else:
                connection.close()


class _Stale(Exception):
    """A reused connection turned out to be closed before any answer began."""


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _serialise(request: httpx.Request, body: bytes) -> bytes:
    target = request.url.raw_path.decode("ascii")
    lines = [f"{request.method} {target} HTTP/1.1\r\n".encode("ascii")]
    sized = False
    for name, value in request.headers.raw:
        lines.append(name + b": " + value + b"\r\n")
        sized = sized or name.lower() == b"content-length"
    if not sized:
        lines.append(b"Content-Length: %d\r\n" % len(body))
    lines.append(b"\r\n")
    return b"".join(lines) + body


def _parse_head(head: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise httpx.RemoteProtocolError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            raise httpx.RemoteProtocolError(f"malformed header line {line[:80]!r}")
        headers.append((name.strip(), value.strip()))
    return int(parts[1]), headers


async def _read_body(
    reader: asyncio.StreamReader, status: int, headers: list[tuple[bytes, bytes]]
) -> tuple[bytes, bool]:
    """The answer's body and whether the connection may carry another request."""
    fields = {name.lower(): value for name, value in headers}
    keep_alive = fields.get(b"connection", b"").lower() != b"close"
    try:
        if status in NO_BODY or 100 <= status < 200:
            return b"", keep_alive
        if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
            content, complete = await _read_chunked(reader)
            return content, keep_alive and complete
        if b"content-length" in fields:
            length = int(fields[b"content-length"])
            if length > MAX_BODY:
                return await reader.readexactly(MAX_BODY), False
            return await reader.readexactly(length), keep_alive
        return await reader.read(MAX_BODY), False  # delimited by the end of the connection
    except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
        raise httpx.RemoteProtocolError(f"malformed answer body: {type(error).__name__}") from error
    except (OSError, ssl.SSLError) as error:
        raise httpx.ReadError(f"{type(error).__name__}: {error}") from error


async def _read_chunked(reader: asyncio.StreamReader) -> tuple[bytes, bool]:
    """The body and whether it was read to its end (a body beyond MAX_BODY is cut off)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        length = int(line.split(b";", 1)[0].strip(), 16)
        if length == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(chunks), True
        if size + length > MAX_BODY:
            return b"".join(chunks), False
        size += length
        chunks.append(await reader.readexactly(length))
        await reader.readexactly(2)
