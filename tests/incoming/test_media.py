"""Incoming media through the real simulator worker: downloaded as it arrives, handed over in a file, stored in the
media table in the message's transaction (the file deleted after the commit), and a file too large never holds the
message back: it is stored and announced with `media.error`. A download that failed for a transient reason is tried
again by the retry loop through the worker and announced with `message.media_ready`; an expired CDN copy is not."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.db.database import Database
from app.incoming.media_retry import MediaRetrier
from app.incoming.store import IncomingOptions, MessageStore
from app.media import store as media_store
from app.session.supervisor import SessionError, Supervisor
from app.whatsapp import protocol, samples
from app.whatsapp.media import NO_REUPLOAD, classify
from tests.incoming.test_store import SENDER, events_of
from tests.session.conftest import linked_supervisor

LIMIT = 1000  # bytes: the sample PNG and PDF fit, the one-second Ogg does not


@pytest.fixture
async def store(database: Database, media_dir: Path) -> AsyncIterator[MessageStore]:
    options = IncomingOptions(media_dir=str(media_dir), media_retry_after=0.0)  # retries due at once
    store = MessageStore(database, options=options)
    store.start()
    yield store
    await store.close(5.0)


@pytest.fixture
async def session(
    database: Database, database_url: str, store: MessageStore, media_dir: Path
) -> AsyncIterator[Supervisor]:
    options = {"incoming": store.take, "media_dir": str(media_dir), "media_max_bytes": LIMIT}
    async with linked_supervisor(database, database_url, **options) as supervisor:
        yield supervisor


async def test_media_is_downloaded_stored_with_its_message_and_the_file_removed(
    session: Supervisor, database: Database, store: MessageStore, media_dir: Path
) -> None:
    await session.simulate("incoming", {"from": SENDER, "type": "image", "text": "the receipt"})
    document = {"mimetype": "application/pdf", "file_name": "order-1234.pdf"}
    await session.simulate("incoming", {"from": SENDER, "type": "document", "media": document})
    image, pdf = await events_of(database, "message.received", 2)
    await store.drained()
    assert image["text"] == "the receipt" and image["media"]["mimetype"] == "image/png"
    assert pdf["media"]["file_name"] == "order-1234.pdf"
    async with database.connection() as connection:
        for event, expected in ((image, samples.png()), (pdf, samples.pdf())):
            media_id = uuid.UUID(event["media"]["id"])
            assert await media_store.content(connection, media_id) == expected
            found = await media_store.find(connection, media_id)
            assert found is not None and found.message_id == event["message_id"] and found.chat == event["chat"]
            assert event["media"]["sha256"] == found.sha256 == hashlib.sha256(expected).hexdigest()
            assert event["media"]["size"] == len(expected) and "error" not in event["media"]
    assert os.listdir(media_dir) == []  # stored: the hand-over files are gone


async def test_too_large_media_is_not_downloaded_and_the_message_still_goes(
    session: Supervisor, database: Database, store: MessageStore, media_dir: Path
) -> None:
    await session.simulate("incoming", {"from": SENDER, "type": "video", "media": {"size": 50_000_000}})
    await session.simulate("incoming", {"from": SENDER, "type": "audio"})  # claims nothing; 1 s of Ogg is > LIMIT
    await session.simulate("incoming", {"from": SENDER, "text": "after them"})
    video, audio, text = await events_of(database, "message.received", 3)
    await store.drained()
    assert video["media"]["error"].startswith("too large: 50000000 bytes is over MEDIA_MAX_BYTES (1000 bytes)")
    assert "MEDIA_MAX_BYTES (1000 bytes)" in audio["media"]["error"] and audio["media"]["mimetype"].startswith("audio")
    assert "id" not in video["media"] and "id" not in audio["media"] and text["text"] == "after them"
    async with database.connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM media") == 0
    assert os.listdir(media_dir) == []


def test_download_errors_are_told_apart_as_whatsmeow_words_them() -> None:
    for text, kind in (
        ("download failed with status code 404", "expired"),
        ("download failed with status code 410", "expired"),
        ("download failed with status code 503", "transient"),
        ("download failed with status code 403", "permanent"),
        ("failed to download media from last host: context deadline exceeded", "transient"),
        ("read tcp 10.0.0.2:4431: connection reset by peer", "transient"),
        ("invalid media hmac", "permanent"),
        ("the worker was stopping", "transient"),
    ):
        assert classify(text) == kind, text


def retrier(session: Supervisor, database: Database, store: MessageStore, retries: int = 5) -> MediaRetrier:
    async def download(args: dict[str, object]) -> dict[str, object]:
        return await session.command(protocol.DOWNLOAD_MEDIA, args)

    return MediaRetrier(database, download, store.options, retries=retries)


async def pending(database: Database) -> list[tuple[str, int]]:
    async with database.connection() as connection:
        rows = await connection.fetch("SELECT message_id, tries FROM media_downloads ORDER BY message_id")
    return [(row["message_id"], row["tries"]) for row in rows]


async def test_an_image_of_a_given_size_is_random_pixels_of_that_size(
    session: Supervisor, database: Database, store: MessageStore
) -> None:
    await session.simulate("incoming", {"from": SENDER, "type": "image", "media": {"size": 900}})
    [image] = await events_of(database, "message.received", 1)
    async with database.connection() as connection:
        data = await media_store.content(connection, uuid.UUID(image["media"]["id"]))
    assert data is not None and len(data) == image["media"]["size"] == 900 and data.startswith(b"\x89PNG\r\n\x1a\n")
    assert data != samples.png() and image["media"]["sha256"] == hashlib.sha256(data).hexdigest()


async def test_a_transient_failure_is_retried_through_the_worker_and_announced_when_ready(
    session: Supervisor, database: Database, store: MessageStore, media_dir: Path
) -> None:
    failure = {"name": "download", "count": 2, "error": "download failed with status code 503"}
    assert (await session.simulate("action_failures", failure))["failing"] == 2
    await session.simulate("incoming", {"from": SENDER, "type": "image", "text": "the receipt"})
    [message] = await events_of(database, "message.received", 1)
    await store.drained()
    assert message["text"] == "the receipt" and "id" not in message["media"] and "retry" not in message["media"]
    assert message["media"]["error"] == (
        "download failed: download failed with status code 503; it is tried again later"
    )
    assert await pending(database) == [(message["message_id"], 1)]

    loop = retrier(session, database, store)
    assert await loop.run_once() == 1  # the second failure: tried again later
    assert await pending(database) == [(message["message_id"], 2)] and loop.ready == 0
    assert await loop.run_once() == 1  # now the CDN answers
    [ready] = await events_of(database, "message.media_ready", 1)
    assert await pending(database) == [] and loop.ready == 1 and loop.given_up == 0
    assert set(ready) == {"message_id", "chat", "media"} and ready["message_id"] == message["message_id"]
    assert ready["chat"] == message["chat"]
    media = ready["media"]
    assert set(media) == {"id", "mimetype", "size", "sha256", "file_name", "url"} and media["mimetype"] == "image/png"
    async with database.connection() as connection:
        assert await media_store.content(connection, uuid.UUID(media["id"])) == samples.png()
        stored = await connection.fetchval(
            "SELECT media->>'id' FROM incoming_messages WHERE message_id = $1", message["message_id"]
        )
    assert stored == media["id"] and media["sha256"] == hashlib.sha256(samples.png()).hexdigest()
    assert media["size"] == len(samples.png()) and os.listdir(media_dir) == []
    assert await loop.run_once() == 0  # nothing left to try


async def test_retries_are_bounded_and_an_expired_copy_is_not_retried(
    session: Supervisor, database: Database, store: MessageStore
) -> None:
    await session.simulate("action_failures", {"name": "download", "error": "download failed with status code 410"})
    await session.simulate("incoming", {"from": SENDER, "type": "document"})
    [expired] = await events_of(database, "message.received", 1)
    await store.drained()
    assert expired["media"]["error"] == (
        "expired: the file is no longer on WhatsApp's servers (download failed with status code 410); " + NO_REUPLOAD
    )
    assert "neonize 0.5.2" in expired["media"]["error"] and await pending(database) == []

    failure = {"name": "download", "count": 10, "error": "failed to download media: i/o timeout"}
    await session.simulate("action_failures", failure)
    await session.simulate("incoming", {"from": SENDER, "type": "sticker"})
    _, flaky = await events_of(database, "message.received", 2)
    await store.drained()
    loop = retrier(session, database, store, retries=2)
    assert await loop.run_once() == 1 and await pending(database) == [(flaky["message_id"], 2)]
    assert await loop.run_once() == 1 and await pending(database) == []  # two retries, both failed: given up
    assert loop.given_up == 1 and loop.ready == 0
    async with database.connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM outbox_events WHERE type = 'message.media_ready'") == 0
        assert await connection.fetchval("SELECT count(*) FROM media") == 0


async def test_no_try_is_counted_while_the_session_cannot_download(
    session: Supervisor, database: Database, store: MessageStore
) -> None:
    await session.simulate("action_failures", {"name": "download", "error": "download failed with status code 502"})
    await session.simulate("incoming", {"from": SENDER, "type": "image"})
    [message] = await events_of(database, "message.received", 1)
    await store.drained()

    async def refused(args: dict[str, object]) -> dict[str, object]:
        raise SessionError("WhatsApp is not connected (the session is reconnecting); try again later")

    loop = MediaRetrier(database, refused, store.options)
    assert await loop.run_once() == 0 and loop.blocked and "not connected" in str(loop.last_error)
    assert await pending(database) == [(message["message_id"], 1)]  # still due, nothing counted
    assert await retrier(session, database, store).run_once() == 1 and await pending(database) == []
