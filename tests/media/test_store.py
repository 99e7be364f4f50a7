"""The media table against real Postgres: a file is stored with what describes it, once per message, read back
whole, and deleted by retention after MEDIA_RETENTION_DAYS (and not before); a handed-over file is streamed in,
never held whole."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
import uuid
from pathlib import Path

import asyncpg
import pytest

from app.db.database import Database
from app.incoming.retention import Retention
from app.media import storage, store
from app.media.intake import keep

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


async def test_a_file_is_streamed_in_without_being_held_whole(database: Database, tmp_path: Path) -> None:
    data = os.urandom(4 * 2**20 + 12345)  # many pieces, the last one short
    (tmp_path / "big.bin").write_bytes(data)
    (tmp_path / "other.bin").write_bytes(b"redelivered")

    async def save_file(name: str, message_id: str) -> uuid.UUID:
        with (tmp_path / name).open("rb") as file:
            sha256, size = store.file_sha256(file)
            async with database.transaction() as connection:
                return await store.save_file(
                    connection, chat=CHAT, message_id=message_id, mimetype="video/mp4", sha256=sha256,
                    file_name=None, file=file, size=size, media_id=uuid.uuid4(),
                )  # fmt: skip

    tracemalloc.start()
    try:
        media_id = await save_file("big.bin", "BIG")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < len(data) // 4, peak  # pieces of store.CHUNK, not the file (an INSERT would hold it 3 times)
    assert await save_file("other.bin", "BIG") == media_id  # redelivered: the first copy stays
    async with database.connection() as connection:
        assert await store.content(connection, media_id) == data
        found = await store.find(connection, media_id)
    assert found is not None and found.size == len(data) and found.sha256 == hashlib.sha256(data).hexdigest()
    assert found.file_name is None and found.mimetype == "video/mp4"


async def test_retention_deletes_media_after_its_own_days(database: Database) -> None:
    old, new = await save(database, "OLD"), await save(database, "NEW")
    async with database.connection() as connection:
        await connection.execute("UPDATE media SET created_at = now() - interval '10 days' WHERE id = $1", old)
    assert await Retention(database, days=30, media_days=20).run_once() == 0  # 10 days old is kept
    assert await Retention(database, days=30, media_days=5, batch=1).run_once() == 1
    async with database.connection() as connection:
        assert await store.find(connection, old) is None
        assert await store.find(connection, new) is not None


async def test_over_the_total_cap_the_oldest_files_bytes_are_removed_first_in_batches(database: Database) -> None:
    ids = [await save(database, f"M{i}") for i in range(5)]  # 5 files of len(DATA) bytes, M0 the oldest
    async with database.connection() as connection:
        for age, media_id in enumerate(reversed(ids)):
            await connection.execute(
                "UPDATE media SET created_at = now() - $1 * interval '1 hour' WHERE id = $2", age, media_id
            )
    cap = 2 * len(DATA) + 1  # room for two files: the three oldest must go
    retention = Retention(database, days=30, media_max_total=cap, batch=2)
    assert await retention.run_once() == 3  # two batches: 2, then 1
    assert await Retention(database, days=30, media_max_total=cap).run_once() == 0  # under the cap: nothing more
    async with database.connection() as connection:
        assert await store.total(connection) == 2 * len(DATA) <= cap
        for media_id in ids[:3]:
            served = await store.served(connection, media_id)
            assert served is not None and not served.in_row
            assert served.removed == store.over_cap_reason(cap) and "MEDIA_MAX_TOTAL_BYTES" in served.removed
            assert await store.content(connection, media_id) is None
            assert await store.find(connection, media_id) is not None  # the row stays, for the 410
        for media_id in ids[3:]:
            assert await store.content(connection, media_id) == DATA
        await connection.execute("UPDATE media SET created_at = now() - interval '10 days' WHERE id = ANY($1)", ids[:3])
    assert await Retention(database, days=30, media_days=5, media_max_total=cap).run_once() == 3  # then deleted
    async with database.connection() as connection:
        assert [await store.find(connection, media_id) is None for media_id in ids] == [True] * 3 + [False] * 2


async def test_a_file_larger_than_the_cap_alone_is_removed_and_no_more(database: Database) -> None:
    older, newer = await save(database, "OLDER", b"x" * 10), await save(database, "NEWER", b"y" * 100)
    async with database.connection() as connection:
        await connection.execute("UPDATE media SET created_at = now() - interval '1 hour' WHERE id = $1", older)
        assert await store.remove_over_cap(connection, 105, 100) == 1  # 110 > 105: the older 10 bytes suffice
        assert await store.content(connection, older) is None and await store.content(connection, newer) is not None
        assert await store.remove_over_cap(connection, 50, 100) == 1  # the newer alone is over: it goes too
        assert await store.total(connection) == 0
        assert await store.remove_over_cap(connection, 50, 100) == 0


async def test_a_file_without_a_message_is_stored_with_its_origin(database: Database) -> None:
    async with database.transaction() as connection:
        first, second = uuid.uuid4(), uuid.uuid4()
        for media_id, origin in ((first, "upload"), (second, "fetched")):
            saved = await store.save(
                connection, media_id=media_id, origin=origin, mimetype="image/png", sha256="ab" * 32, file_name=None,
                data=DATA,
            )  # fmt: skip
            assert saved == media_id
        assert first != second  # no message, so nothing to conflict on
        found = await store.find(connection, first)
        assert found is not None and (found.origin, found.chat, found.message_id) == ("upload", None, None)
        assert await store.content(connection, second) == DATA
    incoming = await save(database, "IN1")
    async with database.connection() as connection:
        found = await store.find(connection, incoming)
        assert found is not None and found.origin == "incoming"
    with pytest.raises(ValueError, match="origin"):  # a file to send is an upload or a fetched one
        await keep(database, storage.POSTGRES, DATA, origin="incoming", mimetype="image/png")
    async with database.connection() as connection:
        with pytest.raises(asyncpg.CheckViolationError):  # an incoming row must name its message
            await connection.execute(
                "INSERT INTO media (id, mimetype, size, sha256, bytes) VALUES ($1, 'a/b', 0, '', '')", uuid.uuid4()
            )


async def test_a_file_in_its_row_is_read_back_a_piece_at_a_time(database: Database) -> None:
    data = os.urandom(2 * storage.CHUNK + 1234)  # three pieces, the last one short
    media_id = await save(database, "PIECES", data)
    async with database.connection() as connection:
        file = await store.served(connection, media_id)
        assert (
            await store.piece(connection, media_id, storage.CHUNK - 2, 4) == data[storage.CHUNK - 2 : storage.CHUNK + 2]
        )
    assert file is not None and file.in_row
    chunks = await storage.open_stored(database, storage.POSTGRES, file)
    assert chunks is not None
    pieces = [chunk async for chunk in chunks]
    assert [len(chunk) for chunk in pieces] == [storage.CHUNK, storage.CHUNK, 1234] and b"".join(pieces) == data
    async with database.connection() as connection:
        await connection.execute("UPDATE media SET bytes = NULL, removed = 'removed: test' WHERE id = $1", media_id)
        gone = await store.served(connection, media_id)
    assert gone is not None and await storage.open_stored(database, storage.POSTGRES, gone) is None
