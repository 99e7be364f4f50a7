"""Request bodies, for every route in one place: bounded while they stream, and read to the end before a response ends.

**Bounded.** The login and logout forms take at most FORM_LIMIT bytes, an upload (`POST /api/media`) MEDIA_MAX_BYTES
and the multipart framing around it, everything else (the JSON API) BODY_LIMIT. Handlers read bodies whole
(`request.body()`; an upload's file is spooled to a temporary file), so without a bound on the stream an
unauthenticated client could make the process hold any amount of memory or disk before a handler got to compare the
size. Here:

- a Content-Length above the limit is answered 413 before anything of the body is read;
- a body without one (chunked) is counted as it arrives, and the chunk that passes the limit makes `receive` raise
  BodyTooLarge (an HTTPException), which the app's error handler answers with the same JSON 413.

A body that has not arrived whole within BODY_SECONDS of the request (an upload: more, by its size) is answered 408
the same way (a client trickling its body would otherwise hold the connection as long as it liked). Either way the
answer says `Connection: close` and the rest of the body is never read: hypercorn closes a connection whose request
was not read to its end, which is the point (reading 60 MB only to discard it is the attack).

**Read to the end.** hypercorn (0.18) reuses a keep-alive connection only if it has parsed the whole request by the
time the response ends; otherwise it closes the connection without saying so (no `Connection: close`), and the
client's next request on it fails with "server disconnected". That happens whenever a handler answers without
reading the body (a 401, a 404, a route that takes none) and the body was not parsed yet. So before the last piece of
a response goes out, what is left of the body is read and dropped: at most the limit, for at most DRAIN_SECONDS.

A client that disconnects before its body is whole makes Starlette raise ClientDisconnect from `request.body()`;
app/web/errors.py answers that as the client's doing (499, logged at INFO), not as an error of ours.
"""

from __future__ import annotations

import asyncio
import dataclasses

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.errors import error_response
from app.web.middleware import HTTPMiddleware

FORM_LIMIT = 4 * 1024  # the login form is a password and a user name; the logout form a CSRF token
BODY_LIMIT = 256 * 1024  # the largest API body: a 65,536-character text, JSON-escaped, fits
FORM_PATHS = frozenset({"/login", "/logout"})
DRAIN_SECONDS = 2.0
# The whole body must arrive within this many seconds of the request's head: 256 KB at 10 KB/s. A client that trickles
# its body would otherwise hold the connection (and the handler waiting on it) for as long as it likes.
BODY_SECONDS = 30.0


UPLOAD_PATH = "/api/media"  # POST: a multipart upload of one file (app/web/media_api.py)
# Room for the multipart framing around the file: the boundaries and the part's headers (its file name among them).
MULTIPART_FRAMING = 16 * 1024
# The slowest upload waited for, in bytes per second (a phone on a poor mobile link): 16 MB takes at most ~3 minutes.
UPLOAD_RATE = 100 * 1024


def upload_too_large(upload_bytes: int) -> str:
    """The 413's detail for an upload over MEDIA_MAX_BYTES: from this bound, or from the handler, which counts the file
    itself (the bound leaves room for the multipart framing)."""
    return f"the upload is larger than MEDIA_MAX_BYTES ({upload_bytes} bytes)"


@dataclasses.dataclass(frozen=True)
class Limit:
    bytes: int
    seconds: float
    too_large: str  # the 413's detail


def body_limit(path: str, upload_bytes: int | None = None) -> Limit:
    """The bound of a request body to `path`; `upload_bytes` is MEDIA_MAX_BYTES, the largest file an upload takes."""
    if path == UPLOAD_PATH and upload_bytes is not None:
        seconds = BODY_SECONDS + upload_bytes / UPLOAD_RATE
        return Limit(upload_bytes + MULTIPART_FRAMING, seconds, upload_too_large(upload_bytes))
    limit = FORM_LIMIT if path in FORM_PATHS else BODY_LIMIT
    return Limit(limit, BODY_SECONDS, too_large(limit))


CLOSE = {"Connection": "close"}


def too_large(limit: int) -> str:
    return f"the body is larger than {limit} bytes"


class BodyTooLarge(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(413, detail, headers=CLOSE)


class BodyTooSlow(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the body did not arrive within {seconds:g} s", headers=CLOSE)


def declared_length(scope: Scope) -> int | None:
    """The Content-Length header's value (hypercorn's h11 has refused a malformed one before the app sees it)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


class RequestBodyMiddleware(HTTPMiddleware):
    def __init__(self, app: ASGIApp, upload_bytes: int | None = None) -> None:
        super().__init__(app)
        self.upload_bytes = upload_bytes  # MEDIA_MAX_BYTES: the largest file POST /api/media takes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        bound = body_limit(scope["path"], self.upload_bytes)
        limit = bound.bytes
        length = declared_length(scope)
        if length is not None and length > limit:
            await error_response(413, bound.too_large, CLOSE)(scope, receive, send)
            return
        if not has_body(scope):
            await self.app(scope, receive, send)  # nothing to bound or drain (a GET, a POST with Content-Length: 0)
            return
        received = 0
        finished = False  # the whole body (or the client's disconnect) has been received
        refusal: HTTPException | None = None  # the body passed its limit or its time: the rest is never read
        deadline = asyncio.get_running_loop().time() + bound.seconds

        async def bounded_receive() -> Message:
            nonlocal received, finished, refusal
            if finished:
                return await receive()  # after the body: only the client's disconnect can come, whenever it does
            if refusal is not None:
                raise refusal
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                refusal = BodyTooSlow(bound.seconds)
                raise refusal from None
            if message["type"] == "http.disconnect":
                finished = True
            elif message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refusal = BodyTooLarge(bound.too_large)
                    raise refusal
                finished = not message.get("more_body", False)
            return message

        async def drain() -> None:
            try:
                async with asyncio.timeout(DRAIN_SECONDS):
                    while not finished:
                        await bounded_receive()
            except (TimeoutError, HTTPException):
                pass  # the connection is closed after this response instead of reused: the client's loss only

        async def send_after_draining(message: Message) -> None:
            last = message["type"] == "http.response.body" and not message.get("more_body", False)
            if last and not finished and refusal is None:
                await drain()
            await send(message)

        await self.app(scope, bounded_receive, send_after_draining)
