"""Where the bytes of stored media live: in the `media` table's `bytes` column (Postgres, the default) or in an
S3-compatible bucket (MEDIA_STORAGE_URL), behind one interface, `MediaStorage`, for every caller: `put` a new file's
bytes before its row, `read` them whole, `open` them as a stream, `delete` objects. The row says where each file is.

The S3 client is obstore (the Rust object_store crate with native asyncio), chosen over aiobotocore, boto3 and minio
for its weight and speed (docs/BENCHMARKS.md, "S3 client for MEDIA_STORAGE_URL"): no botocore, the smallest install,
an import of milliseconds, the least memory, the fastest put and get, and streaming both ways (a file is uploaded from
its path in parts and served in chunks, so a large file never sits whole in this process's memory).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import asyncpg

from app.db.database import Database
from app.errors import MediaStoreUnavailable
from app.media import store as media_store

if TYPE_CHECKING:
    from obstore import GetResult
    from obstore.store import S3Store

    from app.settings import MediaBucket

log = logging.getLogger(__name__)

CHUNK = 256 * 1024  # bytes per chunk read from a file or sent to a client
PART = 5 * 1024 * 1024  # multipart upload part: S3's smallest; 2 in flight bound an upload's memory to ~10 MB
PARTS_IN_FLIGHT = 2
# A bucket that does not answer must not hold the message store for long: the message goes out without its file
# (tried again later by app/incoming/media_retry.py) rather than waiting behind a dead endpoint.
CONNECT_TIMEOUT = dt.timedelta(seconds=5)
REQUEST_TIMEOUT = dt.timedelta(seconds=60)  # one request: a whole small file, or one part of a large one
RETRIES = 2
RETRY_TIMEOUT = dt.timedelta(seconds=15)
# After a put failed, the next ones within this many seconds fail at once: a bucket that hangs costs the message store
# one timeout per pause, not one per file (those files are downloaded again later).
PAUSE = 30.0


@dataclasses.dataclass(frozen=True)
class Placed:
    """Where a new file's bytes went: the values of its row's `bytes` and `object_key` columns, and what was put."""

    id: uuid.UUID  # the new file's `media.id`
    bytes: bytes | None  # Postgres, given bytes: the bytes themselves, for the row
    object_key: str | None  # S3: the object's key in the bucket
    size: int
    sha256: str  # hex
    path: Path | None = None  # Postgres, given a file: streamed into the row when it is written (never whole here)


class MediaStorage(Protocol):
    """Where media bytes live. `put` happens before the row is written (an upload is never inside a transaction);
    `read` and `open` take the row (`media_store.served`) of a file whose bytes are in an object (`read_bytes` and
    `open_stored` read the others from their rows); None: the object is gone."""

    async def put(self, media_id: uuid.UUID, source: bytes | Path) -> Placed: ...

    async def discard(self, placed: Placed) -> None:
        """Remove what `put` stored when its row was already there (a redelivered message): never raises."""

    async def read(self, file: media_store.Served) -> bytes | None: ...

    async def open(self, file: media_store.Served) -> AsyncIterator[bytes] | None:
        """The file's bytes in chunks; the store is asked before this returns, so an error comes before any byte."""

    async def delete(self, object_keys: Sequence[str]) -> None: ...


async def _measure(source: bytes | Path) -> tuple[int, str]:
    """Size and SHA-256 of what `put` is given; a file is read in pieces in a thread (never whole in memory)."""
    if isinstance(source, bytes):
        return len(source), hashlib.sha256(source).hexdigest()

    def digest() -> tuple[int, str]:
        with source.open("rb") as file:
            sha256, size = media_store.file_sha256(file)
        return size, sha256

    return await asyncio.to_thread(digest)


class PostgresStorage:
    """The bytes in the row's `bytes` column: today's behaviour and the default (no add-on needed)."""

    async def put(self, media_id: uuid.UUID, source: bytes | Path) -> Placed:
        size, sha256 = await _measure(source)
        if isinstance(source, bytes):
            return Placed(media_id, source, None, size, sha256)
        return Placed(media_id, None, None, size, sha256, path=source)  # on disk until `save` streams it into the row

    async def discard(self, placed: Placed) -> None:
        return None  # the row's own bytes: nothing outside it

    async def read(self, file: media_store.Served) -> bytes | None:
        raise MediaStoreUnavailable("this file is in an S3 bucket and MEDIA_STORAGE_URL is not set")

    async def open(self, file: media_store.Served) -> AsyncIterator[bytes] | None:
        raise MediaStoreUnavailable("this file is in an S3 bucket and MEDIA_STORAGE_URL is not set")

    async def delete(self, object_keys: Sequence[str]) -> None:
        if object_keys:  # MEDIA_STORAGE_URL was unset since they were stored: their rows go, the objects stay
            log.warning("%d media objects cannot be deleted: MEDIA_STORAGE_URL is not set", len(object_keys))


def _describe(error: Exception) -> str:
    """obstore's error, first line only (the rest is a debug dump of the request)."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return first[:300]


class S3Storage:
    """The bytes in an S3-compatible bucket, one object per file, keyed `<prefix>/<media id>`. Files stored in
    Postgres before MEDIA_STORAGE_URL was set are still read from their rows."""

    def __init__(self, bucket: MediaBucket) -> None:
        from obstore.store import S3Store  # imported only when a bucket is configured

        self.bucket = bucket
        config: dict[str, str] = {}
        if bucket.region:
            config["region"] = bucket.region
        if bucket.endpoint_url:
            config["endpoint"] = bucket.endpoint_url
        if bucket.access_key_id and bucket.secret_access_key:
            config["access_key_id"] = bucket.access_key_id
            config["secret_access_key"] = bucket.secret_access_key
        if bucket.session_token:
            config["session_token"] = bucket.session_token
        self._put_failed: tuple[float, MediaStoreUnavailable] | None = None  # when, and why, a put last failed
        plain_http = bool(bucket.endpoint_url and bucket.endpoint_url.startswith("http://"))  # MinIO, moto
        self.store: S3Store = S3Store(
            bucket.bucket,
            config=config,  # type: ignore[arg-type]  # S3Config is a TypedDict of these same keys
            client_options={"allow_http": plain_http, "connect_timeout": CONNECT_TIMEOUT, "timeout": REQUEST_TIMEOUT},
            retry_config={"max_retries": RETRIES, "retry_timeout": RETRY_TIMEOUT},
        )

    def key(self, media_id: uuid.UUID) -> str:
        return f"{self.bucket.prefix}/{media_id}" if self.bucket.prefix else str(media_id)

    def _unavailable(self, error: Exception) -> MediaStoreUnavailable:
        return MediaStoreUnavailable(f"the media store (s3://{self.bucket.bucket}) failed: {_describe(error)}")

    async def put(self, media_id: uuid.UUID, source: bytes | Path) -> Placed:
        import obstore

        if self._put_failed is not None and time.monotonic() - self._put_failed[0] < PAUSE:
            failed = self._put_failed[1]
            raise MediaStoreUnavailable(f"{failed} (not asked again for {PAUSE:.0f} s after a failure)")
        key = self.key(media_id)
        size, sha256 = await _measure(source)
        try:
            await obstore.put_async(
                self.store, key, source, chunk_size=PART, max_concurrency=PARTS_IN_FLIGHT
            )  # a Path is streamed from disk, in parts when large
        except (obstore.exceptions.BaseError, OSError) as error:
            unavailable = self._unavailable(error)
            self._put_failed = (time.monotonic(), unavailable)
            raise unavailable from None
        self._put_failed = None
        return Placed(media_id, None, key, size, sha256)

    async def discard(self, placed: Placed) -> None:
        if placed.object_key is None:
            return
        try:
            await self.delete([placed.object_key])
        except MediaStoreUnavailable as error:
            log.warning("the object of a redelivered file stays in the bucket: %s", error)

    async def _get(self, file: media_store.Served) -> GetResult | None:
        import obstore

        assert file.object_key is not None
        try:
            return await obstore.get_async(self.store, file.object_key)
        except (obstore.exceptions.NotFoundError, FileNotFoundError):  # obstore raises the builtin for a 404
            return None
        except (obstore.exceptions.BaseError, OSError) as error:
            raise self._unavailable(error) from None

    async def read(self, file: media_store.Served) -> bytes | None:
        import obstore

        got = await self._get(file)
        if got is None:
            return None
        try:
            return bytes(await got.bytes_async())
        except (obstore.exceptions.BaseError, OSError) as error:
            raise self._unavailable(error) from None

    async def open(self, file: media_store.Served) -> AsyncIterator[bytes] | None:
        got = await self._get(file)
        if got is None:
            return None

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in got.stream(min_chunk_size=CHUNK):
                yield bytes(chunk)

        return chunks()

    async def delete(self, object_keys: Sequence[str]) -> None:
        """Delete objects (S3's bulk delete, up to 1,000 a request); a key already gone is no error."""
        if not object_keys:
            return
        import obstore

        try:
            await obstore.delete_async(self.store, list(object_keys))
        except (obstore.exceptions.NotFoundError, FileNotFoundError):  # obstore raises the builtin for a 404
            pass
        except (obstore.exceptions.BaseError, OSError) as error:
            raise self._unavailable(error) from None


POSTGRES = PostgresStorage()


def storage_for(bucket: MediaBucket | None) -> MediaStorage:
    """The storage the settings name: S3 with MEDIA_STORAGE_URL, else Postgres."""
    return S3Storage(bucket) if bucket is not None else POSTGRES


async def _row_pieces(database: Database, file: media_store.Served) -> AsyncIterator[bytes]:
    """The bytes of a file kept in its row, CHUNK at a time, each read on a connection of its own (a slow client
    holds no connection of the pool between pieces)."""
    for offset in range(0, file.size, CHUNK):
        async with database.connection() as connection:
            data = await media_store.piece(connection, file.id, offset, CHUNK)
        if data is None:
            raise MediaStoreUnavailable("the file was deleted while it was read")
        yield data


async def open_stored(
    database: Database, storage: MediaStorage, file: media_store.Served
) -> AsyncIterator[bytes] | None:
    """A stored file's bytes in chunks, from its row or its object, never whole in memory; None if they are gone
    (removed, or the object deleted). MediaStoreUnavailable while the bucket does not answer."""
    if file.removed is not None:
        return None
    if file.in_row:
        return _row_pieces(database, file)
    if file.object_key is None:
        return None
    return await storage.open(file)


async def read_bytes(database: Database, storage: MediaStorage, media_id: uuid.UUID) -> bytes | None:
    """A stored file's bytes, whole (a voice note to convert); None if there is none, it was removed or its object
    is gone. MediaStoreUnavailable while the bucket does not answer."""
    async with database.connection() as connection:
        file = await media_store.served(connection, media_id)
        if file is None or file.removed is not None:
            return None
        if file.in_row:
            return await media_store.content(connection, media_id)
    return await storage.read(file) if file.object_key is not None else None


async def save(
    connection: asyncpg.Connection, storage: MediaStorage, placed: Placed, *, mimetype: str, file_name: str | None,
    chat: str | None = None, message_id: str | None = None, origin: str = "incoming",
) -> uuid.UUID:  # fmt: skip
    """Write the row of a file `put` placed (in the caller's transaction): a message's (`chat`, `message_id`), or one
    of an `origin` of media_store.ORIGINS. A message stored again (redelivered) keeps its first file: the copy just
    put is discarded. The row's id. A file Postgres keeps from a path is streamed into its row with COPY
    (media_store.save_file), so this process holds a piece of it at a time, not the file."""
    if placed.path is not None:
        with placed.path.open("rb") as file:
            saved = await media_store.save_file(
                connection, chat=chat, message_id=message_id, origin=origin, mimetype=mimetype,
                sha256=placed.sha256, file_name=file_name, file=file, size=placed.size, media_id=placed.id,
            )  # fmt: skip
    else:
        saved = await media_store.save(
            connection, chat=chat, message_id=message_id, origin=origin, mimetype=mimetype, sha256=placed.sha256,
            file_name=file_name, data=placed.bytes, size=placed.size, object_key=placed.object_key, media_id=placed.id,
        )  # fmt: skip
    if saved != placed.id:
        await storage.discard(placed)
    return saved
