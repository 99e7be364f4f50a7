"""Incoming media through the real simulator worker: downloaded as it arrives, handed over in a file, stored in the
media table in the message's transaction (the file deleted after the commit), and a file too large never holds the
message back: it is stored and announced with `media.error`."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.db.database import Database
from app.incoming.store import IncomingOptions, MessageStore
from app.media import store as media_store
from app.session.supervisor import Supervisor
from app.whatsapp import samples
from tests.incoming.test_store import SENDER, events_of
from tests.session.conftest import linked_supervisor

LIMIT = 1000  # bytes: the sample PNG and PDF fit, the one-second Ogg does not


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir(mode=0o700)
    return folder


@pytest.fixture
async def store(database: Database, media_dir: Path) -> AsyncIterator[MessageStore]:
    store = MessageStore(database, options=IncomingOptions(media_dir=str(media_dir)))
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
