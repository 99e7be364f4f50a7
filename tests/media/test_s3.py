"""Media bytes in an S3-compatible bucket (MEDIA_STORAGE_URL) against a real moto server on loopback: incoming media
put there by the message store before its transaction (the row names the object), read whole and streamed, a
redelivered message's second copy removed, retention and the total cap deleting objects in batches, and a bucket that
does not answer costing the message nothing (`media.error`, then the retry loop stores the file once it answers)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.db.database import Database
from app.errors import MediaStoreUnavailable
from app.incoming.media_retry import MediaRetrier
from app.incoming.retention import Retention
from app.incoming.store import IncomingOptions, MessageStore
from app.media import storage, store
from app.media.storage import S3Storage
from app.session.supervisor import Supervisor
from app.settings import MediaBucket
from app.whatsapp import backend, protocol, samples
from tests.incoming.test_store import SENDER, SENDER_CHAT, events_of
from tests.media.conftest import objects
from tests.processes import free_port
from tests.session.conftest import linked_supervisor

DATA = bytes(range(256)) * 40


@pytest.fixture
async def s3_store(database: Database, media_dir: Path, bucket: MediaBucket) -> AsyncIterator[MessageStore]:
    options = IncomingOptions(media_dir=str(media_dir), media_retry_after=0.0, storage=S3Storage(bucket))
    message_store = MessageStore(database, options=options)
    message_store.start()
    yield message_store
    await message_store.close(5.0)


@pytest.fixture
async def session(
    database: Database, database_url: str, s3_store: MessageStore, media_dir: Path
) -> AsyncIterator[Supervisor]:
    options = {"incoming": s3_store.take, "media_dir": str(media_dir), "media_max_bytes": 1000}
    async with linked_supervisor(database, database_url, **options) as supervisor:
        yield supervisor


async def save(database: Database, bucket: S3Storage, message_id: str, data: bytes = DATA) -> uuid.UUID:
    placed = await bucket.put(uuid.uuid4(), data)
    async with database.transaction() as connection:
        return await storage.save(
            connection, bucket, placed, chat=SENDER_CHAT, message_id=message_id, mimetype="application/pdf",
            file_name="order.pdf",
        )  # fmt: skip


async def served(database: Database, media_id: uuid.UUID) -> store.Served:
    async with database.connection() as connection:
        found = await store.served(connection, media_id)
    assert found is not None
    return found


async def streamed(database: Database, bucket: S3Storage, file: store.Served) -> bytes:
    chunks = await storage.open_stored(database, bucket, file)
    assert chunks is not None
    return b"".join([chunk async for chunk in chunks])


async def test_a_file_is_put_read_whole_and_streamed_and_deleted(
    database: Database, bucket: MediaBucket, tmp_path: Path
) -> None:
    s3 = S3Storage(bucket)
    media_id = await save(database, s3, "A1")
    key = f"gateway/media/{media_id}"
    assert objects(bucket) == {key: DATA}
    file = await served(database, media_id)
    assert (file.object_key, file.in_row, file.size, file.removed) == (key, False, len(DATA), None)
    assert await storage.read_bytes(database, s3, media_id) == DATA
    assert await streamed(database, s3, file) == DATA

    large = tmp_path / "large.bin"  # from a file: hashed and uploaded in parts, never read whole
    large.write_bytes(os.urandom(6 * 1024 * 1024 + 17))
    placed = await s3.put(uuid.uuid4(), large)
    assert placed.sha256 == hashlib.sha256(large.read_bytes()).hexdigest() and placed.size == large.stat().st_size
    assert objects(bucket)[f"gateway/media/{placed.id}"] == large.read_bytes()

    async with database.transaction() as connection:  # a file stored in Postgres before the bucket was configured
        older = await store.save(
            connection, chat=SENDER_CHAT, message_id="OLD", mimetype="image/png", sha256="0" * 64, file_name=None,
            data=b"in postgres",
        )  # fmt: skip
    assert await storage.read_bytes(database, s3, older) == b"in postgres"
    assert await streamed(database, s3, await served(database, older)) == b"in postgres"

    await s3.delete([key, placed.object_key or ""])
    assert objects(bucket) == {}
    assert await storage.read_bytes(database, s3, media_id) is None  # the row is there, its object is not
    assert await s3.open(file) is None
    assert await storage.read_bytes(database, s3, uuid.uuid4()) is None


async def test_incoming_media_goes_to_the_bucket_and_its_row_names_the_object(
    session: Supervisor, database: Database, s3_store: MessageStore, bucket: MediaBucket, media_dir: Path
) -> None:
    await session.simulate("incoming", {"from": SENDER, "type": "image", "text": "the receipt"})
    await session.simulate("incoming", {"from": SENDER, "type": "document", "media": {"file_name": "order.pdf"}})
    image, pdf = await events_of(database, "message.received", 2)
    await s3_store.drained()
    stored = objects(bucket)
    for event, expected in ((image, samples.png()), (pdf, samples.pdf())):
        media = event["media"]
        assert "error" not in media and media["size"] == len(expected)
        assert media["sha256"] == hashlib.sha256(expected).hexdigest()
        assert stored[f"gateway/media/{media['id']}"] == expected
        file = await served(database, uuid.UUID(media["id"]))
        assert not file.in_row and file.object_key == f"gateway/media/{media['id']}"
    assert len(stored) == 2 and os.listdir(media_dir) == []  # stored: the hand-over files are gone


def handed_over(media_dir: Path, message_id: str, data: bytes) -> dict[str, object]:
    """An incoming document as a worker hands it over: its bytes in a file of the private folder."""
    path = media_dir / f"{uuid.uuid4()}.media"
    path.write_bytes(data)
    media = {"file": str(path), "mimetype": "application/pdf", "size": len(data)}
    return {
        "message_id": message_id, "chat": SENDER_CHAT, "from": SENDER, "type": "document", "text": None,
        "media": {**media, "sha256": hashlib.sha256(data).hexdigest()},
    }  # fmt: skip


async def test_a_redelivered_message_keeps_its_first_file_and_removes_the_second_object(
    database: Database, s3_store: MessageStore, bucket: MediaBucket, media_dir: Path
) -> None:
    s3_store.take(backend.MESSAGE, handed_over(media_dir, "TWICE", b"first copy"))
    await s3_store.drained()
    s3_store.take(backend.MESSAGE, handed_over(media_dir, "TWICE", b"first copy"))  # WhatsApp sent it again
    await s3_store.drained()
    [event] = await events_of(database, "message.received", 1)
    assert objects(bucket) == {f"gateway/media/{event['media']['id']}": b"first copy"}
    assert os.listdir(media_dir) == [] and s3_store.placed == {}
    async with database.connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM media") == 1


async def test_retention_and_the_total_cap_delete_objects_in_batches(database: Database, bucket: MediaBucket) -> None:
    s3 = S3Storage(bucket)
    ids = [await save(database, s3, f"M{i}") for i in range(5)]  # M0 the oldest
    async with database.connection() as connection:
        for age, media_id in enumerate(reversed(ids)):
            await connection.execute(
                "UPDATE media SET created_at = now() - $1 * interval '1 hour' WHERE id = $2", age, media_id
            )
    cap = 2 * len(DATA) + 1  # room for two files: the three oldest go
    assert await Retention(database, days=30, media_max_total=cap, batch=2, storage=s3).run_once() == 3
    assert set(objects(bucket)) == {f"gateway/media/{media_id}" for media_id in ids[3:]}
    for media_id in ids[:3]:
        file = await served(database, media_id)  # the row stays, for the 410, and still names its object
        assert file.removed == store.over_cap_reason(cap) and file.object_key == f"gateway/media/{media_id}"
    async with database.connection() as connection:
        assert await store.total(connection) == 2 * len(DATA)
        await connection.execute("UPDATE media SET created_at = now() - interval '10 days'")
    assert await Retention(database, days=30, media_days=5, batch=2, storage=s3).run_once() == 5
    assert objects(bucket) == {}
    async with database.connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM media") == 0


def unreachable() -> MediaBucket:
    """A bucket whose endpoint nothing listens on (a free loopback port): an S3 outage."""
    return MediaBucket(
        bucket="media-down", prefix="", region="us-east-1", endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id="test-access-key", secret_access_key="test-secret-access-key",
    )  # fmt: skip


async def test_a_bucket_that_does_not_answer_costs_the_message_nothing_and_the_file_comes_later(
    database: Database, database_url: str, media_dir: Path, bucket: MediaBucket
) -> None:
    down = IncomingOptions(media_dir=str(media_dir), media_retry_after=0.0, storage=S3Storage(unreachable()))
    message_store = MessageStore(database, options=down)
    message_store.start()
    options = {"incoming": message_store.take, "media_dir": str(media_dir), "media_max_bytes": 1000}
    try:
        async with linked_supervisor(database, database_url, **options) as supervisor:
            await supervisor.simulate("incoming", {"from": SENDER, "type": "image", "text": "the receipt"})
            await supervisor.simulate("incoming", {"from": SENDER, "type": "document"})
            message, document = await events_of(database, "message.received", 2)
            await message_store.drained()
            assert message["text"] == "the receipt" and "id" not in message["media"]
            error = message["media"]["error"]
            assert error.startswith("not stored: the media store (s3://media-down) failed: ")
            assert "retry" not in message["media"]  # the store's own mark, never in an event
            assert error.endswith("; it is tried again later") and "test-secret-access-key" not in error
            # the next file within the pause is not sent to the bucket that just failed: no second timeout
            assert document["media"]["error"] == error.replace(
                "; it is tried again later", " (not asked again for 30 s after a failure); it is tried again later"
            )
            async with database.connection() as connection:
                assert await connection.fetchval("SELECT count(*) FROM media") == 0
                assert await connection.fetchval("SELECT count(*) FROM media_downloads WHERE tries = 1") == 2

            async def download(args: dict[str, object]) -> dict[str, object]:
                return await supervisor.command(protocol.DOWNLOAD_MEDIA, args)

            back = IncomingOptions(media_dir=str(media_dir), storage=S3Storage(bucket))  # the bucket answers again
            assert await MediaRetrier(database, download, back).run_once() == 2
            ready = await events_of(database, "message.media_ready", 2)
            by_message = {event["message_id"]: event["media"]["id"] for event in ready}
            assert objects(bucket) == {
                f"gateway/media/{by_message[message['message_id']]}": samples.png(),
                f"gateway/media/{by_message[document['message_id']]}": samples.pdf(),
            }
            assert os.listdir(media_dir) == []
    finally:
        await message_store.close(5.0)


async def test_reading_from_a_bucket_that_does_not_answer_says_so(database: Database, bucket: MediaBucket) -> None:
    media_id = await save(database, S3Storage(bucket), "DOWN")
    file = await served(database, media_id)
    down = S3Storage(MediaBucket(**{**vars(unreachable()), "bucket": bucket.bucket}))
    with pytest.raises(MediaStoreUnavailable, match=f"the media store \\(s3://{bucket.bucket}\\) failed"):
        await down.open(file)
    with pytest.raises(MediaStoreUnavailable):
        await storage.read_bytes(database, down, media_id)
    with pytest.raises(MediaStoreUnavailable, match="MEDIA_STORAGE_URL is not set"):  # a bucket no longer configured
        await storage.POSTGRES.read(file)
