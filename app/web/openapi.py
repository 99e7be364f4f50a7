"""GET /api/openapi.json: the API as OpenAPI 3.1, written from the route table (each route's Operation, app/web/
endpoint.py) and the models' own JSON Schema (app/web/models.py). Nothing here is typed twice, so it cannot drift.
Public: it describes the routes and holds no secret."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from app import __version__
from app.web.endpoint import JSON, Operation, Reply
from app.web.models import Error

REF = "#/components/schemas/{model}"
SECURED: list[dict[str, list[str]]] = [{"bearer": []}, {"cookie": []}]
# What any route may answer besides its own replies: the authentication (app/web/auth.py), the body's reading
# (app/web/body.py, app/web/endpoint.py) and the database or WhatsApp being unavailable for a moment.
COMMON = {
    401: Reply("no or wrong credentials", headers={"WWW-Authenticate": "Bearer"}),
    403: Reply("a cookie-authenticated POST failed the CSRF check"),
    503: Reply("the database or WhatsApp is unavailable right now; try again shortly", headers={"Retry-After": ""}),
}
BODY = {
    400: Reply("the body is not valid JSON"),
    408: Reply("the body did not arrive in time"),
    413: Reply("the body is too large"),
    415: Reply("the body is not application/json"),
    422: Reply("the body is invalid; the detail names the field and says how"),
}
QUERY = {422: Reply("a query parameter is invalid; the detail names it and says how")}
PATH = {404: Reply("no such item")}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "API_TOKEN"},
    "cookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "wag_session",
        "description": "The page's login (POST /login). POSTs also need the page's token in X-CSRF-Token.",
    },
}


def operations(routes: Sequence[BaseRoute]) -> list[tuple[str, str, Operation]]:
    """(OpenAPI path, method, operation) of every route that declares one, in the route table's order."""
    found = []
    for route in routes:
        operation = getattr(route, "operation", None)
        if isinstance(route, Route) and isinstance(operation, Operation):
            path = re.sub(r"{(\w+):\w+}", r"{\1}", route.path)  # Starlette's {id:int} is OpenAPI's {id}
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                found.append((path, method.lower(), operation))
    return found


def schemas(found: list[tuple[str, str, Operation]]) -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    """The JSON Schema of every model the routes name, inputs as validated and answers as sent, under one $defs."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(Error, "serialization"): None}
    for _, _, operation in found:
        if operation.body is not None:
            wanted[operation.body, "validation"] = None
        for reply in operation.replies.values():
            if reply.model is not None:
                wanted[reply.model, "serialization"] = None
    refs, top = models_json_schema(list(wanted), ref_template=REF)
    return refs, used(refs, top.get("$defs", {}))


def used(refs: dict[Any, dict[str, Any]], definitions: dict[str, Any]) -> dict[str, Any]:
    """The definitions some route refers to, directly or through another (pydantic also lists the Recipient dataclass
    behind SendMessage.to, which is documented as the string it is sent as)."""
    wanted = {ref["$ref"].rsplit("/", 1)[1] for ref in refs.values()}
    while True:
        more = {
            name
            for name in definitions
            if f'"{REF.format(model=name)}"' in json.dumps([definitions[w] for w in wanted])
        }
        if more <= wanted:
            return {name: definitions[name] for name in sorted(wanted)}
        wanted |= more


def response(reply: Reply, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    model = reply.model or Error
    answer: dict[str, Any] = {
        "description": reply.description,
        "content": {JSON: {"schema": refs[model, "serialization"]}},
    }
    if reply.content is not None:
        answer["content"] = {reply.content: {"schema": {"type": "string", "format": "binary"}}}
    if reply.headers:
        answer["headers"] = {
            name: {"description": text or name, "schema": {"type": "string"}} for name, text in reply.headers.items()
        }
    if reply.links:
        answer["links"] = dict(reply.links)
    return answer


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    parameters = []
    for name, field in schema.get("properties", {}).items():
        branches = [branch for branch in field.pop("anyOf", []) if branch != {"type": "null"}]
        if branches:  # an optional value is a parameter left out, never null
            field = {**field, **branches[0]}
        if field.get("default", "") is None:
            del field["default"]
        parameter = {"name": name, "in": "query", "required": name in required, "schema": field}
        if "description" in field:
            parameter["description"] = field["description"]
        parameters.append(parameter)
    return parameters


def describe(operation: Operation, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    replies = {**COMMON, **(BODY if operation.body else {}), **(QUERY if operation.query else {})}
    replies.update(PATH if operation.path else {})
    replies.update(operation.replies)
    described: dict[str, Any] = {
        "summary": operation.summary,
        "security": SECURED,
        "responses": {str(status): response(reply, refs) for status, reply in sorted(replies.items())},
    }
    if operation.description:
        described["description"] = operation.description
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": schema} for name, schema in operation.path.items()
    ]
    parameters += [
        {"name": name, "in": "header", "required": False, "schema": schema}
        for name, schema in operation.headers.items()
    ]
    if operation.query is not None:
        parameters += query_parameters(operation.query)
    if parameters:
        described["parameters"] = parameters
    if operation.body is not None:
        described["requestBody"] = {
            "required": operation.body_required,
            "content": {JSON: {"schema": refs[operation.body, "validation"]}},
        }
    if operation.form is not None:
        described["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": dict(operation.form)}},
        }
    return described


def openapi_document(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    found = operations(routes)
    refs, definitions = schemas(found)
    paths: dict[str, dict[str, Any]] = {}
    for path, method, operation in found:
        paths.setdefault(path, {})[method] = describe(operation, refs)
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
        "components": {"securitySchemes": SECURITY_SCHEMES, "schemas": definitions},
    }


async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(openapi_document(request.app.routes))  # a few ms, for a document fetched rarely
