"""Incoming media end to end: the real app (hypercorn, the simulator worker, Postgres) downloads a customer's photo,
PDF and voice note, and a real local webhook receiver gets `media.url` and fetches the file with no API token. The
link is refused (403) once expired, forged or moved to another file; the token route serves the same bytes; a file
too large still sends its message, with `media.error` naming the limit; a file removed to keep the total under
MEDIA_MAX_TOTAL_BYTES answers 410 Gone with the reason."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from app.db.database import Database
from app.incoming.retention import Retention
from app.media.links import MediaLinks
from app.whatsapp import samples
from tests.processes import BASE_ENV, AppProcess
from tests.session.test_app_processes import pair
from tests.webhooks.conftest import SECRET, signed_correctly
from tests.webhooks.receiver import Received, Receiver

CUSTOMER = "+6281111111111"
LIMIT = 1000  # MEDIA_MAX_BYTES here: the sample PNG and PDF fit, the one-second Ogg voice note does not


@pytest.fixture
def gateway(database_url: str, tmp_path: Path) -> Iterator[tuple[AppProcess, Receiver]]:
    receiver = Receiver().start()
    app = AppProcess(database_url, tmp_path / "app.log")
    app.env.update(
        WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=SECRET, PUBLIC_URL=app.url, MEDIA_MAX_BYTES=str(LIMIT),
        MEDIA_URL_TTL="3600",
    )  # fmt: skip
    app.start()
    try:
        pair(app)
        yield app, receiver
    finally:
        assert app.terminate() == 0
        receiver.close()


def received(receiver: Receiver, count: int) -> list[dict[str, object]]:
    def arrived(got: list[Received]) -> bool:
        return len([item for item in got if item.type == "message.received"]) >= count

    got = [item for item in receiver.wait(arrived) if item.type == "message.received"]
    assert all(signed_correctly(item) for item in got)
    return [item.data for item in got]


def test_a_receiver_fetches_media_url_without_the_token(gateway: tuple[AppProcess, Receiver]) -> None:
    app, receiver = gateway
    with app.api() as api:
        for body in (
            {"type": "image", "text": "the transfer receipt"},
            {"type": "document", "media": {"mimetype": "application/pdf", "file_name": "pesanan 12.pdf"}},
            {"type": "audio"},
            {"type": "video", "media": {"size": 50_000_000}},
        ):
            assert api.post("/api/simulator/incoming", json={"from": CUSTOMER, **body}).status_code == 202
    image, document, voice, video = received(receiver, 4)

    assert isinstance(image["media"], dict) and image["text"] == "the transfer receipt"
    url = str(image["media"]["url"])
    assert url.startswith(f"{app.url}/media/{image['media']['id']}?expires=") and "base64" not in str(image)
    fetched = httpx.get(url, timeout=10)  # as n8n would: no Authorization header
    assert fetched.status_code == 200 and fetched.content == samples.png()
    assert fetched.headers["content-type"] == "image/png" and fetched.headers["cache-control"] == "private"
    assert fetched.headers["x-content-type-options"] == "nosniff"
    assert fetched.headers["content-disposition"] == "inline"  # an image may show in a browser
    assert image["media"]["sha256"] == hashlib.sha256(fetched.content).hexdigest()
    assert image["media"]["size"] == len(fetched.content)

    assert isinstance(document["media"], dict)
    pdf = httpx.get(str(document["media"]["url"]), timeout=10)
    assert pdf.status_code == 200 and pdf.content == samples.pdf()
    assert pdf.headers["content-disposition"] == (
        "attachment; filename=\"pesanan 12.pdf\"; filename*=UTF-8''pesanan%2012.pdf"
    )

    assert isinstance(voice["media"], dict) and isinstance(video["media"], dict)
    assert f"over MEDIA_MAX_BYTES ({LIMIT} bytes)" in str(voice["media"]["error"]) and "url" not in voice["media"]
    assert str(video["media"]["error"]).startswith("too large: 50000000 bytes is over MEDIA_MAX_BYTES")

    with app.api() as api:  # the token route serves the same bytes; without the token, nothing
        assert api.get(f"/api/media/{image['media']['id']}").content == samples.png()
        assert api.get(f"/api/media/{uuid.uuid4()}").status_code == 404
    assert httpx.get(f"{app.url}/api/media/{image['media']['id']}", timeout=10).status_code == 401


def test_expired_forged_and_moved_links_are_refused(gateway: tuple[AppProcess, Receiver]) -> None:
    app, receiver = gateway
    with app.api() as api:
        assert api.post("/api/simulator/incoming", json={"from": CUSTOMER, "type": "sticker"}).status_code == 202
        assert api.post("/api/simulator/incoming", json={"from": CUSTOMER, "type": "image"}).status_code == 202
    sticker, image = received(receiver, 2)
    assert isinstance(sticker["media"], dict) and isinstance(image["media"], dict)
    media_id, other_id = str(sticker["media"]["id"]), str(image["media"]["id"])
    url = urlsplit(str(sticker["media"]["url"]))
    assert httpx.get(url.geturl(), timeout=10).status_code == 200

    links = MediaLinks(BASE_ENV["SECRET_KEY"], ttl=60, public_url=app.url)  # the app's own key, an hour ago
    expired = links.url(media_id, now=time.time() - 3600)
    forged = MediaLinks("not-the-secret-key", ttl=3600, public_url=app.url).url(media_id)
    moved = f"{app.url}/media/{other_id}?{url.query}"  # a valid signature, for another file
    tampered = url.geturl().replace("expires=", "expires=9")  # a later expiry under the same signature
    for refused in (expired, forged, moved, tampered, f"{app.url}/media/{media_id}", f"{app.url}/media/not-a-uuid"):
        answer = httpx.get(refused, timeout=10)
        assert answer.status_code == 403, refused
        assert answer.json()["error"] and b"PNG" not in answer.content
    unknown = str(uuid.uuid4())
    assert httpx.get(links.url(unknown), timeout=10).status_code == 404  # signed, but no such file


async def retention_pass(database_url: str, cap: int) -> int:
    """One pass of the retention loop with MEDIA_MAX_TOTAL_BYTES = `cap`, as the app's own hourly loop runs it."""
    database = await Database.open(database_url)
    try:
        return await Retention(database, days=30, media_max_total=cap).run_once()
    finally:
        await database.close()


def test_a_file_removed_over_the_total_cap_answers_410_with_the_reason(
    gateway: tuple[AppProcess, Receiver], database_url: str
) -> None:
    app, receiver = gateway
    with app.api() as api:
        assert api.post("/api/simulator/incoming", json={"from": CUSTOMER, "type": "image"}).status_code == 202
        assert api.post("/api/simulator/incoming", json={"from": CUSTOMER, "type": "document"}).status_code == 202
    image, document = received(receiver, 2)
    assert isinstance(image["media"], dict) and isinstance(document["media"], dict)
    assert httpx.get(str(image["media"]["url"]), timeout=10).status_code == 200
    assert asyncio.run(retention_pass(database_url, cap=len(samples.pdf()))) == 1  # the older image goes
    with app.api() as api:
        by_token = api.get(f"/api/media/{image['media']['id']}")
    for answer in (httpx.get(str(image["media"]["url"]), timeout=10), by_token):
        assert answer.status_code == 410 and b"PNG" not in answer.content
        assert answer.json()["error"] == "gone" and "MEDIA_MAX_TOTAL_BYTES" in answer.json()["detail"]
    assert httpx.get(str(document["media"]["url"]), timeout=10).content == samples.pdf()  # the newer stays
