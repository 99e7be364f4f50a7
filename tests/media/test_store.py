"""The media table against real Postgres: a file is stored with what describes it, once per message, read back
whole, and deleted by retention after MEDIA_RETENTION_DAYS (and not before)."""

from __future__ import annotations

import hashlib
import uuid

from app.db.database import Database
from app.incoming.retention import Retention
from app.media import store

CHAT = "6281111111111@s.whatsapp.net"
DATA = bytes(range(256)) * 40


async def save(database: Database, message_id: str, data: bytes = DATA) -> uuid.UUID:
    async with database.transaction() as connection:
        return await store.save(
            connection, chat=CHAT, message_id=message_id, mimetype="application/pdf",
            sha256=hashlib.sha256(data).hexdigest(), file_name="order.pdf", data=data,
        )  # fmt: skip


async def test_a_file_is_stored_once_per_message_and_read_back(database: Database) -> None:
    media_id = await save(database, "A1")
    assert await save(database, "A1", b"redelivered") == media_id  # the first copy stays
    async with database.connection() as connection:
        found = await store.find(connection, media_id)
        assert found is not None
        assert (found.chat, found.message_id, found.mimetype, found.size, found.file_name) == (
            CHAT, "A1", "application/pdf", len(DATA), "order.pdf",
        )  # fmt: skip
        assert found.sha256 == hashlib.sha256(DATA).hexdigest()
        assert await store.content(connection, media_id) == DATA
        assert await store.find(connection, uuid.uuid4()) is None
        assert await store.content(connection, uuid.uuid4()) is None


async def test_retention_deletes_media_after_its_own_days(database: Database) -> None:
    old, new = await save(database, "OLD"), await save(database, "NEW")
    async with database.connection() as connection:
        await connection.execute("UPDATE media SET created_at = now() - interval '10 days' WHERE id = $1", old)
    assert await Retention(database, days=30, media_days=20).run_once() == 0  # 10 days old is kept
    assert await Retention(database, days=30, media_days=5, batch=1).run_once() == 1
    async with database.connection() as connection:
        assert await store.find(connection, old) is None
        assert await store.find(connection, new) is not None
