"""The `media` table: what describes each stored file and where its bytes are (the `bytes` column, or the key of an
object in MEDIA_STORAGE_URL's bucket: app/media/storage.py), written by the message store in the transaction of
their message, read by the media routes, and deleted after MEDIA_RETENTION_DAYS; the oldest files' bytes are removed
first while the total is over MEDIA_MAX_TOTAL_BYTES (the row stays, saying why, until its days are up)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import uuid
from pathlib import Path

import asyncpg


@dataclasses.dataclass(frozen=True)
class Media:
    id: uuid.UUID
    chat: str
    message_id: str
    mimetype: str
    size: int
    sha256: str
    file_name: str | None
    created_at: dt.datetime


INSERT = """
INSERT INTO media (id, chat, message_id, mimetype, size, sha256, file_name, bytes, object_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (chat, message_id) DO UPDATE SET chat = EXCLUDED.chat
RETURNING id"""


async def save(
    connection: asyncpg.Connection, *, chat: str, message_id: str, mimetype: str, sha256: str,
    file_name: str | None, data: bytes | None, size: int | None = None, object_key: str | None = None,
    media_id: uuid.UUID | None = None,
) -> uuid.UUID:  # fmt: skip
    """Store one file of a message: its bytes (`data`), or the key of the object holding its `size` bytes. A message
    stored again (redelivered) keeps its first copy: the first copy's id (not `media_id`) is returned."""
    assert (data is None) != (object_key is None), "the bytes are in the row or in an object, not both"
    stored_size = len(data) if data is not None else size
    saved: uuid.UUID = await connection.fetchval(
        INSERT, media_id or uuid.uuid4(), chat, message_id, mimetype, stored_size, sha256, file_name, data, object_key
    )
    return saved


SELECT = "SELECT id, chat, message_id, mimetype, size, sha256, file_name, created_at FROM media WHERE id = $1"
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


def handed_over_path(path: str, folder: str | None) -> Path | None:
    """A file a worker wrote into `folder` (the web process's private media folder), or None if it is gone or is not
    directly in that folder: a path from the worker's channel is never trusted further than that."""
    if folder is None:
        return None
    real = os.path.realpath(path)
    if os.path.dirname(real) != os.path.realpath(folder) or not os.path.isfile(real):
        return None
    return Path(real)


def read_handed_over(path: str, folder: str | None) -> bytes | None:
    """The bytes of a file a worker handed over (`handed_over_path`), or None."""
    real = handed_over_path(path, folder)
    if real is None:
        return None
    try:
        with open(real, "rb") as file:
            return file.read()
    except OSError:
        return None


SELECT_SERVED = "SELECT mimetype, file_name, size, bytes, object_key, removed FROM media WHERE id = $1"


@dataclasses.dataclass(frozen=True)
class Served:
    mimetype: str
    file_name: str | None
    size: int
    bytes: bytes | None  # None once removed, or when the bytes are in an object
    object_key: str | None  # the object in MEDIA_STORAGE_URL's bucket that holds the bytes
    removed: str | None  # why the bytes are gone


async def served(connection: asyncpg.Connection, media_id: uuid.UUID) -> Served | None:
    """A file for the media routes and readers (its bytes or its object, or why they were removed); None if there is
    none."""
    row = await connection.fetchrow(SELECT_SERVED, media_id)
    return Served(**dict(row)) if row else None


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
