"""Every error answer is JSON: {"error": "<short code>", "detail": "<what is wrong>"}."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ExceptionHandler, Message, Receive, Scope, Send

from app.errors import DatabaseUnavailable, MediaStoreUnavailable, WhatsAppError
from app.media.intake import MediaRefused
from app.observability import report
from app.session.supervisor import SessionError
from app.web.middleware import HTTPMiddleware

log = logging.getLogger(__name__)

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    502: "bad_gateway",
    422: "invalid_request",
    429: "too_many_requests",
    499: "client_closed_request",
    500: "internal_error",
    503: "unavailable",
    504: "gateway_timeout",
}


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    code = ERROR_CODES.get(status, "error")
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), dict(exc.headers) if exc.headers else None)


async def database_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    return error_response(503, "the database is unavailable; try again shortly", {"Retry-After": "5"})


async def media_store_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    return error_response(503, f"{exc}; try again shortly", {"Retry-After": "5"})


async def session_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SessionError)
    return error_response(exc.status, str(exc))


async def media_refused(request: Request, exc: Exception) -> Response:
    """A file that cannot be taken or sent (app/media): 422, or 502/504 for the server a `url` named."""
    assert isinstance(exc, MediaRefused)
    return error_response(exc.status, str(exc))


async def worker_error(request: Request, exc: Exception) -> Response:
    return error_response(503, f"WhatsApp is not available right now: {exc}", {"Retry-After": "5"})


async def client_disconnected(request: Request, exc: Exception) -> Response:
    """The client went away before its body was whole: its doing, not an error of ours (no 5xx, no report). The
    answer reaches nobody; its status, nginx's 499 "client closed request", is for the access log."""
    log.info("%s %s: the client disconnected before sending the whole body", request.method, request.url.path)
    return error_response(499, "the client disconnected before sending the whole body")


async def internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    report(exc)
    return error_response(500, "internal error; it has been logged")


class InternalErrorMiddleware(HTTPMiddleware):
    """Answers an unhandled error with the JSON 500 inside the app's other middlewares, so that the answer carries the
    security headers like every other. Starlette's own catch-all (the `Exception` handler below) sits outside every
    middleware; it still sees an error raised after the response has started, when no other answer can be sent."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_tracking_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracking_start)
        except Exception as error:
            if started:
                raise
            response = await internal_error(Request(scope), error)
            await response(scope, receive, send)


EXCEPTION_HANDLERS: dict[type[Exception] | int, ExceptionHandler] = {
    HTTPException: http_exception,
    ClientDisconnect: client_disconnected,
    DatabaseUnavailable: database_unavailable,
    MediaStoreUnavailable: media_store_unavailable,
    SessionError: session_error,
    MediaRefused: media_refused,
    WhatsAppError: worker_error,
    Exception: internal_error,
}
