"""The worker's side of media: for incoming media, the size check before a download, the SHA-256 check after it, and
the hand-over to the parent; for media to send, reading the file the parent handed over.

The bytes never travel inside a JSON frame. The worker writes them to a file of its own in the parent's private
folder (made by the web process, mode 0700) and names the file in the item; the parent reads it into the `media`
table in the transaction that stores the message and deletes it after the commit. A file rather than binary chunks on
the channel: the frame protocol and the intake window stay as they are (a numbered item is still one frame), a file
waiting for a Postgres outage to end sits on disk instead of in the parent's memory, and the parent streams each file
into Postgres a piece at a time while storing a batch. The worker holds one file in memory at a time (neonize's
download returns it whole), and never one larger than MEDIA_MAX_BYTES.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

MAX_BYTES = 16 * 1024 * 1024  # MEDIA_MAX_BYTES's default; the worker is told the operator's value
SUFFIX = ".media"
RETRY = "retry"  # set on a media whose download failed for a transient reason: the parent tries again later

# How a failed download is told apart (whatsmeow's error texts): WhatsApp's CDN answered 404 or 410 (its copy has
# expired, after two to four weeks), a 5xx or 408/429 (try later), another status (never better); no status at all is
# a network error or a timeout (try later) unless it names a broken file (a bad MAC, a wrong hash: never better).
STATUS_CODE = re.compile(r"status code (\d{3})")
EXPIRED_CODES = frozenset({404, 410})
PERMANENT_WORDS = ("hmac", "sha256", "decrypt", "mismatch", "no url", "unknown media type", "not supported", "invalid")
EXPIRED, TRANSIENT, PERMANENT = "expired", "transient", "permanent"
NO_REUPLOAD = (
    "asking the sender's phone to upload it again is not available in neonize 0.5.2 (it has no media retry call)"
)


def too_large(size: Any, limit: int) -> str | None:
    """Why a file of `size` bytes (as the message claims, or as downloaded) is not kept, or None."""
    if isinstance(size, int) and size > limit:
        return f"too large: {size} bytes is over MEDIA_MAX_BYTES ({limit} bytes); not downloaded"
    return None


def failed(media: dict[str, Any], error: str) -> dict[str, Any]:
    """The message's media without content, saying why: the message itself still goes out."""
    return {**media, "error": error}


def classify(error: str) -> str:
    """EXPIRED, TRANSIENT or PERMANENT: what a download error (whatsmeow's text) says about trying again."""
    found = STATUS_CODE.search(error)
    if found is not None:
        code = int(found.group(1))
        if code in EXPIRED_CODES:
            return EXPIRED
        return TRANSIENT if code >= 500 or code in (408, 429) else PERMANENT
    lowered = error.lower()
    return PERMANENT if any(word in lowered for word in PERMANENT_WORDS) else TRANSIENT


def download_failed(media: dict[str, Any], error: str) -> dict[str, Any]:
    """The media of a failed download with its `error`: an expired CDN copy says so; a transient failure is marked
    for a retry (`retry`, which the parent takes off before any event)."""
    kind = classify(error)
    if kind == EXPIRED:
        return failed(media, f"expired: the file is no longer on WhatsApp's servers ({error}); {NO_REUPLOAD}")
    if kind == TRANSIENT:
        return {**failed(media, f"download failed: {error}; it is tried again later"), RETRY: True}
    return failed(media, f"download failed: {error}")


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


def handed_over_path(path: str, folder: str | None) -> Path | None:
    """A file one process wrote into `folder` (the web process's private media folder) for the other, or None if it
    is gone or is not directly in that folder: a path from the channel is never trusted further than that. Both ways:
    a downloaded file the parent stores, a file to send the worker reads."""
    if folder is None:
        return None
    real = os.path.realpath(path)
    if os.path.dirname(real) != os.path.realpath(folder) or not os.path.isfile(real):
        return None
    return Path(real)


def read_outgoing(path: str, folder: str | None) -> bytes | None:
    """The bytes of a file the parent wrote into the media folder for a send (`handed_over_path`), or None."""
    real = handed_over_path(path, folder)
    try:
        return real.read_bytes() if real is not None else None
    except OSError:
        return None
