"""GET /api/openapi.json: the API described as OpenAPI 3.1. Public: it describes the routes and holds no secret.

The session routes are written out below. Any other /api route of the app (added by another part of the app without
an entry here yet) is still listed, with its docstring as summary, so the document never silently misses a route.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from app import __version__
from app.web.api import DISCONNECT_REASONS, PHONE_FORM

PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"
SECURED: list[dict[str, list[str]]] = [{"bearer": []}, {"cookie": []}]


def error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def ok(description: str, schema: dict[str, Any], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def operation(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    common = {"401": error("no or wrong credentials"), "403": error("cookie-authenticated POST failed the CSRF check")}
    return {"summary": summary, "security": SECURED, "responses": {**responses, **common}, **extra}


STATE_REF = {"$ref": "#/components/schemas/StateAnswer"}
NO_STORE = {"Cache-Control": {"schema": {"type": "string", "const": "no-store"}}}
PHONE = {"type": "string", "pattern": PHONE_PATTERN, "description": PHONE_FORM, "examples": ["+6281234567890"]}
SIMULATOR_NOTE = "Simulator backend only (WHATSAPP_BACKEND=simulator); 404 otherwise."

RECIPIENT = {
    "type": "string",
    "description": "A phone number (+<country code><number>) or any chat JID a webhook event names: "
    "<digits>@s.whatsapp.net (or WhatsApp Web's <digits>@c.us), a LID <digits>@lid, a group <digits>@g.us or "
    "<digits>-<digits>@g.us. Anything else is a 422 saying what is wrong.",
    "examples": ["+6281234567890", "6281234567890@s.whatsapp.net", "123456789012345@lid", "120363021234567890@g.us"],
}

PATHS: dict[str, dict[str, Any]] = {
    "/api/messages": {
        "post": operation(
            "Queue a text message (an Idempotency-Key header makes a retried request return the same message)",
            {
                "202": ok("queued", {"type": "object"}),
                "200": ok("the message an earlier request with the same Idempotency-Key queued", {"type": "object"}),
                "409": error("the Idempotency-Key was used with a different request"),
                "422": error("'to' or 'text' is invalid; the detail says how"),
            },
            requestBody=body(
                {
                    "type": "object",
                    "required": ["to", "text"],
                    "properties": {"to": RECIPIENT, "text": {"type": "string", "minLength": 1, "maxLength": 65536}},
                }
            ),
        )
    },
    "/api/status": {
        "get": operation(
            "The session's state, account, heartbeat, 24 h figures, auth store, outbox, version",
            {"200": ok("the status", {"$ref": "#/components/schemas/Status"}), "503": error("database unavailable")},
        )
    },
    "/api/session/qr": {
        "get": operation(
            "The current QR code (payload and SVG) while pairing",
            {
                "200": ok("the QR code", {"$ref": "#/components/schemas/QR"}, NO_STORE),
                "409": error("not pairing: no QR code on offer"),
            },
        )
    },
    "/api/session/pair-code": {
        "post": operation(
            "An 8-character code to link by phone number instead of scanning",
            {
                "200": ok(
                    "the code",
                    {"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}},
                    NO_STORE,
                ),
                "409": error("no pairing round is open"),
                "422": error("the phone number is not in the form +<country code><number>"),
                "502": error("WhatsApp did not give a code"),
            },
            requestBody=body({"type": "object", "required": ["phone"], "properties": {"phone": PHONE}}),
        )
    },
    "/api/session/pair": {
        "post": operation(
            "Start a new QR pairing round (at most 3 per 2 minutes)",
            {
                "202": ok("the round is starting", STATE_REF),
                "409": error("the session is linked, pairing or connecting already"),
                "429": error("3 rounds in the last 2 minutes"),
            },
        )
    },
    "/api/session/reconnect": {
        "post": operation(
            "Drop the connection and connect again with a fresh worker", {"202": ok("reconnecting", STATE_REF)}
        )
    },
    "/api/session/logout": {
        "post": operation(
            "Unlink the account from WhatsApp (pairing is needed afterwards)",
            {"202": ok("logged out", STATE_REF), "409": error("not logged in"), "502": error("logout failed")},
        )
    },
    "/api/simulator/{action}": {
        "post": operation(
            "Drive the simulated WhatsApp: pair, incoming, receipt, disconnect, crash, hang",
            {
                "202": ok("done", {"type": "object"}),
                "404": error("not the simulator backend, or an unknown action"),
                "409": error("the simulated session cannot do that now"),
                "422": error("invalid body"),
            },
            description=SIMULATOR_NOTE,
            parameters=[
                {
                    "name": "action",
                    "in": "path",
                    "required": True,
                    "schema": {"enum": ["pair", "incoming", "receipt", "disconnect", "crash", "hang"]},
                }
            ],
            requestBody=body(
                {
                    "oneOf": [
                        {
                            "title": "pair",
                            "type": "object",
                            "properties": {"phone": PHONE, "push_name": {"type": "string", "maxLength": 100}},
                        },
                        {
                            "title": "incoming",
                            "type": "object",
                            "required": ["from"],
                            "properties": {
                                "from": PHONE,
                                "text": {"type": "string"},
                                "message_id": {"type": "string", "maxLength": 128},
                                "push_name": {"type": "string", "maxLength": 100},
                                "group": {"type": "string", "maxLength": 64},
                                "type": {"type": "string", "maxLength": 16},
                                "media": {"type": "object"},
                                "count": {"type": "integer", "minimum": 1, "maximum": 5000},
                                "target_id": {"type": "string", "maxLength": 128},
                                "emoji": {"type": "string", "maxLength": 16},
                                "options": {"type": "array", "items": {"type": "string"}, "maxItems": 12},
                                "selected": {"type": "array", "items": {"type": "string"}, "maxItems": 12},
                                "video": {"type": "boolean"},
                            },
                        },
                        {
                            "title": "receipt",
                            "type": "object",
                            "required": ["from", "message_ids"],
                            "properties": {
                                "from": PHONE,
                                "message_ids": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                                "status": {"enum": ["delivered", "read", "played"]},
                            },
                        },
                        {
                            "title": "disconnect",
                            "type": "object",
                            "properties": {
                                "reason": {"enum": list(DISCONNECT_REASONS)},
                                "seconds": {"type": "number", "exclusiveMinimum": 0},
                                "backlog": {"type": "integer", "minimum": 0, "maximum": 5000},
                                "reconnect": {"type": "boolean"},
                            },
                        },
                    ]
                },
                required=False,
            ),
        )
    },
}

COMPONENTS: dict[str, Any] = {
    "securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer", "description": "API_TOKEN"},
        "cookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": "wag_session",
            "description": "The page's login (POST /login). POSTs also need the page's token in X-CSRF-Token.",
        },
    },
    "schemas": {
        "Error": {
            "type": "object",
            "required": ["error", "detail"],
            "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
        },
        "State": {
            "enum": [
                "starting",
                "standby",
                "connecting",
                "pairing",
                "connected",
                "reconnecting",
                "logged_out",
                "replaced",
                "banned",
                "stopped",
            ]
        },
        "StateAnswer": {"type": "object", "properties": {"state": {"$ref": "#/components/schemas/State"}}},
        "QR": {
            "type": "object",
            "required": ["payload", "svg", "rotation"],
            "properties": {
                "payload": {"type": "string"},
                "svg": {"type": "string"},
                "rotation": {"type": "integer"},
                "received_at": {"type": "string", "format": "date-time"},
            },
        },
        "Status": {
            "type": "object",
            "required": ["state", "since", "version"],
            "properties": {
                "state": {"$ref": "#/components/schemas/State"},
                "since": {"type": "string", "format": "date-time"},
                "reason": {"type": ["string", "null"]},
                "detail": {"type": ["string", "null"]},
                "retry_at": {"type": ["string", "null"], "format": "date-time"},
                "account": {
                    "type": ["object", "null"],
                    "properties": {
                        "jid": {"type": "string"},
                        "push_name": {"type": ["string", "null"]},
                        "phone": {"type": ["string", "null"]},
                    },
                },
                "pairing": {"type": "object"},
                "last_heartbeat_at": {"type": ["string", "null"], "format": "date-time"},
                "heartbeat_ok": {"type": ["boolean", "null"]},
                "uptime_24h_percent": {"type": ["number", "null"]},
                "disconnects_24h": {"type": "integer"},
                "reconnects_24h": {"type": "integer"},
                "recent_transitions": {"type": "array", "items": {"type": "object"}},
                "auth_store": {"type": "object"},
                "outbox": {"type": "object"},
                "version": {"type": "string"},
            },
        },
    },
}


def openapi_document(routes: list[BaseRoute]) -> dict[str, Any]:
    paths = copy.deepcopy(PATHS)
    for route in routes:
        if not isinstance(route, Route) or not route.path.startswith("/api/") or route.path == "/api/openapi.json":
            continue
        path = re.sub(r"{(\w+):\w+}", r"{\1}", route.path)  # Starlette's {id:int} is OpenAPI's {id}
        entry = paths.setdefault(path, {})
        doc = (route.endpoint.__doc__ or route.name).strip().splitlines()[0]
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            entry.setdefault(method.lower(), operation(doc, {"200": {"description": "success"}}))
        for name in re.findall(r"{(\w+)}", path):
            for op in entry.values():
                params = op.setdefault("parameters", [])
                if not any(param.get("name") == name for param in params):
                    params.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "WhatsApp gateway",
            "version": __version__,
            "description": "One WhatsApp account, its session and its messages. Every route takes "
            "`Authorization: Bearer <API_TOKEN>` or the page's login cookie; errors are "
            '`{"error": "<code>", "detail": "<what is wrong>"}`.',
        },
        "paths": dict(sorted(paths.items())),
        "components": COMPONENTS,
    }


async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(openapi_document(request.app.routes))
