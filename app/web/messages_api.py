"""The sending API: POST /api/messages queues a text; GET shows one or a page; DELETE cancels a queued one."""

from __future__ import annotations

import datetime as dt
import uuid

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.sending import queue
from app.web.endpoint import Operation, Reply, api, reply
from app.web.models import Message, MessagePage, MessagesQuery, SendMessage
from app.web.state import state

MAX_KEY = 255
LOCATION = {"Location": "/api/messages/{id}: where to follow the message"}
ONE = "#/paths/~1api~1messages~1{message_id}"
FOLLOW = {  # what a client does next with the id it got
    "show": {"operationRef": f"{ONE}/get", "parameters": {"message_id": "$response.body#/id"}},
    "cancel": {"operationRef": f"{ONE}/delete", "parameters": {"message_id": "$response.body#/id"}},
}
MESSAGE_ID = {"message_id": {"type": "string", "format": "uuid", "description": "as returned by POST /api/messages"}}
IDEMPOTENCY_KEY = {
    "Idempotency-Key": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY,
        "description": "makes a retried request return the message the first one queued",
    }
}


def message_id_of(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params["message_id"])
    except ValueError:
        raise HTTPException(404, "no such message (ids are UUIDs, as returned by POST /api/messages)") from None


async def create(request: Request, body: SendMessage) -> Response:
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= MAX_KEY:
        raise HTTPException(422, f"the Idempotency-Key header must be 1 to {MAX_KEY} characters")
    services = state(request)
    async with services["database"].connection() as connection:  # one statement: no explicit transaction needed
        try:
            result = await queue.enqueue(connection, body.to, body.text, key, typing=body.typing)
        except queue.IdempotencyConflict as error:
            raise HTTPException(409, str(error)) from None
    if result.created:
        services["sender"].wake()
    headers = {"Location": f"/api/messages/{result.message['id']}"}
    return reply(Message.model_validate(result.message), 202 if result.created else 200, headers)


async def show(request: Request) -> Response:
    async with state(request)["database"].connection() as connection:
        message = await queue.get(connection, message_id_of(request))
    if message is None:
        raise HTTPException(404, "no such message")
    return reply(Message.model_validate(message))


async def cancel(request: Request) -> Response:
    message_id = message_id_of(request)
    async with state(request)["database"].transaction() as connection:
        cancelled = await queue.cancel(connection, message_id)
        current = cancelled or await queue.get(connection, message_id)
    if current is None:
        raise HTTPException(404, "no such message")
    if cancelled is None:
        raise HTTPException(409, f"only a queued message can be cancelled; this one is {current['status']}")
    return reply(Message.model_validate(cancelled))


async def listing(request: Request, query: MessagesQuery) -> Response:
    before = None
    if query.before is not None:
        try:
            before = dt.datetime.fromisoformat(query.before)
        except ValueError:
            raise HTTPException(422, "'before' must be an ISO-8601 time (the created_at of the last item)") from None
        if before.tzinfo is None:
            before = before.replace(tzinfo=dt.UTC)
    async with state(request)["database"].connection() as connection:
        items = await queue.page(connection, query.status, before, query.limit)
    next_before = items[-1]["created_at"] if len(items) == query.limit else None
    return reply(MessagePage.model_validate({"items": items, "next_before": next_before}))


ROUTES = [
    api(
        "/api/messages",
        "POST",
        Operation(
            "Queue a text message (an Idempotency-Key header makes a retried request return the same message)",
            {
                202: Reply("queued", Message, LOCATION, FOLLOW),
                200: Reply(
                    "the message an earlier request with the same Idempotency-Key queued", Message, LOCATION, FOLLOW
                ),
                409: Reply("the Idempotency-Key was used with a different request"),
            },
            body=SendMessage,
            headers=IDEMPOTENCY_KEY,
        ),
        create,
    ),
    api(
        "/api/messages",
        "GET",
        Operation("Queued and sent messages, newest first", {200: Reply("a page", MessagePage)}, query=MessagesQuery),
        listing,
    ),
    api(
        "/api/messages/{message_id}",
        "GET",
        Operation("One message and where it is", {200: Reply("the message", Message)}, path=MESSAGE_ID),
        show,
    ),
    api(
        "/api/messages/{message_id}",
        "DELETE",
        Operation(
            "Cancel a message that is still queued",
            {200: Reply("cancelled", Message), 409: Reply("the message is no longer queued")},
            path=MESSAGE_ID,
        ),
        cancel,
    ),
]
