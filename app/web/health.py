"""GET /healthz: public, answers whenever HTTP is up (also in standby), never touches the database."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from app.web.state import state


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "state": state(request)["services"].session_state()})
