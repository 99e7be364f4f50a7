"""Stored media over HTTP: `GET /api/media/{id}` with the API token, and `GET /media/{id}?expires=&signature=`, the
signed, expiring link a webhook event carries (app/media/links.py), for receivers that hold no token; and `POST
/api/media`, the upload of a file to send, answered with its `media_id`.

Both answer the bytes with the stored mimetype, `X-Content-Type-Options: nosniff` and `Cache-Control: private`, and
as an attachment unless the file is an image (SVG, which can carry script, is an attachment too): a file a customer
sent can never run as a page of this app. A file removed to keep the total under MEDIA_MAX_TOTAL_BYTES answers 410
Gone with the reason in the JSON error. A file in MEDIA_STORAGE_URL's bucket is streamed from it in chunks (never
whole in memory); while the bucket does not answer, 503."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.media import store as media_store
from app.media.intake import clean_file_name, keep
from app.media.sniff import SNIFF_BYTES, content_type
from app.media.storage import open_stored
from app.web.body import upload_too_large
from app.web.endpoint import Operation, Reply, api, reply
from app.web.models import Uploaded
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
    # From its row or its bucket, a piece at a time; the bucket is asked before the first byte is sent.
    chunks = await open_stored(state(request)["database"], state(request)["media_storage"], found)
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


MULTIPART = "multipart/form-data"
HOW = "send it as multipart/form-data in one part named 'file' (curl -F file=@photo.jpg)"
UPLOAD_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "the file (at most MEDIA_MAX_BYTES); its type is read from its bytes",
        }
    },
}
# Parts the upload's body may hold. The body as a whole is bounded (app/web/body.py), and each file part is spooled to
# a temporary file past 1 MB (Starlette's parser), so these only keep a crafted body from costing many small objects.
MAX_PARTS = 20
MAX_FIELD_BYTES = 4096
COPY_CHUNK = 256 * 1024  # bytes of an upload held at a time while it is copied


async def upload(request: Request) -> Response:
    """POST /api/media: one file, stored to be sent by its media_id."""
    max_bytes = state(request)["settings"].media_max_bytes
    if request.headers.get("content-type", "").split(";", 1)[0].strip().lower() != MULTIPART:
        raise HTTPException(415, f"the body is not multipart/form-data; {HOW}")
    async with request.form(max_files=MAX_PARTS, max_fields=MAX_PARTS, max_part_size=MAX_FIELD_BYTES) as form:
        files = [(name, value) for name, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            raise HTTPException(422, f"the body holds no file (a part with a filename); {HOW}")
        if len(files) > 1:
            raise HTTPException(422, f"the body holds {len(files)} files; send one file per request")
        name, part = files[0]
        if name != "file":
            raise HTTPException(422, f"the file's part is named {name!r}; {HOW}")
        claimed = part.content_type
        file_name = clean_file_name(part.filename)
        # Copied to a file of our own a piece at a time (the parser's spool is not a path a store can stream from),
        # never read whole: the head alone tells its type.
        handle, copy = tempfile.mkstemp(prefix="upload-")
        try:
            size, head = 0, b""
            with os.fdopen(handle, "wb") as out:
                while chunk := await part.read(COPY_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise HTTPException(413, upload_too_large(max_bytes))
                    if len(head) < SNIFF_BYTES:
                        head += chunk[: SNIFF_BYTES - len(head)]
                    out.write(chunk)
            if size == 0:
                raise HTTPException(422, "the file is empty")
            stored = await keep(
                state(request)["database"], state(request)["media_storage"], Path(copy), origin="upload",
                mimetype=content_type(head, claimed), file_name=file_name,
            )  # fmt: skip
        finally:
            os.unlink(copy)
    answer = Uploaded(
        media_id=str(stored.id), mimetype=stored.mimetype, size=stored.size, sha256=stored.sha256,
        file_name=stored.file_name,
    )  # fmt: skip
    return reply(answer, 201)


ROUTES = [
    api(
        "/api/media",
        "POST",
        Operation(
            "Upload a file to send: its media_id goes in a send's image, video, audio, document or sticker",
            {
                201: Reply("stored; the type was read from the bytes", Uploaded),
                400: Reply("the multipart body is malformed"),
                408: Reply("the body did not arrive in time"),
                413: Reply("the file is larger than MEDIA_MAX_BYTES; the rest of the body is not read"),
                415: Reply("the body is not multipart/form-data"),
                422: Reply("no file, more than one file, a file under another part name, or an empty file"),
            },
            form=UPLOAD_FORM,
        ),
        upload,
    ),
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
