"""The webhook operations API under /api/webhooks: list deliveries, look at one, retry one or all dead, list endpoints
and resume one paused by a 410. Every route requires authentication; errors are JSON like the rest of /api.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.db.database import Database
from app.web.api import json_body
from app.web.auth import requires_auth
from app.webhooks import operator

MAX_LIMIT = 500
BULK_RETRY_STATUSES = ("dead", "failed")


def database_of(request: Request) -> Database:
    database: Database | None = request.app.state.services.database
    if database is None:
        raise HTTPException(503, "the database is still starting")
    return database


def wake_dispatcher(request: Request) -> None:
    """NOTIFY reaches the dispatcher of whichever process holds the lock; this one is nudged directly as well."""
    dispatcher = request.app.state.services.dispatcher
    if dispatcher is not None:
        dispatcher.wake()


def int_param(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(422, f"'{name}' must be an integer") from None
    if not low <= value <= high:
        raise HTTPException(422, f"'{name}' must be between {low} and {high}")
    return value


@requires_auth
async def list_deliveries(request: Request) -> JSONResponse:
    """GET /api/webhooks/deliveries?status=failed&limit=50&before=<id>: newest first."""
    status = request.query_params.get("status") or None
    if status is not None and status not in operator.STATUSES:
        raise HTTPException(422, f"'status' must be one of {', '.join(operator.STATUSES)}")
    limit = int_param(request, "limit", 50, 1, MAX_LIMIT)
    before = int_param(request, "before", None, 1, 2**63 - 1)
    assert limit is not None
    async with database_of(request).connection() as connection:
        items = await operator.list_deliveries(connection, status, limit=limit, before=before)
    page: dict[str, Any] = {"deliveries": items}
    if len(items) == limit:
        page["next"] = f"{request.url.path}?" + "&".join(
            part
            for part in (f"status={status}" if status else "", f"limit={limit}", f"before={items[-1]['id']}")
            if part
        )
    return JSONResponse(page)


@requires_auth
async def get_delivery(request: Request) -> JSONResponse:
    """GET /api/webhooks/deliveries/{id}: the delivery and the event exactly as it is sent."""
    async with database_of(request).connection() as connection:
        row = await operator.get_delivery(connection, request.path_params["id"])
    if row is None:
        raise HTTPException(404, f"no delivery {request.path_params['id']}")
    shown = operator.delivery_json(row)
    shown["event"] = {
        "id": str(row["event_id"]),
        "type": row["type"],
        "created_at": row["event_created_at"].isoformat(),
        "data": json.loads(row["data_json"]),
    }
    return JSONResponse(shown)


@requires_auth
async def retry_delivery(request: Request) -> JSONResponse:
    """POST /api/webhooks/deliveries/{id}/retry: due now, with the same event id (also replays a delivered one)."""
    delivery_id = request.path_params["id"]
    async with database_of(request).transaction() as connection:
        if await operator.get_delivery(connection, delivery_id) is None:
            raise HTTPException(404, f"no delivery {delivery_id}")
        if not await operator.retry_delivery(connection, delivery_id):
            raise HTTPException(409, f"delivery {delivery_id} is being attempted right now")
    wake_dispatcher(request)
    return JSONResponse({"id": delivery_id, "status": "pending"}, status_code=202)


@requires_auth
async def retry_all(request: Request) -> JSONResponse:
    """POST /api/webhooks/deliveries/retry {"status": "dead"}: every dead (or failed) delivery is due now."""
    status = (await json_body(request)).get("status", "dead")
    if status not in BULK_RETRY_STATUSES:
        raise HTTPException(422, f"'status' must be one of {', '.join(BULK_RETRY_STATUSES)}")
    async with database_of(request).connection() as connection:
        count = await operator.retry_all(connection, status)
    wake_dispatcher(request)
    return JSONResponse({"status": status, "retried": count}, status_code=202)


@requires_auth
async def list_endpoints(request: Request) -> JSONResponse:
    """GET /api/webhooks/endpoints: every WEBHOOK_URL entry with its figures, pause and last error."""
    async with database_of(request).connection() as connection:
        return JSONResponse({"endpoints": await operator.endpoints(connection)})


@requires_auth
async def resume_endpoint(request: Request) -> JSONResponse:
    """POST /api/webhooks/endpoints/{id}/resume: deliver to an endpoint again after it answered 410 Gone."""
    endpoint_id = request.path_params["id"]
    async with database_of(request).connection() as connection:
        if not await operator.resume_endpoint(connection, endpoint_id):
            raise HTTPException(404, f"no endpoint {endpoint_id}")
    wake_dispatcher(request)
    return JSONResponse({"id": endpoint_id, "paused": False}, status_code=202)


ROUTES = [
    Route("/api/webhooks/deliveries", list_deliveries),
    Route("/api/webhooks/deliveries/retry", retry_all, methods=["POST"]),
    Route("/api/webhooks/deliveries/{id:int}", get_delivery),
    Route("/api/webhooks/deliveries/{id:int}/retry", retry_delivery, methods=["POST"]),
    Route("/api/webhooks/endpoints", list_endpoints),
    Route("/api/webhooks/endpoints/{id:int}/resume", resume_endpoint, methods=["POST"]),
]
