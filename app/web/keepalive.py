"""Reads the rest of a request's body before its response ends, so that the client's connection stays usable.

hypercorn (0.18) reuses a keep-alive connection only if it has parsed the whole request by the time the response
ends; otherwise it closes the connection without saying so (no `Connection: close`), and the client's next request
on it fails with "server disconnected". That happens whenever a handler answers without reading the body (a 401, a
404, a route that takes none) and the body was not parsed yet. The property-based fuzz found it.
"""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope, Send

from app.web.middleware import HTTPMiddleware

DRAIN_LIMIT = 1024 * 1024  # bytes; past this, closing the connection is the right answer anyway
DRAIN_SECONDS = 2.0


def has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


class DrainRequestBodyMiddleware(HTTPMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not has_body(scope):
            await self.app(scope, receive, send)  # nothing to drain (a GET, a POST with Content-Length: 0)
            return
        finished = False  # the whole body (or the client's disconnect) has been received

        async def tracked_receive() -> Message:
            nonlocal finished
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                finished = True
            return message

        async def drain() -> None:
            read = 0
            try:
                async with asyncio.timeout(DRAIN_SECONDS):
                    while not finished and read <= DRAIN_LIMIT:
                        read += len((await tracked_receive()).get("body", b""))
            except TimeoutError:
                pass

        async def send_after_draining(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False) and not finished:
                await drain()
            await send(message)

        await self.app(scope, tracked_receive, send_after_draining)
