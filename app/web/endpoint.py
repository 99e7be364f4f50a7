"""The JSON API's route table entries: each route names its body or query model and its answers, once. From that the
request is authenticated, parsed and validated (a 4xx naming the field), and app/web/openapi.py writes the document."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.web.auth import requires_auth

Handler = Callable[..., Awaitable[Response]]  # (request) or (request, the parsed body or query)
JSON = "application/json"
M = TypeVar("M", bound=BaseModel)


@dataclasses.dataclass(frozen=True)
class Reply:
    """One documented answer: its model (None: the Error body) and the headers it carries."""

    description: str
    model: type[BaseModel] | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)  # name -> description
    links: Mapping[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # OpenAPI links to other routes
    content: str | None = None  # bytes of this media type ("*/*": any) instead of a JSON model


@dataclasses.dataclass(frozen=True)
class Operation:
    summary: str
    replies: Mapping[int, Reply]
    body: type[BaseModel] | None = None
    body_required: bool = True  # False: an empty body counts as {} (every field has a default)
    query: type[BaseModel] | None = None
    path: Mapping[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # name -> JSON Schema
    headers: Mapping[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # request headers
    description: str | None = None
    # A multipart/form-data body's JSON Schema (an upload), read by the handler itself: the document shows it as is.
    form: Mapping[str, Any] | None = None


def reply(answer: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """An answer as it is documented: its model, serialised by pydantic's core (None fields included)."""
    return Response(answer.model_dump_json(by_alias=True), status, headers, JSON)


def api(path: str, method: str, operation: Operation, handler: Handler) -> Route:
    """A Route that authenticates (app/web/auth.py), parses its input into the declared model and calls `handler`
    with it. The Operation rides on the route (`route.operation`) for the OpenAPI document."""

    async def endpoint(request: Request) -> Response:
        if operation.body is not None:
            return await handler(request, await parse_body(request, operation.body))
        if operation.query is not None:
            # `?status=` is no status, as it always was
            given = {name: value for name, value in request.query_params.items() if value != ""}
            return await handler(request, parse(operation.query, given))
        return await handler(request)

    endpoint.__name__ = endpoint.__qualname__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    route = Route(path, requires_auth(endpoint), methods=[method])
    route.operation = operation  # type: ignore[attr-defined]
    return route


async def parse_body(request: Request, model: type[M]) -> M:
    """The request's JSON body as `model`, or a 4xx saying what is wrong. Its size is bounded while it streams
    (app/web/body.py), so reading it whole here is safe."""
    raw = await request.body()
    if not raw.strip():
        raw = b"{}"  # no body: the model says what is missing
    elif "json" not in request.headers.get("content-type", JSON):
        raise HTTPException(415, "send the body as application/json")
    return parse(model, raw)


def parse(model: type[M], data: bytes | dict[str, Any]) -> M:
    """A raw JSON body (parsed by pydantic's core, no json.loads first) or query values as `model`; else a 4xx."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False)
        if problems and problems[0]["type"] == "json_invalid":
            reason = str(problems[0].get("ctx", {}).get("error", "malformed"))
            if "recursion limit" in reason:
                reason = "nested too deeply"
            raise HTTPException(400, f"the body is not valid JSON: {reason}") from None
        raise HTTPException(422, "; ".join(describe(model, problem) for problem in problems[:5])) from None


def named_field(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[str, FieldInfo | None]:
    """The field a problem's location names, as the client spelled it, and its declaration: down into nested bodies
    (`image.media_id`) as far as a field says what it must be; else the top one (None: no declared field)."""
    names: list[str] = []
    walked: list[tuple[str, FieldInfo]] = []
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None or not isinstance(part, str):
            break
        field = next((f for key, f in current.model_fields.items() if part in (key, f.alias)), None)
        if field is None:
            break
        names.append(part)
        walked.append((".".join(names), field))
        kinds = (field.annotation, *get_args(field.annotation))
        current = next((k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)), None)
    if not walked:
        return str(loc[0]), None
    described = [(name, field) for name, field in walked[1:] if field.description]
    return described[-1] if described else walked[0]


def describe(model: type[BaseModel], problem: ErrorDetails) -> str:
    """One problem as the 422 says it: the field (by the name the client sent), what it must be, and where exactly.
    A field's description is written to read after "must be"; a validator's own message (app/phone.py) stands alone.
    """
    loc = problem["loc"]
    if not loc:  # the body as a whole: not an object, or a rule across fields (its message names them)
        if problem["type"] == "value_error":
            return str(problem.get("ctx", {}).get("error", problem["msg"]))
        return "the body must be a JSON object"
    name, field = named_field(model, loc)
    if problem["type"] == "value_error":
        message = str(problem.get("ctx", {}).get("error", problem["msg"]))
        said = f"'{name}' {message}"
    elif field is not None and field.description:
        said = f"'{name}' must be {field.description}"
    else:
        said = f"'{name}': {problem['msg']}"
    if len(loc) > 1 or problem["type"] != "value_error":
        where = ".".join(str(part) for part in loc)
        said += f" ({where}: {problem['msg']})"
    return said
