"""POST /api/media against the app in-process (real Postgres, its lifespan running): a file is stored with the type
read from its bytes and served back; an oversized body is refused while it streams, with or without Content-Length;
no file, two files, a file under another name, an empty file and a body that is not multipart are refused."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator

import httpx

from app.media import store as media_store
from app.web.body import MULTIPART_FRAMING
from app.whatsapp import samples
from tests.web.conftest import ClientFactory, state_of
from tests.web.test_api import AUTH

LIMIT = 20_000  # MEDIA_MAX_BYTES here
BOUNDARY = "gatewaytestboundary"


async def test_an_upload_is_stored_with_the_type_read_from_its_bytes(app_client: ClientFactory) -> None:
    async with app_client(MEDIA_MAX_BYTES=str(LIMIT)) as client:
        png = samples.png()
        answer = await client.post(
            "/api/media", headers=AUTH, files={"file": ("C:\\Users\\ana\\receipt.jpg", png, "application/pdf")}
        )
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body == {
            "media_id": body["media_id"], "mimetype": "image/png", "size": len(png),
            "sha256": hashlib.sha256(png).hexdigest(), "file_name": "receipt.jpg",
        }  # fmt: skip  # the bytes say PNG, whatever the name and the part's type claim
        served = await client.get(f"/api/media/{body['media_id']}", headers=AUTH)
        assert served.status_code == 200 and served.content == png
        async with state_of(client)["database"].connection() as connection:
            found = await media_store.find(connection, uuid.UUID(body["media_id"]))
        assert found is not None and (found.origin, found.chat) == ("upload", None)

        at_limit = b"%PDF-1.4\n" + b"x" * (LIMIT - 9)
        document = await client.post("/api/media", headers=AUTH, files={"file": ("order.pdf", at_limit)})
        assert document.status_code == 201 and document.json()["size"] == LIMIT
        assert document.json()["mimetype"] == "application/pdf"

        unauthenticated = await client.post("/api/media", files={"file": ("a.png", png)})
        assert unauthenticated.status_code == 401


async def multipart_stream(sent: list[int], chunk: int, count: int) -> AsyncIterator[bytes]:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    sent.append(len(head))
    yield head
    for _ in range(count):
        sent.append(chunk)
        yield b"x" * chunk


async def test_an_oversized_upload_is_refused_while_it_streams(app_client: ClientFactory) -> None:
    async with app_client(MEDIA_MAX_BYTES=str(LIMIT)) as client:
        too_large = await client.post("/api/media", headers=AUTH, files={"file": ("big.pdf", b"x" * (LIMIT * 3))})
        assert too_large.status_code == 413 and too_large.headers["connection"] == "close"
        assert too_large.json() == {
            "error": "payload_too_large", "detail": f"the upload is larger than MEDIA_MAX_BYTES ({LIMIT} bytes)",
        }  # fmt: skip

        sent: list[int] = []
        headers = {**AUTH, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        chunked = await client.post("/api/media", headers=headers, content=multipart_stream(sent, 1024, 10_000))
        assert chunked.status_code == 413 and f"MEDIA_MAX_BYTES ({LIMIT} bytes)" in chunked.json()["detail"]
        assert sum(sent) <= LIMIT + MULTIPART_FRAMING + 1024  # the chunk that passed the bound was the last one read

        just_over = await client.post("/api/media", headers=AUTH, files={"file": ("a.bin", b"x" * (LIMIT + 1))})
        assert just_over.status_code == 413  # within the framing's room, so refused by the handler
        assert f"MEDIA_MAX_BYTES ({LIMIT} bytes)" in just_over.json()["detail"]


async def test_what_is_not_one_file_is_refused_with_a_reason(client: httpx.AsyncClient) -> None:
    png = samples.png()
    cases: list[tuple[dict[str, object], int, str]] = [
        ({"data": {"caption": "no file"}, "files": {"other": ("", b"")}}, 422, "no file"),
        ({"files": [("file", ("a.png", png)), ("file", ("b.png", png))]}, 422, "2 files"),
        ({"files": {"photo": ("a.png", png)}}, 422, "named 'photo'"),
        ({"files": {"file": ("a.png", b"")}}, 422, "empty"),
        ({"json": {"file": "a.png"}}, 415, "multipart/form-data"),
        ({"content": b"--x\r\nbroken", "headers": {"Content-Type": "multipart/form-data; boundary=x"}}, 422, "no file"),
    ]
    for arguments, status, words in cases:
        headers = {**AUTH, **arguments.pop("headers", {})}  # type: ignore[dict-item]
        answer = await client.post("/api/media", headers=headers, **arguments)  # type: ignore[arg-type]
        assert answer.status_code == status, (arguments, answer.text)
        assert answer.json()["error"] and words in answer.json()["detail"], answer.text
