"""A real webhook receiver for tests and benchmarks: an HTTP/1.1 server on 127.0.0.1 in a thread of its own.

It records every request (arrival time, headers, raw body) and answers as `respond` says: a status code and an
optional delay, decided per request, so a test can fail some events, slow one chat down, or answer 410. It can be
stopped (connections refused) and started again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 410: "Gone", 500: "Internal Server Error"}


@dataclasses.dataclass(frozen=True)
class Received:
    at: float  # time.time() on arrival
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(self.body)
        return payload

    @property
    def event_id(self) -> str:
        return str(self.json()["id"])

    @property
    def type(self) -> str:
        return str(self.json()["type"])

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.json()["data"]
        return data


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int = 200
    delay: float = 0.0  # seconds before answering (the request is recorded on arrival)


Respond = Callable[[Received], Reply]


def always_ok(_: Received) -> Reply:
    return Reply()


class Receiver:
    def __init__(self, respond: Respond = always_ok, port: int = 0, record: bool = True) -> None:
        self.respond = respond
        self.record = record  # benchmarks keep only a count and their own notes
        self.received: list[Received] = []
        self.count = 0
        self.on_request: Callable[[Received], None] | None = None
        self._changed = threading.Condition()
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self.port: int = self._socket.getsockname()[1]
        self._socket.close()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"receiver-{self.port}", daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        """Close the listening socket and every open connection: the receiver is down."""
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def wait(self, predicate: Callable[[list[Received]], bool], timeout: float = 30.0) -> list[Received]:
        """Block until `predicate(received)` holds (checked on every request); AssertionError after `timeout`."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.received), timeout):
                raise AssertionError(f"receiver: condition not met within {timeout} s; {len(self.received)} received")
            return list(self.received)

    async def until(self, predicate: Callable[[list[Received]], bool], timeout: float = 30.0) -> list[Received]:
        """`wait` for async tests (the event loop of the code under test keeps running)."""
        return await asyncio.to_thread(self.wait, predicate, timeout)

    def of_type(self, event_type: str) -> list[Received]:
        with self._changed:
            return [item for item in self.received if item.type == event_type]

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Received(time.time(), method, path, headers, body)
                self._note(request)
                reply = self.respond(request)
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                text = REASONS.get(reply.status, "Status").encode()
                writer.write(
                    b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                    % (reply.status, text, len(text), text)
                )
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    def _note(self, request: Received) -> None:
        with self._changed:
            self.count += 1
            if self.record:
                self.received.append(request)
            if self.on_request is not None:
                self.on_request(request)
            self._changed.notify_all()
