"""The JSON API under /api: thin handlers over the services of the web process."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.web.auth import requires_auth


@requires_auth
async def status(request: Request) -> JSONResponse:
    return JSONResponse(await request.app.state.services.status())


ROUTES = [Route("/api/status", status)]
