"""The sending API: POST /api/messages queues a text; GET shows one or a page; DELETE cancels a queued one."""

from __future__ import annotations

import datetime as dt
import uuid

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.db.database import Database
from app.phone import InvalidPhone, parse_recipient
from app.sending import queue
from app.web.api import json_body, text_field
from app.web.auth import requires_auth

STATUSES = ("queued", "sending", "sent", "delivered", "read", "failed", "cancelled")
MAX_TEXT = 65536
MAX_KEY = 255
PAGE_DEFAULT, PAGE_MAX = 50, 200


def database_of(request: Request) -> Database:
    database: Database | None = request.app.state.services.database
    if database is None:
        raise HTTPException(503, "the database is still starting")
    return database


def message_id_of(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params["message_id"])
    except ValueError:
        raise HTTPException(404, "no such message (ids are UUIDs, as returned by POST /api/messages)") from None


@requires_auth
async def create(request: Request) -> JSONResponse:
    data = await json_body(request)
    to = data.get("to")
    if not isinstance(to, str):
        raise HTTPException(422, "'to' must be a phone number (+<country code><number>) or a WhatsApp JID")
    try:
        recipient = parse_recipient(to)
    except InvalidPhone as error:
        raise HTTPException(422, f"'to' {error}") from None
    text = text_field(data, "text", limit=MAX_TEXT)
    assert text is not None
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= MAX_KEY:
        raise HTTPException(422, f"the Idempotency-Key header must be 1 to {MAX_KEY} characters")
    async with database_of(request).connection() as connection:  # one statement: no explicit transaction needed
        try:
            result = await queue.enqueue(connection, recipient, text, key)
        except queue.IdempotencyConflict as error:
            raise HTTPException(409, str(error)) from None
    sender = request.app.state.services.sender
    if sender is not None and result.created:
        sender.wake()
    headers = {"Location": f"/api/messages/{result.message['id']}"}
    return JSONResponse(result.message, status_code=202 if result.created else 200, headers=headers)


@requires_auth
async def show(request: Request) -> JSONResponse:
    async with database_of(request).connection() as connection:
        message = await queue.get(connection, message_id_of(request))
    if message is None:
        raise HTTPException(404, "no such message")
    return JSONResponse(message)


@requires_auth
async def cancel(request: Request) -> JSONResponse:
    message_id = message_id_of(request)
    async with database_of(request).transaction() as connection:
        cancelled = await queue.cancel(connection, message_id)
        current = cancelled or await queue.get(connection, message_id)
    if current is None:
        raise HTTPException(404, "no such message")
    if cancelled is None:
        raise HTTPException(409, f"only a queued message can be cancelled; this one is {current['status']}")
    return JSONResponse(cancelled)


@requires_auth
async def listing(request: Request) -> JSONResponse:
    status = request.query_params.get("status")
    if status is not None and status not in STATUSES:
        raise HTTPException(422, f"'status' must be one of {', '.join(STATUSES)}")
    try:
        limit = int(request.query_params.get("limit", PAGE_DEFAULT))
    except ValueError:
        raise HTTPException(422, f"'limit' must be a whole number from 1 to {PAGE_MAX}") from None
    if not 1 <= limit <= PAGE_MAX:
        raise HTTPException(422, f"'limit' must be a whole number from 1 to {PAGE_MAX}")
    before = None
    if "before" in request.query_params:
        try:
            before = dt.datetime.fromisoformat(request.query_params["before"])
        except ValueError:
            raise HTTPException(422, "'before' must be an ISO-8601 time (the created_at of the last item)") from None
        if before.tzinfo is None:
            before = before.replace(tzinfo=dt.UTC)
    async with database_of(request).connection() as connection:
        items = await queue.page(connection, status, before, limit)
    next_before = items[-1]["created_at"] if len(items) == limit else None
    return JSONResponse({"items": items, "next_before": next_before})


ROUTES = [
    Route("/api/messages", create, methods=["POST"]),
    Route("/api/messages", listing, methods=["GET"]),
    Route("/api/messages/{message_id}", show, methods=["GET"]),
    Route("/api/messages/{message_id}", cancel, methods=["DELETE"]),
]
