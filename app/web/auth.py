"""Authentication for /api/*: `Authorization: Bearer <API_TOKEN>`, compared in constant time."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from app.web.errors import error_response

Endpoint = Callable[[Request], Awaitable[Response]]


def bearer_token_valid(request: Request) -> bool:
    expected: str | None = request.app.state.settings.api_token
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not token:
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def requires_auth(endpoint: Endpoint) -> Endpoint:
    """Refuse the request with 401 unless it carries valid credentials."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        if not bearer_token_valid(request):
            return error_response(
                401, "authentication required: send Authorization: Bearer <API_TOKEN>", {"WWW-Authenticate": "Bearer"}
            )
        return await endpoint(request)

    return guarded
