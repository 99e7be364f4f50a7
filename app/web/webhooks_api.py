"""The webhook operations API under /api/webhooks: list deliveries, look at one, retry one or all dead, list endpoints
and resume one paused by a 410. Every route requires authentication; errors are JSON like the rest of /api.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.web.endpoint import Operation, Reply, api, reply
from app.web.models import (
    BulkRetried,
    DeliveriesQuery,
    DeliveryPage,
    DeliveryWithEvent,
    Endpoints,
    Resumed,
    Retried,
    RetryAll,
)
from app.web.state import state
from app.webhooks import operator

MAX_ID = {"delivery": 2**63 - 1, "endpoint": 2**31 - 1}  # Postgres bigint and integer ids
DELIVERY_ID = {"id": {"type": "integer", "minimum": 1, "maximum": MAX_ID["delivery"]}}
ENDPOINT_ID = {"id": {"type": "integer", "minimum": 1, "maximum": MAX_ID["endpoint"]}}
# /api/webhooks/deliveries/retry (POST only) has the shape of /api/webhooks/deliveries/{id}: a GET of it is a 405.
NOT_THIS_METHOD = {405: Reply("not a delivery id: /api/webhooks/deliveries/retry is POST only")}


def id_of(request: Request, kind: str) -> int:
    """The path's {id:int}; one its column cannot hold names nothing (and would fail the query)."""
    value: int = request.path_params["id"]
    if not 1 <= value <= MAX_ID[kind]:
        raise HTTPException(404, f"no {kind} {value}")
    return value


def wake_dispatcher(request: Request) -> None:
    """NOTIFY reaches the dispatcher of whichever process holds the lock; this one is nudged directly as well."""
    dispatcher = state(request)["dispatcher"]
    if dispatcher is not None:
        dispatcher.wake()


async def list_deliveries(request: Request, query: DeliveriesQuery) -> Response:
    """GET /api/webhooks/deliveries?status=failed&limit=50&before=<id>: newest first."""
    async with state(request)["database"].connection() as connection:
        items = await operator.list_deliveries(connection, query.status, limit=query.limit, before=query.before)
    page = DeliveryPage.model_validate({"deliveries": items})
    if len(items) == query.limit:
        parts = (f"status={query.status}" if query.status else "", f"limit={query.limit}", f"before={items[-1]['id']}")
        page.next = f"{request.url.path}?" + "&".join(part for part in parts if part)
    return reply(page)


async def get_delivery(request: Request) -> Response:
    """GET /api/webhooks/deliveries/{id}: the delivery and the event exactly as it is sent."""
    delivery_id = id_of(request, "delivery")
    async with state(request)["database"].connection() as connection:
        row = await operator.get_delivery(connection, delivery_id)
    if row is None:
        raise HTTPException(404, f"no delivery {delivery_id}")
    shown = operator.delivery_json(row)
    shown["event"] = {
        "id": str(row["event_id"]),
        "type": row["type"],
        "created_at": row["event_created_at"].isoformat(),
        "data": json.loads(row["data_json"]),
    }
    return reply(DeliveryWithEvent.model_validate(shown))


async def retry_delivery(request: Request) -> Response:
    """POST /api/webhooks/deliveries/{id}/retry: due now, with the same event id (also replays a delivered one)."""
    delivery_id = id_of(request, "delivery")
    async with state(request)["database"].transaction() as connection:
        if await operator.get_delivery(connection, delivery_id) is None:
            raise HTTPException(404, f"no delivery {delivery_id}")
        if not await operator.retry_delivery(connection, delivery_id):
            raise HTTPException(409, f"delivery {delivery_id} is being attempted right now")
    wake_dispatcher(request)
    return reply(Retried(id=delivery_id, status="pending"), 202)


async def retry_all(request: Request, body: RetryAll) -> Response:
    """POST /api/webhooks/deliveries/retry {"status": "dead"}: every dead (or failed) delivery is due now."""
    async with state(request)["database"].connection() as connection:
        count = await operator.retry_all(connection, body.status)
    wake_dispatcher(request)
    return reply(BulkRetried(status=body.status, retried=count), 202)


async def list_endpoints(request: Request) -> Response:
    """GET /api/webhooks/endpoints: every WEBHOOK_URL entry with its figures, pause and last error."""
    async with state(request)["database"].connection() as connection:
        return reply(Endpoints.model_validate({"endpoints": await operator.endpoints(connection)}))


async def resume_endpoint(request: Request) -> Response:
    """POST /api/webhooks/endpoints/{id}/resume: deliver to an endpoint again after it answered 410 Gone."""
    endpoint_id = id_of(request, "endpoint")
    async with state(request)["database"].connection() as connection:
        if not await operator.resume_endpoint(connection, endpoint_id):
            raise HTTPException(404, f"no endpoint {endpoint_id}")
    wake_dispatcher(request)
    return reply(Resumed(id=endpoint_id, paused=False), 202)


ROUTES = [
    api(
        "/api/webhooks/deliveries",
        "GET",
        Operation("Webhook deliveries, newest first", {200: Reply("a page", DeliveryPage)}, query=DeliveriesQuery),
        list_deliveries,
    ),
    api(
        "/api/webhooks/deliveries/retry",
        "POST",
        Operation(
            "Every dead (or failed) delivery is due now",
            {202: Reply("how many are due again", BulkRetried)},
            body=RetryAll,
            body_required=False,
        ),
        retry_all,
    ),
    api(
        "/api/webhooks/deliveries/{id:int}",
        "GET",
        Operation(
            "One delivery and the event exactly as it is sent",
            {200: Reply("the delivery", DeliveryWithEvent), **NOT_THIS_METHOD},
            path=DELIVERY_ID,
        ),
        get_delivery,
    ),
    api(
        "/api/webhooks/deliveries/{id:int}/retry",
        "POST",
        Operation(
            "Deliver again now, with the same event id (also replays a delivered one)",
            {202: Reply("due now", Retried), 409: Reply("the delivery is being attempted right now")},
            path=DELIVERY_ID,
        ),
        retry_delivery,
    ),
    api(
        "/api/webhooks/endpoints",
        "GET",
        Operation(
            "Every WEBHOOK_URL entry with its figures, pause and last error", {200: Reply("the endpoints", Endpoints)}
        ),
        list_endpoints,
    ),
    api(
        "/api/webhooks/endpoints/{id:int}/resume",
        "POST",
        Operation(
            "Deliver to an endpoint again after it answered 410 Gone",
            {202: Reply("resumed", Resumed)},
            path=ENDPOINT_ID,
        ),
        resume_endpoint,
    ),
]
