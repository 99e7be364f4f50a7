"""The session's JSON API under /api: status, QR, pairing, reconnect, logout. Thin handlers over the supervisor; each
route's body and answers are declared once, in ROUTES (app/web/endpoint.py)."""

from __future__ import annotations

import segno
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.web.endpoint import Operation, Reply, api, reply
from app.web.models import QR, PairCode, PairCodeBody, StateAnswer, Status
from app.web.state import state

NO_STORE = {"Cache-Control": "no-store: the code links a phone to the account"}
CONFLICT = "the session cannot do that now; the detail says why (standby, or the state it is in)"


async def status(request: Request) -> Response:
    return reply(Status(await state(request)["services"].status()))


async def session_qr(request: Request) -> Response:
    snapshot = state(request)["supervisor"].snapshot()
    if snapshot.qr is None:
        raise HTTPException(409, f"no QR code on offer: the session is {snapshot.state.value}")
    svg = segno.make(snapshot.qr["payload"], error="l").svg_inline(scale=5, border=2)
    return reply(QR.model_validate({**snapshot.qr, "svg": svg}), headers={"Cache-Control": "no-store"})


async def session_pair_code(request: Request, body: PairCodeBody) -> Response:
    code = await state(request)["supervisor"].pair_code(body.phone.removeprefix("+"))
    return reply(PairCode(code=code), headers={"Cache-Control": "no-store"})


async def session_reconnect(request: Request) -> Response:
    return reply(StateAnswer.model_validate(await state(request)["supervisor"].reconnect()), 202)


async def session_logout(request: Request) -> Response:
    return reply(StateAnswer.model_validate(await state(request)["supervisor"].logout()), 202)


async def session_pair(request: Request) -> Response:
    return reply(StateAnswer.model_validate(await state(request)["supervisor"].pair()), 202)


ROUTES = [
    api(
        "/api/status",
        "GET",
        Operation(
            "The session's state, account, heartbeat, 24 h figures, auth store, outbox, send queue, version",
            {200: Reply("the status", Status)},
        ),
        status,
    ),
    api(
        "/api/session/qr",
        "GET",
        Operation(
            "The current QR code (payload and SVG) while pairing",
            {200: Reply("the QR code", QR, NO_STORE), 409: Reply("not pairing: no QR code on offer")},
        ),
        session_qr,
    ),
    api(
        "/api/session/pair-code",
        "POST",
        Operation(
            "An 8-character code to link by phone number instead of scanning",
            {
                200: Reply("the code", PairCode, NO_STORE),
                409: Reply("no pairing round is open"),
                502: Reply("WhatsApp did not give a code"),
            },
            body=PairCodeBody,
        ),
        session_pair_code,
    ),
    api(
        "/api/session/reconnect",
        "POST",
        Operation(
            "Drop the connection and connect again with a fresh worker",
            {202: Reply("reconnecting", StateAnswer), 409: Reply(CONFLICT)},
        ),
        session_reconnect,
    ),
    api(
        "/api/session/logout",
        "POST",
        Operation(
            "Unlink the account from WhatsApp (pairing is needed afterwards)",
            {202: Reply("logged out", StateAnswer), 409: Reply(CONFLICT), 502: Reply("logout failed")},
        ),
        session_logout,
    ),
    api(
        "/api/session/pair",
        "POST",
        Operation(
            "Start a new QR pairing round (at most 3 per 2 minutes)",
            {
                202: Reply("the round is starting", StateAnswer),
                409: Reply("the session is linked, pairing or connecting already"),
                429: Reply("3 rounds in the last 2 minutes"),
            },
        ),
        session_pair,
    ),
]
