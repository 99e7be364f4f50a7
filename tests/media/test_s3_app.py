"""The real app (hypercorn, the simulator worker, Postgres) with MEDIA_STORAGE_URL naming a bucket on a moto server of
its own: incoming files land in the bucket, both media routes stream them back with the same bytes and headers as
from Postgres, the total cap's pass deletes the object and the routes answer 410, a bucket that stops answering makes
them answer 503 (JSON), and the process still exits 0 when it stops (obstore loaded)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.db.database import Database
from app.incoming.retention import Retention
from app.media.storage import S3Storage
from app.settings import MediaBucket
from app.whatsapp import samples
from tests.media.conftest import MotoServer, new_bucket, objects
from tests.processes import AppProcess
from tests.session.test_app_processes import pair
from tests.web.test_media_api import CUSTOMER, received
from tests.webhooks.conftest import SECRET
from tests.webhooks.receiver import Received, Receiver

Gateway = tuple[AppProcess, Receiver, MediaBucket, MotoServer]


@pytest.fixture
def gateway(database_url: str, tmp_path: Path) -> Iterator[Gateway]:
    server = MotoServer(tmp_path).start()  # its own server: the test stops it to see the app answer 503
    endpoint = server.endpoint
    bucket = new_bucket(endpoint)
    receiver = Receiver().start()
    app = AppProcess(database_url, tmp_path / "app.log")
    app.env.update(
        WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=SECRET, PUBLIC_URL=app.url, MEDIA_URL_TTL="3600",
        MEDIA_STORAGE_URL=f"s3://{bucket.bucket}/{bucket.prefix}", AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID=str(bucket.access_key_id), AWS_SECRET_ACCESS_KEY=str(bucket.secret_access_key),
    )  # fmt: skip
    app.start()
    try:
        pair(app)
        yield app, receiver, bucket, server
    finally:
        assert app.terminate() == 0, app.output()[-3000:]
        assert str(bucket.secret_access_key) not in app.output()
        receiver.close()
        server.stop()


async def cap_pass(database_url: str, bucket: MediaBucket, cap: int) -> int:
    """One pass of the retention loop with MEDIA_MAX_TOTAL_BYTES = `cap`, against the app's bucket."""
    database = await Database.open(database_url)
    try:
        return await Retention(database, days=30, media_max_total=cap, storage=S3Storage(bucket)).run_once()
    finally:
        await database.close()


def test_media_in_a_bucket_is_served_by_both_routes_removed_by_the_cap_and_503_while_it_is_down(
    gateway: Gateway, database_url: str
) -> None:
    app, receiver, bucket, server = gateway
    with app.api() as api:
        assert api.post("/api/simulator/incoming", json={"from": CUSTOMER, "type": "image"}).status_code == 202
        document = {"type": "document", "media": {"mimetype": "application/pdf", "file_name": "pesanan 12.pdf"}}
        assert api.post("/api/simulator/incoming", json={"from": CUSTOMER, **document}).status_code == 202
    image, pdf = received(receiver, 2)
    assert isinstance(image["media"], dict) and isinstance(pdf["media"], dict)
    image_id, pdf_id = str(image["media"]["id"]), str(pdf["media"]["id"])
    assert objects(bucket) == {
        f"gateway/media/{image_id}": samples.png(), f"gateway/media/{pdf_id}": samples.pdf()
    }  # fmt: skip

    fetched = httpx.get(str(image["media"]["url"]), timeout=10)  # the signed link, no token
    assert fetched.status_code == 200 and fetched.content == samples.png()
    assert fetched.headers["content-type"] == "image/png" and fetched.headers["cache-control"] == "private"
    assert fetched.headers["x-content-type-options"] == "nosniff" and fetched.headers["content-disposition"] == "inline"
    assert fetched.headers["content-length"] == str(len(samples.png()))
    assert image["media"]["sha256"] == hashlib.sha256(fetched.content).hexdigest()
    with app.api() as api:
        by_token = api.get(f"/api/media/{pdf_id}")
        assert by_token.status_code == 200 and by_token.content == samples.pdf()
        assert by_token.headers["content-type"] == "application/pdf"
        assert by_token.headers["content-disposition"] == (
            "attachment; filename=\"pesanan 12.pdf\"; filename*=UTF-8''pesanan%2012.pdf"
        )
        assert api.get(f"/api/media/{uuid.uuid4()}").status_code == 404

    assert asyncio.run(cap_pass(database_url, bucket, cap=len(samples.pdf()))) == 1  # the older image goes
    assert set(objects(bucket)) == {f"gateway/media/{pdf_id}"}
    gone = httpx.get(str(image["media"]["url"]), timeout=10)
    assert gone.status_code == 410 and "MEDIA_MAX_TOTAL_BYTES" in gone.json()["detail"]

    server.stop()  # the bucket stops answering
    with app.api() as api:
        answers = [httpx.get(str(pdf["media"]["url"]), timeout=30), api.get(f"/api/media/{pdf_id}", timeout=30)]
    for answer in answers:
        assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
        assert answer.json()["error"] == "unavailable" and f"s3://{bucket.bucket}" in answer.json()["detail"]
        assert b"PDF" not in answer.content


def test_a_file_uploaded_into_the_bucket_is_sent_from_it(gateway: Gateway) -> None:
    app, receiver, bucket, _ = gateway
    with app.api() as api:
        uploaded = api.post("/api/media", files={"file": ("invoice 7.pdf", samples.pdf(), "application/pdf")})
        assert uploaded.status_code == 201, uploaded.text
        media_id = uploaded.json()["media_id"]
        assert objects(bucket) == {f"gateway/media/{media_id}": samples.pdf()}  # in the bucket, not in the row
        queued = api.post("/api/messages", json={"to": CUSTOMER, "document": {"media_id": media_id}})
        assert queued.status_code == 202, queued.text
        ours = queued.json()["id"]

        def settled(got: list[Received]) -> bool:
            return any(item.type == "message.status" and item.data["status"] in ("sent", "failed") for item in got)

        [status] = [item.data for item in receiver.wait(settled) if item.type == "message.status"][-1:]
        assert (status["id"], status["status"]) == (ours, "sent"), status
        actions = api.post("/api/simulator/actions").json()["actions"]
    [sent] = [action for action in actions if action["action"] == "send_message"]
    assert sent["content"]["file_name"] == "invoice 7.pdf"
    assert sent["sha256"] == hashlib.sha256(samples.pdf()).hexdigest()  # the worker got the bucket's bytes whole
