"""The worker's side of incoming media: the size check before a download, the SHA-256 check after it, and the
hand-over to the parent.

The bytes never travel inside a JSON frame. The worker writes them to a file of its own in the parent's private
folder (made by the web process, mode 0700) and names the file in the item; the parent reads it into the `media`
table in the transaction that stores the message and deletes it after the commit. A file rather than binary chunks on
the channel: the frame protocol and the intake window stay as they are (a numbered item is still one frame), a file
waiting for a Postgres outage to end sits on disk instead of in the parent's memory, and the parent reads one file at
a time while storing a batch. The worker holds one file in memory at a time (neonize's download returns it whole),
and never one larger than MEDIA_MAX_BYTES.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Any

MAX_BYTES = 16 * 1024 * 1024  # MEDIA_MAX_BYTES's default; the worker is told the operator's value
SUFFIX = ".media"


def too_large(size: Any, limit: int) -> str | None:
    """Why a file of `size` bytes (as the message claims, or as downloaded) is not kept, or None."""
    if isinstance(size, int) and size > limit:
        return f"too large: {size} bytes is over MEDIA_MAX_BYTES ({limit} bytes); not downloaded"
    return None


def failed(media: dict[str, Any], error: str) -> dict[str, Any]:
    """The message's media without content, saying why: the message itself still goes out."""
    return {**media, "error": error}


def hand_over(
    media: dict[str, Any], data: bytes, expected_sha256: bytes | None, folder: str | None, limit: int
) -> dict[str, Any]:
    """Check downloaded bytes and write them for the parent: the media with `file` and `sha256`, or with `error`."""
    digest = hashlib.sha256(data)
    if expected_sha256 and digest.digest() != expected_sha256:
        return failed(media, "sha256 mismatch: the downloaded file is not the one the message names; not stored")
    if (problem := too_large(len(data), limit)) is not None:
        return failed(media, problem)
    if folder is None:
        return failed(media, "not stored: the worker was given no folder for media")
    handle, path = tempfile.mkstemp(suffix=SUFFIX, dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
    except OSError as error:
        os.unlink(path)
        return failed(media, f"not stored: {error.strerror or error}")
    return {**media, "size": len(data), "sha256": digest.hexdigest(), "file": path}
