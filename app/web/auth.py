"""Authentication for /api/* and the page: `Authorization: Bearer <API_TOKEN>` (compared in constant time), or the
page's login cookie. A state-changing request that relies on the cookie must also pass the CSRF check."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from app.web.cookie import Session, csrf_problem
from app.web.errors import error_response
from app.web.state import state

Endpoint = Callable[[Request], Awaitable[Response]]


def bearer_token_valid(request: Request, expected: str | None = None) -> bool:
    """`Bearer <API_TOKEN>` (or `expected`, another token): the scheme in any case (RFC 9110), then one space, then
    exactly the token. Nothing is stripped from what follows the space: a token with anything around it (a no-break
    space, a second space, a trailing character) is another token. The header arrives decoded as Latin-1, so compare
    its bytes as sent."""
    expected = expected if expected is not None else state(request)["settings"].api_token
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not token:
        return False
    return hmac.compare_digest(token.encode("latin-1"), expected.encode())


def cookie_session(request: Request) -> Session | None:
    return state(request)["cookie_sessions"].load(request)


def requires_auth(endpoint: Endpoint) -> Endpoint:
    """Refuse the request with 401 unless it carries valid credentials, and with 403 if it is a cookie-authenticated
    POST without the session's CSRF token (or from another site)."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        if bearer_token_valid(request):
            return await endpoint(request)
        session = cookie_session(request)
        if session is None:
            return error_response(
                401,
                "authentication required: send Authorization: Bearer <API_TOKEN>, or sign in on the page",
                {"WWW-Authenticate": "Bearer"},
            )
        problem = csrf_problem(request, session)
        if problem:
            return error_response(403, f"CSRF check failed: {problem}")
        return await endpoint(request)

    return guarded
