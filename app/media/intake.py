"""A file that enters to be sent (uploaded, fetched from a URL, converted to a voice note): its type read from its
bytes, its SHA-256, stored as a `media` row of its own; and MediaRefused, the one error each refusal raises."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from app.db.database import Database
from app.media import storage as storage_module
from app.media import store as media_store
from app.media.storage import MediaStorage

MAX_FILE_NAME = 255


def clean_file_name(name: str | None) -> str | None:
    """A file name a client or a server gave (an upload's part, a URL's Content-Disposition or path), without any
    folder in it and without control characters, at most MAX_FILE_NAME characters; None if nothing is left."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable()).strip()[:MAX_FILE_NAME]
    return cleaned or None


class MediaRefused(Exception):
    """A file that cannot be taken or sent, with the HTTP status the API answers (422: the client's file or URL is
    wrong; 502: the remote server answered an error; 504: it did not answer in time) and a message saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class StoredMedia:
    id: uuid.UUID
    mimetype: str  # read from the bytes (app/media/sniff.py)
    size: int
    sha256: str  # hex
    file_name: str | None


async def keep(
    database: Database, storage: MediaStorage, source: bytes | Path, *, origin: str, mimetype: str,
    file_name: str | None = None,
) -> StoredMedia:  # fmt: skip
    """Store `source` (bytes, or a file on disk, which is never read whole: an upload) where media bytes live, as a
    new file of `origin` ('upload' or 'fetched'), with its `mimetype` read from its bytes (app/media/sniff.py), and
    describe it; an empty file is refused."""
    if origin not in media_store.ORIGINS:
        raise ValueError(f"origin must be one of {', '.join(media_store.ORIGINS)}, not {origin!r}")
    if isinstance(source, bytes) and not source:
        raise MediaRefused(422, "the file is empty")
    placed = await storage.put(uuid.uuid4(), source)
    if placed.size == 0:  # a file on disk is measured as it is put
        await storage.discard(placed)
        raise MediaRefused(422, "the file is empty")
    async with database.connection() as connection:
        await storage_module.save(connection, storage, placed, origin=origin, mimetype=mimetype, file_name=file_name)
    return StoredMedia(placed.id, mimetype, placed.size, placed.sha256, file_name)
