"""Stored media over HTTP: `GET /api/media/{id}` with the API token, and `GET /media/{id}?expires=&signature=`, the
signed, expiring link a webhook event carries (app/media/links.py), for receivers that hold no token.

Both answer the bytes with the stored mimetype, `X-Content-Type-Options: nosniff` and `Cache-Control: private`, and
as an attachment unless the file is an image (SVG, which can carry script, is an attachment too): a file a customer
sent can never run as a page of this app. A file removed to keep the total under MEDIA_MAX_TOTAL_BYTES answers 410
Gone with the reason in the JSON error. A file in MEDIA_STORAGE_URL's bucket is streamed from it in chunks (never
whole in memory); while the bucket does not answer, 503."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.media import store as media_store
from app.web.endpoint import Operation, Reply, api
from app.web.state import state

MEDIA_ID = {"id": {"type": "string", "format": "uuid", "description": "the `media.id` of a webhook event"}}
BINARY = "*/*"


def disposition(mimetype: str, file_name: str | None) -> str:
    inline = mimetype.startswith("image/") and not mimetype.startswith("image/svg")
    kind = "inline" if inline else "attachment"
    if not file_name:
        return kind
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in file_name)
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name, safe='')}"


async def _serve(request: Request) -> Response:
    try:
        media_id = uuid.UUID(request.path_params["id"])
    except ValueError:
        raise HTTPException(404, "no such media") from None
    async with state(request)["database"].connection() as connection:
        found = await media_store.served(connection, media_id)
    if found is None:
        raise HTTPException(404, "no such media (never stored, or deleted after MEDIA_RETENTION_DAYS)")
    if found.removed is not None:
        raise HTTPException(410, found.removed)
    mimetype, file_name = found.mimetype, found.file_name
    headers = {
        "Content-Disposition": disposition(mimetype, file_name),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private",
    }
    if found.object_key is None and found.bytes is not None:  # in the media table: already read with its row
        return Response(found.bytes, 200, headers, media_type=mimetype)
    chunks = await state(request)["media_storage"].open(found)  # asks the bucket before the first byte is sent
    if chunks is None:
        raise HTTPException(410, "removed: the file's object is no longer in the media store (MEDIA_STORAGE_URL)")
    return StreamingResponse(chunks, 200, {**headers, "Content-Length": str(found.size)}, media_type=mimetype)


async def media_file(request: Request) -> Response:
    return await _serve(request)


async def signed_media_file(request: Request) -> Response:
    """GET /media/{id}?expires=...&signature=...: no token, the link's signature instead."""
    links = state(request)["media_links"]
    query = request.query_params
    if links is None or not links.valid(
        request.path_params["id"], query.get("expires", ""), query.get("signature", "")
    ):
        raise HTTPException(403, "this media link is invalid or has expired; fetch GET /api/media/{id} with the token")
    return await _serve(request)


ROUTES = [
    api(
        "/api/media/{id}",
        "GET",
        Operation(
            "The bytes of a stored incoming file (an image, video, voice note, document or sticker)",
            {
                200: Reply("the file, with its mimetype; an attachment unless an image", content=BINARY),
                410: Reply("the file was removed to keep the total under MEDIA_MAX_TOTAL_BYTES; `detail` says so"),
            },
            path=MEDIA_ID,
        ),
        media_file,
    ),
    Route("/media/{id}", signed_media_file, methods=["GET"]),
]
