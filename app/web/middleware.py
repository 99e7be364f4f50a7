"""One log line per request: method, path (never the query string, which may carry tokens), status, duration; and
the same request counted in the app's metrics."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from app.web.metrics import Metrics

log = logging.getLogger("app.access")


class HTTPMiddleware:
    """Base of the app's pure-ASGI middlewares: `handle` sees HTTP requests; other scopes pass straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RequestLogMiddleware(HTTPMiddleware):
    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            seconds = time.perf_counter() - started
            if self.metrics is not None:
                self.metrics.observe(scope, status, seconds)
            elapsed = seconds * 1000
            client = scope.get("client")
            log.info(
                "%s %s %d %.1fms %s",
                scope["method"],
                scope["path"],
                status,
                elapsed,
                client[0] if client else "-",
            )
