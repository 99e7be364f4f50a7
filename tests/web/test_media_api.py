"""Incoming media end to end: the real app (hypercorn, the simulator worker, Postgres) downloads a customer's photo,
PDF and voice note, and a real local webhook receiver gets `media.url` and fetches the file with no API token. The
link is refused (403) once expired, forged or moved to another file; the token route serves the same bytes; a file
too large still sends its message, with `media.error` naming the limit; a file removed to keep the total under
MEDIA_MAX_TOTAL_BYTES answers 410 Gone with the reason. And the same path with WHATSAPP_BACKEND=replay: neonize's own
protobuf media messages (image, video, voice note and audio file, document, sticker) through the real neonize backend
and its download_any, fetched by the receiver byte for byte; an expired CDN copy gives `media.error`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
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
from tests.whatsapp import corpus
from tests.whatsapp.corpus import replay_line

CUSTOMER = "+6281111111111"
LIMIT = 1000  # MEDIA_MAX_BYTES here: the sample PNG and PDF fit, the one-second Ogg voice note does not
WEBP = samples.webp()


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
    assert set(video["media"]) == {"mimetype", "size", "file_name", "error"}  # as docs/WEBHOOKS.md shows it

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


def replayed_media(directory: Path) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, tuple[str, bytes]]]:
    """neonize's own media messages, each naming a file of the replay's `downloads` by its CDN path, SHA-256 and
    length, plus an image whose CDN copy has expired (its path is not in `downloads`): (replay lines, downloads,
    message id -> (mimetype, bytes))."""
    audio_file = corpus.voice_note()
    audio_file.Message.audioMessage.PTT = False  # a forwarded song or recording, not a voice note
    media = {  # message id -> (waE2E field, event, mimetype, bytes)
        "IMAGE": ("imageMessage", corpus.image(), "image/png", samples.random_png(4000)),
        "VIDEO": ("videoMessage", corpus.video(), "video/mp4", samples.mp4()),
        "VOICE": ("audioMessage", corpus.voice_note(), "audio/ogg; codecs=opus", samples.ogg()),
        "AUDIO": ("audioMessage", audio_file, "audio/ogg; codecs=opus", samples.ogg(frames=100)),
        "DOCUMENT": ("documentMessage", corpus.document_with_caption(), "application/pdf", samples.pdf()),
        "STICKER": ("stickerMessage", corpus.sticker(), "image/webp", WEBP),
    }
    lines, downloads = [replay_line(corpus.connected())], {}
    for message_id, (field, event, mimetype, data) in media.items():
        body = getattr(corpus.unwrap_content(event.Message), field)
        body.directPath = f"/v/t62.7118-24/{message_id}.enc"
        body.fileSHA256, body.fileLength, body.mimetype = hashlib.sha256(data).digest(), len(data), mimetype
        (directory / f"{message_id}.bin").write_bytes(data)
        downloads[body.directPath] = str(directory / f"{message_id}.bin")
        event.Info.ID = message_id
        lines.append(replay_line(event))
    expired = corpus.image()
    expired.Message.imageMessage.directPath = "/v/t62.7118-24/EXPIRED.enc"
    expired.Info.ID = "EXPIRED"
    lines.append(replay_line(expired))
    return lines, downloads, {message_id: (mimetype, data) for message_id, (_, _, mimetype, data) in media.items()}


def test_neonizes_own_media_messages_reach_a_receiver_that_fetches_every_file(
    database_url: str, tmp_path: Path
) -> None:
    lines, downloads, files = replayed_media(tmp_path)
    replay = tmp_path / "replay.jsonl"
    header = {"me": "15550001111:3@s.whatsapp.net", "push_name": "Toko Maju", "downloads": downloads}
    replay.write_text("".join(json.dumps(line) + "\n" for line in [header, *lines]))
    receiver = Receiver().start()
    app = AppProcess(database_url, tmp_path / "app.log")
    app.env.update(
        WHATSAPP_BACKEND="replay", WHATSAPP_REPLAY_FILE=str(replay), WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=SECRET,
        PUBLIC_URL=app.url,
    )  # fmt: skip
    app.start()
    try:
        events = {str(event["message_id"]): event for event in received(receiver, len(files) + 1)}
        for message_id, (mimetype, data) in files.items():
            media = events[message_id]["media"]
            assert isinstance(media, dict) and "error" not in media, (message_id, media)
            assert (media["mimetype"], media["size"]) == (mimetype, len(data)), message_id
            fetched = httpx.get(str(media["url"]), timeout=10)  # as a receiver would: no Authorization header
            assert fetched.status_code == 200 and fetched.content == data, message_id
            assert media["sha256"] == hashlib.sha256(fetched.content).hexdigest() == hashlib.sha256(data).hexdigest()
            assert fetched.headers["content-type"] == mimetype
        kinds = {message_id: events[message_id]["type"] for message_id in files}
        assert kinds == {
            "IMAGE": "image", "VIDEO": "video", "VOICE": "audio", "AUDIO": "audio", "DOCUMENT": "document",
            "STICKER": "sticker",
        }  # fmt: skip
        document = events["DOCUMENT"]
        assert document["text"] == "the report" and isinstance(document["media"], dict)
        assert document["media"]["file_name"] == "invoice.pdf"
        expired = events["EXPIRED"]["media"]
        assert isinstance(expired, dict) and set(expired) == {"mimetype", "size", "file_name", "error"}
        assert str(expired["error"]).startswith(
            "expired: the file is no longer on WhatsApp's servers (download failed with status code 404)"
        )
        assert expired["mimetype"] == "image/jpeg" and expired["size"] == 48213  # what the message said
    finally:
        assert app.terminate() == 0, app.output()
        receiver.close()
