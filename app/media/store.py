"""The `media` table: the bytes of media with what describes them: incoming files, stored by the message store in the
transaction of their message, and files to send (uploaded or fetched from a URL, `save_unattached`); read by the media
routes, and deleted after MEDIA_RETENTION_DAYS; the oldest files'
bytes are removed first while the total is over MEDIA_MAX_TOTAL_BYTES (the row stays, saying why, until its days are
up)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
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


INSERT = """
INSERT INTO media (id, chat, message_id, mimetype, size, sha256, file_name, bytes)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (chat, message_id) DO UPDATE SET chat = EXCLUDED.chat
RETURNING id"""


async def save(
    connection: asyncpg.Connection, *, chat: str, message_id: str, mimetype: str, sha256: str,
    file_name: str | None, data: bytes,
) -> uuid.UUID:  # fmt: skip
    """Store one file of a message; a message stored again (redelivered) keeps its first copy. Its id."""
    media_id: uuid.UUID = await connection.fetchval(
        INSERT, uuid.uuid4(), chat, message_id, mimetype, len(data), sha256, file_name, data
    )
    return media_id


INSERT_UNATTACHED = """
INSERT INTO media (id, origin, mimetype, size, sha256, file_name, bytes) VALUES ($1, $2, $3, $4, $5, $6, $7)"""
ORIGINS = ("upload", "fetched")  # the origins of files that belong to no incoming message


async def save_unattached(
    connection: asyncpg.Connection, *, origin: str, mimetype: str, sha256: str, file_name: str | None, data: bytes
) -> uuid.UUID:
    """Store one file that belongs to no message yet (uploaded, or fetched from a URL to be sent); its new id."""
    if origin not in ORIGINS:
        raise ValueError(f"origin must be one of {', '.join(ORIGINS)}, not {origin!r}")
    media_id = uuid.uuid4()
    await connection.execute(INSERT_UNATTACHED, media_id, origin, mimetype, len(data), sha256, file_name, data)
    return media_id


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


DELETE_EXPIRED = """
DELETE FROM media WHERE id IN (SELECT id FROM media WHERE created_at < $1 ORDER BY created_at LIMIT $2)"""


async def delete_expired(connection: asyncpg.Connection, older_than: dt.datetime, limit: int) -> int:
    """Delete at most `limit` files stored before `older_than`, oldest first; return how many."""
    tag: str = await connection.execute(DELETE_EXPIRED, older_than, limit)
    return int(tag.rsplit(" ", 1)[-1])


def open_handed_over(path: str, folder: str | None) -> BinaryIO | None:
    """A file a worker wrote into `folder` (the web process's private media folder), open for reading, or None if it
    is gone or is not directly in that folder: a path from the worker's channel is never trusted further than that."""
    if folder is None:
        return None
    real = os.path.realpath(path)
    if os.path.dirname(real) != os.path.realpath(folder):
        return None
    try:
        return open(real, "rb")  # the caller closes it
    except OSError:
        return None


SELECT_KEPT = "SELECT id, mimetype, file_name, size, removed FROM media WHERE id = $1"


@dataclasses.dataclass(frozen=True)
class Kept:
    id: uuid.UUID
    mimetype: str
    file_name: str | None
    size: int
    removed: str | None  # why the bytes are gone; None while they are stored


async def kept(connection: asyncpg.Connection, media_id: uuid.UUID) -> Kept | None:
    """What describes one file and whether its bytes are still stored (not its bytes: a file to send is checked when
    it is queued and read when its turn comes); None if there is none."""
    row = await connection.fetchrow(SELECT_KEPT, media_id)
    return Kept(**dict(row)) if row else None


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
COPY_COLUMNS = ["id", "chat", "message_id", "mimetype", "size", "sha256", "file_name", "bytes"]
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # COPY's binary format: signature, flags, extension
COPY_TRAILER = struct.pack(">h", -1)


async def save_file(
    connection: asyncpg.Connection, *, chat: str, message_id: str, mimetype: str, sha256: str,
    file_name: str | None, file: BinaryIO, size: int,
) -> uuid.UUID:  # fmt: skip
    """Store one file of a message like `save`, streamed from an open file of `size` bytes: COPY (binary) sends it in
    pieces of CHUNK bytes, so this process never holds the whole file. An INSERT's parameters would hold it three
    times over (the bytes, asyncpg's encoded parameters, and its Bind message): 48 MB at MEDIA_MAX_BYTES's default.
    COPY has no ON CONFLICT: a message stored again finds its first copy first. (Another writer storing the same
    message in between makes this transaction fail on the unique key; the batch is tried again and finds it.)"""
    stored: uuid.UUID | None = await connection.fetchval(SELECT_STORED, chat, message_id)
    if stored is not None:
        return stored
    media_id = uuid.uuid4()

    def field(value: bytes | None) -> bytes:
        return struct.pack(">i", -1) if value is None else struct.pack(">i", len(value)) + value

    row = struct.pack(">h", len(COPY_COLUMNS)) + b"".join(
        field(value)
        for value in (
            media_id.bytes, chat.encode(), message_id.encode(), mimetype.encode(), struct.pack(">q", size),
            sha256.encode(), file_name.encode() if file_name is not None else None,
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


SELECT_SERVED = "SELECT mimetype, file_name, bytes, removed FROM media WHERE id = $1"


@dataclasses.dataclass(frozen=True)
class Served:
    mimetype: str
    file_name: str | None
    bytes: bytes | None  # None once removed
    removed: str | None  # why the bytes are gone


async def served(connection: asyncpg.Connection, media_id: uuid.UUID) -> Served | None:
    """A file for the media routes (its bytes, or why they were removed); None if there is none."""
    row = await connection.fetchrow(SELECT_SERVED, media_id)
    return Served(**dict(row)) if row else None


TOTAL = "SELECT coalesce(sum(size), 0) FROM media WHERE removed IS NULL"
# The oldest kept files whose predecessors (oldest first) add up to less than `excess`: removing them (and no more)
# brings the total to at most the cap.
REMOVE_OLDEST = """
WITH kept AS (
    SELECT id, sum(size) OVER (ORDER BY created_at, id) - size AS before FROM media WHERE removed IS NULL
)
UPDATE media SET bytes = NULL, removed = $3
WHERE id IN (SELECT id FROM kept WHERE before < $1 ORDER BY before LIMIT $2)"""


def over_cap_reason(cap: int) -> str:
    return (
        f"removed: the stored media reached MEDIA_MAX_TOTAL_BYTES ({cap} bytes) and the oldest files are removed first"
    )


async def total(connection: asyncpg.Connection) -> int:
    """The bytes of all stored (not removed) files."""
    found: int = await connection.fetchval(TOTAL)
    return found


async def remove_over_cap(connection: asyncpg.Connection, cap: int, limit: int) -> int:
    """Remove the bytes of at most `limit` files, oldest first, to bring the total to at most `cap`; how many."""
    excess = await total(connection) - cap
    if excess <= 0:
        return 0
    tag: str = await connection.execute(REMOVE_OLDEST, excess, limit, over_cap_reason(cap))
    return int(tag.rsplit(" ", 1)[-1])
