"""The JSON API under /api: thin handlers over the session supervisor. Every route requires authentication."""

from __future__ import annotations

import json
import re
from typing import Any

import segno
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.phone import group_jid
from app.session.supervisor import Supervisor
from app.status import as_json
from app.web.auth import requires_auth

PHONE = re.compile(r"\+[1-9][0-9]{6,14}")  # ASCII digits only (\d would take any script's digits); fullmatch
PHONE_FORM = "+<country code><number>, digits only, for example +6281234567890"
DISCONNECT_REASONS = ("connection_lost", "logged_out", "replaced", "banned", "outdated", "silent")
MAX_BAN_SECONDS = 31 * 86400
MAX_RECEIPT_IDS = 1000
MESSAGE_TYPES = ("text", "image", "video", "audio", "document", "sticker", "location", "contact", "poll", "other")
# Simulated items that are not messages: each becomes the event a real one would (app/whatsapp/simulator.py).
EVENT_TYPES = ("edit", "delete", "reaction", "poll_vote", "undecryptable", "call", "status")
MAX_BATCH = 5000  # messages per simulated `incoming` command, and the largest offline backlog


def supervisor_of(request: Request) -> Supervisor:
    supervisor: Supervisor | None = request.app.state.services.supervisor
    if supervisor is None:
        raise HTTPException(503, "the session is still starting")
    return supervisor


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or a 4xx saying what is wrong with it. An empty body counts as {}. Its size is
    bounded while it streams (app/web/body.py), so reading it whole here is safe."""
    body = await request.body()
    if not body.strip():
        return {}
    if "json" not in request.headers.get("content-type", "application/json"):
        raise HTTPException(415, "send the body as application/json")
    try:
        data = json.loads(body)
    except ValueError as error:
        raise HTTPException(400, f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise HTTPException(400, "the body is not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise HTTPException(422, "the body must be a JSON object")
    return data


def phone_field(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not PHONE.fullmatch(value.replace(" ", "")):
        raise HTTPException(422, f"'{name}' must be an international phone number: {PHONE_FORM}")
    return value.replace(" ", "")


def text_field(data: dict[str, Any], name: str, *, required: bool = True, limit: int = 65536) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise HTTPException(422, f"'{name}' must be a string of 1 to {limit} characters")
    if not storable(value):
        raise HTTPException(422, f"'{name}' must be valid Unicode text without NUL characters")
    return value


def choice_field(data: dict[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = data.get(name, default)
    if value not in choices:
        raise HTTPException(422, f"'{name}' must be one of {', '.join(choices)}")
    return str(value)


def media_field(data: dict[str, Any]) -> dict[str, Any] | None:
    """null or {"mimetype", "size", "file_name"} (each optional), as in a message.received webhook."""
    media = data.get("media")
    if media is None:
        return None
    problem = "'media' must be null or an object with mimetype (string), size (integer >= 0), file_name (string)"
    if not isinstance(media, dict) or set(media) - {"mimetype", "size", "file_name"}:
        raise HTTPException(422, problem)
    size = media.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 2**53):
        raise HTTPException(422, problem)
    for key in ("mimetype", "file_name"):
        value = media.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 255 or not storable(value)):
            raise HTTPException(422, problem)
    return media


TARGETED = ("edit", "delete", "reaction", "poll_vote")  # these act on an earlier message: target_id is required


def string_list(data: dict[str, Any], name: str, *, limit: int) -> list[str] | None:
    """null or a list of up to `limit` strings of 1 to 100 characters (poll options, selected options)."""
    value = data.get(name)
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > limit
        or not all(isinstance(item, str) and 1 <= len(item) <= 100 and storable(item) for item in value)
    ):
        raise HTTPException(422, f"'{name}' must be a list of up to {limit} strings of 1 to 100 characters")
    return value


def storable(value: str) -> bool:
    """Text that Postgres and UTF-8 can hold: no NUL, no lone surrogate (JSON's "\\ud800" escape makes one)."""
    if "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


@requires_auth
async def status(request: Request) -> JSONResponse:
    return JSONResponse(as_json(await request.app.state.services.status()))


@requires_auth
async def session_qr(request: Request) -> JSONResponse:
    snapshot = supervisor_of(request).snapshot()
    if snapshot.qr is None:
        raise HTTPException(409, f"no QR code on offer: the session is {snapshot.state.value}")
    svg = segno.make(snapshot.qr["payload"], error="l").svg_inline(scale=5, border=2)
    return JSONResponse({**snapshot.qr, "svg": svg}, headers={"Cache-Control": "no-store"})


@requires_auth
async def session_pair_code(request: Request) -> JSONResponse:
    phone = phone_field(await json_body(request), "phone")
    assert phone is not None
    code = await supervisor_of(request).pair_code(phone.removeprefix("+"))
    return JSONResponse({"code": code}, headers={"Cache-Control": "no-store"})


@requires_auth
async def session_reconnect(request: Request) -> JSONResponse:
    return JSONResponse(await supervisor_of(request).reconnect(), status_code=202)


@requires_auth
async def session_logout(request: Request) -> JSONResponse:
    return JSONResponse(await supervisor_of(request).logout(), status_code=202)


@requires_auth
async def session_pair(request: Request) -> JSONResponse:
    return JSONResponse(await supervisor_of(request).pair(), status_code=202)


def group_field(data: dict[str, Any]) -> str | None:
    """The simulator's optional `group`: a group JID or its id, as the group's JID; 422 for anything else."""
    value = text_field(data, "group", required=False, limit=64)
    if value is None:
        return None
    try:
        return group_jid(value)
    except ValueError as error:
        raise HTTPException(422, f"'group' {error}") from None


@requires_auth
async def simulator(request: Request) -> JSONResponse:
    """POST /api/simulator/{action}: drive the simulated WhatsApp (404 unless WHATSAPP_BACKEND=simulator)."""
    supervisor = supervisor_of(request)
    if supervisor.backend != "simulator":
        raise HTTPException(404, "the simulator is not in use (WHATSAPP_BACKEND=simulator turns it on)")
    action = request.path_params["action"]
    data = await json_body(request)
    args: dict[str, Any]
    if action == "pair":
        args = {
            "phone": phone_field(data, "phone", required=False),
            "push_name": text_field(data, "push_name", required=False, limit=100),
        }
    elif action == "incoming":
        args = {
            "from": phone_field(data, "from"),
            "text": text_field(data, "text", required=False),
            "message_id": text_field(data, "message_id", required=False, limit=128),
            "push_name": text_field(data, "push_name", required=False, limit=100),
            "group": group_field(data),
            "type": choice_field(data, "type", MESSAGE_TYPES + EVENT_TYPES, "text"),
            "media": media_field(data),
            "from_me": data.get("from_me") is True,
            "target_id": text_field(data, "target_id", required=data.get("type") in TARGETED, limit=128),
            "emoji": text_field(data, "emoji", required=False, limit=16),
            "options": string_list(data, "options", limit=12),
            "selected": string_list(data, "selected", limit=12),
            "video": data.get("video") is True,
        }
        if "count" in data:
            count = data["count"]
            if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_BATCH:
                raise HTTPException(422, f"'count' must be an integer from 1 to {MAX_BATCH}")
            args["count"] = count
    elif action == "receipt":
        ids = data.get("message_ids")
        if (
            not isinstance(ids, list)
            or not 1 <= len(ids) <= MAX_RECEIPT_IDS
            or not all(isinstance(item, str) and 1 <= len(item) <= 128 and storable(item) for item in ids)
        ):
            raise HTTPException(
                422, f"'message_ids' must be a list of 1 to {MAX_RECEIPT_IDS} WhatsApp message ids (strings)"
            )
        if data.get("status", "delivered") not in ("delivered", "read", "played"):
            raise HTTPException(422, "'status' must be delivered, read or played")
        args = {
            "from": phone_field(data, "from"),
            "message_ids": ids,
            "status": data.get("status", "delivered"),
            "group": group_field(data),
        }
    elif action == "disconnect":
        reason = data.get("reason", "connection_lost")
        if reason not in DISCONNECT_REASONS:
            raise HTTPException(422, f"'reason' must be one of {', '.join(DISCONNECT_REASONS)}")
        seconds = data.get("seconds", 3600)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= MAX_BAN_SECONDS:
            raise HTTPException(422, f"'seconds' must be a number of seconds above 0, at most {MAX_BAN_SECONDS}")
        backlog = data.get("backlog", 0)
        if isinstance(backlog, bool) or not isinstance(backlog, int) or not 0 <= backlog <= MAX_BATCH:
            raise HTTPException(422, f"'backlog' must be a whole number of messages from 0 to {MAX_BATCH}")
        if not isinstance(data.get("reconnect", True), bool):
            raise HTTPException(422, "'reconnect' must be true or false")
        args = {"reason": reason, "seconds": seconds, "backlog": backlog, "reconnect": data.get("reconnect", True)}
    elif action == "send_failures":
        count = data.get("count", 1)
        if not isinstance(count, int) or not 1 <= count <= 100:
            raise HTTPException(422, "'count' must be a whole number from 1 to 100")
        delay = data.get("delay", 0)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 120:
            raise HTTPException(422, "'delay' must be seconds from 0 to 120")
        args = {
            "count": count,
            "permanent": bool(data.get("permanent", False)),
            "error": text_field(data, "error", required=False, limit=200),
            "delay": delay,
        }
    elif action == "grow":
        mb = data.get("mb")
        if isinstance(mb, bool) or not isinstance(mb, int) or not 1 <= mb <= 2048:
            raise HTTPException(422, "'mb' must be a whole number of megabytes from 1 to 2048")
        args = {"mb": mb}
    elif action in ("crash", "hang"):
        args = {}
    else:
        raise HTTPException(404, f"unknown simulator action {action!r}")
    return JSONResponse(await supervisor.simulate(action, args), status_code=202)


ROUTES = [
    Route("/api/status", status),
    Route("/api/session/qr", session_qr),
    Route("/api/session/pair-code", session_pair_code, methods=["POST"]),
    Route("/api/session/reconnect", session_reconnect, methods=["POST"]),
    Route("/api/session/logout", session_logout, methods=["POST"]),
    Route("/api/session/pair", session_pair, methods=["POST"]),
    Route("/api/simulator/{action}", simulator, methods=["POST"]),
]
