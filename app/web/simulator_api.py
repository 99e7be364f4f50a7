"""POST /api/simulator/<action>: drive the simulated WhatsApp (app/whatsapp/simulator.py), one route per action so
each has its body and answer typed and documented. 404 unless WHATSAPP_BACKEND=simulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.web.auth import requires_auth
from app.web.endpoint import Handler, Operation, Reply, api, reply
from app.web.models import Answer
from app.web.simulator_models import (
    Disconnected,
    FailingActions,
    FailingSends,
    GroupList,
    Grown,
    Incoming,
    Numbers,
    Paired,
    Receipt,
    ServerActions,
    SimulatorActionFailures,
    SimulatorDisconnect,
    SimulatorGroups,
    SimulatorGrow,
    SimulatorIncoming,
    SimulatorNumbers,
    SimulatorPair,
    SimulatorReceipt,
    SimulatorSendFailures,
    WorkerAction,
)
from app.web.state import state

NOTE = "Simulator backend only (WHATSAPP_BACKEND=simulator): with another backend these routes are 404s."
REPLIES = {
    409: Reply("the simulated session cannot do that now (not linked, not pairing, no worker)"),
}


async def simulate(request: Request, action: str, args: dict[str, Any], answer: type[Answer]) -> Response:
    return reply(answer.model_validate(await state(request)["supervisor"].simulate(action, args)), 202)


def handler(action: str, answer: type[Answer], args: Callable[[Any], dict[str, Any]]) -> Handler:
    async def drive(request: Request, body: BaseModel | None = None) -> Response:
        return await simulate(request, action, args(body), answer)

    drive.__name__ = f"simulator_{action}"
    return drive


def dump(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(by_alias=True)


def route(action: str, summary: str, answer: type[Answer], body: type[BaseModel] | None = None) -> Route:
    operation = Operation(
        summary,
        {202: Reply("done", answer), **REPLIES},
        body=body,
        body_required=body is not None and any(field.is_required() for field in body.model_fields.values()),
        description=NOTE,
    )
    if body is SimulatorIncoming:
        args: Callable[[Any], dict[str, Any]] = SimulatorIncoming.args
    else:
        args = dump if body is not None else lambda _: {}
    return api(f"/api/simulator/{action}", "POST", operation, handler(action, answer, args))


async def not_in_use(request: Request) -> Response:
    raise HTTPException(404, "the simulator is not in use (WHATSAPP_BACKEND=simulator turns it on)")


def routes(backend: str) -> list[Route]:
    """The simulator's routes with that backend; with any other, one 404 saying why (and nothing documented)."""
    if backend == "simulator":
        return ROUTES
    return [Route("/api/simulator/{action}", requires_auth(not_in_use), methods=["POST"])]


ROUTES = [
    route("pair", "The open QR round is scanned: the account is linked", Paired, SimulatorPair),
    route("incoming", "A message (or another event) arrives; `count` makes a batch", Incoming, SimulatorIncoming),
    route("receipt", "Receipts for messages the account sent", Receipt, SimulatorReceipt),
    route("disconnect", "The connection ends for a reason", Disconnected, SimulatorDisconnect),
    route("send_failures", "The next sends fail (or answer late)", FailingSends, SimulatorSendFailures),
    route("action_failures", "The next calls of one action fail", FailingActions, SimulatorActionFailures),
    route("groups", "The account's groups: from now on it is a member of these alone", GroupList, SimulatorGroups),
    route("numbers", "Which phone numbers have no WhatsApp account (every other has one)", Numbers, SimulatorNumbers),
    route("actions", "What the simulated server was asked to do (read receipts, ...)", ServerActions),
    route("grow", "The worker holds more memory, as a leaking library would", Grown, SimulatorGrow),
    route("crash", "The worker dies as a Go panic kills it", WorkerAction),
    route("hang", "The worker stops answering", WorkerAction),
]
