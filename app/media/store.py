"""The `media` table: the bytes of media with what describes them: incoming files, stored by the message store in the
transaction of their message, and files to send (uploaded or fetched from a URL, `save_unattached`); read by the media
routes, and deleted after MEDIA_RETENTION_DAYS; the oldest files'
bytes are removed first while the total is over MEDIA_MAX_TOTAL_BYTES (the row stays, saying why, until its days are
up)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import uuid

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


def read_handed_over(path: str, folder: str | None) -> bytes | None:
    """The bytes of a file a worker wrote into `folder` (the web process's private media folder), or None if it is
    gone or is not directly in that folder: a path from the worker's channel is never trusted further than that."""
    if folder is None:
        return None
    real = os.path.realpath(path)
    if os.path.dirname(real) != os.path.realpath(folder):
        return None
    try:
        with open(real, "rb") as file:
            return file.read()
    except OSError:
        return None


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
