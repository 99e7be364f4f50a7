"""The `media` table: what describes each stored file and where its bytes are (the `bytes` column, or the key of an
object in MEDIA_STORAGE_URL's bucket: app/media/storage.py). Incoming files are written by the message store in the
transaction of their message; files to send (uploaded, fetched from a URL) with the origin they came by. Read by the
media routes and the sender, deleted after MEDIA_RETENTION_DAYS; the oldest files' bytes are removed first while the
total is over MEDIA_MAX_TOTAL_BYTES (the row stays, saying why, until its days are up)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import struct
import uuid
from collections.abc import AsyncIterator
from typing import BinaryIO

import asyncpg


@dataclasses.dataclass(frozen=True)
class Media:
    id: uuid.UUID
    chat: str | None  # None unless origin is 'incoming'
    message_id: str | None
    mimetype: str
    size: int
    sha256: str
    file_name: str | None
    created_at: dt.datetime
    origin: str  # 'incoming', 'upload' (POST /api/media) or 'fetched' (a send's `url`)


# A row without a message (chat and message_id NULL) never conflicts: NULLs are distinct in the unique key.
INSERT = """
INSERT INTO media (id, origin, chat, message_id, mimetype, size, sha256, file_name, bytes, object_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (chat, message_id) DO UPDATE SET chat = EXCLUDED.chat
RETURNING id"""
ORIGINS = ("upload", "fetched")  # the origins of files that belong to no incoming message


async def save(
    connection: asyncpg.Connection, *, mimetype: str, sha256: str, file_name: str | None, data: bytes | None,
    chat: str | None = None, message_id: str | None = None, origin: str = "incoming", size: int | None = None,
    object_key: str | None = None, media_id: uuid.UUID | None = None,
) -> uuid.UUID:  # fmt: skip
    """Store one file: a message's (`chat` and `message_id`), or one of an `origin` of ORIGINS; its bytes (`data`),
    or the key of the object holding its `size` bytes. A message stored again (redelivered) keeps its first copy: the
    first copy's id (not `media_id`) is returned."""
    assert (data is None) != (object_key is None), "the bytes are in the row or in an object, not both"
    stored_size = len(data) if data is not None else size
    saved: uuid.UUID = await connection.fetchval(
        INSERT, media_id or uuid.uuid4(), origin, chat, message_id, mimetype, stored_size, sha256, file_name, data,
        object_key,
    )  # fmt: skip
    return saved


SELECT = """
SELECT id, chat, message_id, mimetype, size, sha256, file_name, created_at, origin FROM media WHERE id = $1"""
SELECT_BYTES = "SELECT bytes FROM media WHERE id = $1"


async def find(connection: asyncpg.Connection, media_id: uuid.UUID) -> Media | None:
    """What describes one file (not its bytes), or None if there is none (never stored, or deleted)."""
    row = await connection.fetchrow(SELECT, media_id)
    return Media(**dict(row)) if row else None


async def content(connection: asyncpg.Connection, media_id: uuid.UUID) -> bytes | None:
    """The bytes of one file, or None."""
    data: bytes | None = await connection.fetchval(SELECT_BYTES, media_id)
    return data


# A file to delete or remove: its id and its object's key (None: the bytes are in the row).
Victim = tuple[uuid.UUID, str | None]
SELECT_EXPIRED = "SELECT id, object_key FROM media WHERE created_at < $1 ORDER BY created_at LIMIT $2"
DELETE = "DELETE FROM media WHERE id = ANY($1::uuid[])"


async def expired(connection: asyncpg.Connection, older_than: dt.datetime, limit: int) -> list[Victim]:
    """At most `limit` files stored before `older_than`, oldest first."""
    return [(row["id"], row["object_key"]) for row in await connection.fetch(SELECT_EXPIRED, older_than, limit)]


async def delete(connection: asyncpg.Connection, ids: list[uuid.UUID]) -> int:
    """Delete these files' rows (their objects first: app/incoming/retention.py); how many."""
    tag: str = await connection.execute(DELETE, ids)
    return int(tag.rsplit(" ", 1)[-1])


CHUNK = 64 * 1024  # bytes of a handed-over file held at a time while it is hashed or sent to Postgres


def file_sha256(file: BinaryIO) -> tuple[str, int]:
    """(hex SHA-256, size) of an open file, read CHUNK bytes at a time from the start."""
    file.seek(0)
    digest, size = hashlib.sha256(), 0
    while chunk := file.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


SELECT_STORED = "SELECT id FROM media WHERE chat = $1 AND message_id = $2"
COPY_COLUMNS = ["id", "origin", "chat", "message_id", "mimetype", "size", "sha256", "file_name", "bytes"]
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # COPY's binary format: signature, flags, extension
COPY_TRAILER = struct.pack(">h", -1)


async def save_file(
    connection: asyncpg.Connection, *, media_id: uuid.UUID, mimetype: str, sha256: str, file_name: str | None,
    file: BinaryIO, size: int, chat: str | None = None, message_id: str | None = None, origin: str = "incoming",
) -> uuid.UUID:  # fmt: skip
    """Store one file like `save` (a message's: `chat` and `message_id`, or one of an `origin` of ORIGINS), streamed
    from an open file of `size` bytes: COPY (binary) sends it in pieces of CHUNK bytes, so this process never holds
    the whole file. An INSERT's parameters would hold it three times over (the bytes, asyncpg's
    encoded parameters, and its Bind message): 48 MB at MEDIA_MAX_BYTES's default. COPY has no ON CONFLICT: a
    message stored again finds its first copy first. (Another writer storing the same message in between makes this
    transaction fail on the unique key; the batch is tried again and finds it.)"""
    if chat is not None:
        stored: uuid.UUID | None = await connection.fetchval(SELECT_STORED, chat, message_id)
        if stored is not None:
            return stored

    def field(value: bytes | None) -> bytes:
        return struct.pack(">i", -1) if value is None else struct.pack(">i", len(value)) + value

    def text(value: str | None) -> bytes | None:
        return value.encode() if value is not None else None

    row = struct.pack(">h", len(COPY_COLUMNS)) + b"".join(
        field(value)
        for value in (
            media_id.bytes, origin.encode(), text(chat), text(message_id), mimetype.encode(), struct.pack(">q", size),
            sha256.encode(), text(file_name),
        )
    )  # fmt: skip

    async def pieces() -> AsyncIterator[bytes]:
        yield COPY_HEADER + row + struct.pack(">i", size)
        file.seek(0)
        sent = 0
        while sent < size and (chunk := file.read(min(CHUNK, size - sent))):
            sent += len(chunk)
            yield chunk
        if sent != size:  # the file shrank: COPY would fail on the short field anyway, but say why
            raise OSError(f"the media file ended after {sent} of {size} bytes")
        yield COPY_TRAILER

    await connection.copy_to_table("media", source=pieces(), columns=COPY_COLUMNS, format="binary")
    return media_id


SELECT_SERVED = """
SELECT id, mimetype, file_name, size, bytes IS NOT NULL AS in_row, object_key, removed FROM media WHERE id = $1"""


@dataclasses.dataclass(frozen=True)
class Served:
    id: uuid.UUID
    mimetype: str
    file_name: str | None
    size: int
    in_row: bool  # the bytes are in the row (read them with `piece`); False once removed, or in an object
    object_key: str | None  # the object in MEDIA_STORAGE_URL's bucket that holds the bytes
    removed: str | None  # why the bytes are gone


async def served(connection: asyncpg.Connection, media_id: uuid.UUID) -> Served | None:
    """A file for the media routes and readers: where its bytes are, or why they were removed (not the bytes
    themselves); None if there is none."""
    row = await connection.fetchrow(SELECT_SERVED, media_id)
    return Served(**dict(row)) if row else None


# The bytes are stored EXTERNAL (uncompressed, migration 0013), so Postgres reads only the TOAST chunks a piece spans.
SELECT_PIECE = "SELECT substring(bytes FROM $2 FOR $3) FROM media WHERE id = $1"


async def piece(connection: asyncpg.Connection, media_id: uuid.UUID, offset: int, length: int) -> bytes | None:
    """`length` bytes of a file kept in its row, from `offset` (0-based); None if the row or its bytes are gone."""
    data: bytes | None = await connection.fetchval(SELECT_PIECE, media_id, offset + 1, length)
    return data


TOTAL = "SELECT coalesce(sum(size), 0) FROM media WHERE removed IS NULL"
# The oldest kept files whose predecessors (oldest first) add up to less than `excess`: removing them (and no more)
# brings the total to at most the cap.
OVER_CAP = """
WITH kept AS (
    SELECT id, object_key, sum(size) OVER (ORDER BY created_at, id) - size AS before
    FROM media WHERE removed IS NULL
)
SELECT id, object_key FROM kept WHERE before < $1 ORDER BY before LIMIT $2"""
# The object's key stays in the row: the key of every object ever stored is known.
REMOVE = "UPDATE media SET bytes = NULL, removed = $2 WHERE id = ANY($1::uuid[]) AND removed IS NULL"


def over_cap_reason(cap: int) -> str:
    return (
        f"removed: the stored media reached MEDIA_MAX_TOTAL_BYTES ({cap} bytes) and the oldest files are removed first"
    )


async def total(connection: asyncpg.Connection) -> int:
    """The bytes of all stored (not removed) files."""
    found: int = await connection.fetchval(TOTAL)
    return found


async def over_cap(connection: asyncpg.Connection, cap: int, limit: int) -> list[Victim]:
    """At most `limit` files, oldest first, whose removal brings the total to at most `cap` (none if under it)."""
    excess = await total(connection) - cap
    if excess <= 0:
        return []
    return [(row["id"], row["object_key"]) for row in await connection.fetch(OVER_CAP, excess, limit)]


async def remove(connection: asyncpg.Connection, ids: list[uuid.UUID], cap: int) -> int:
    """Mark these files' bytes removed to stay under `cap` (their objects deleted first); how many."""
    tag: str = await connection.execute(REMOVE, ids, over_cap_reason(cap))
    return int(tag.rsplit(" ", 1)[-1])


async def remove_over_cap(connection: asyncpg.Connection, cap: int, limit: int) -> int:
    """Remove the bytes of at most `limit` files kept in Postgres, oldest first, to bring the total to at most `cap`;
    how many. (The retention loop also deletes the objects of files kept in a bucket.)"""
    return await remove(connection, [media_id for media_id, _ in await over_cap(connection, cap, limit)], cap)


FIGURES = """
SELECT count(*) FILTER (WHERE removed IS NULL) AS files,
       coalesce(sum(size) FILTER (WHERE removed IS NULL), 0)::bigint AS bytes,
       count(*) FILTER (WHERE removed IS NOT NULL) AS removed_files
FROM media"""


@dataclasses.dataclass(frozen=True)
class MediaStatus:
    """Stored media: where the bytes are, how many files and bytes are kept, and how many were removed for the cap."""

    storage: str  # "postgres", or MEDIA_STORAGE_URL's s3://bucket/prefix
    files: int
    bytes: int
    max_total_bytes: int  # MEDIA_MAX_TOTAL_BYTES: over it, the oldest files' bytes are removed first
    removed_files: int  # rows whose bytes the cap removed (kept, answering 410, until MEDIA_RETENTION_DAYS)


async def figures(connection: asyncpg.Connection, storage: str, max_total_bytes: int) -> MediaStatus:
    row = await connection.fetchrow(FIGURES)
    return MediaStatus(storage, row["files"], row["bytes"], max_total_bytes, row["removed_files"])
