"""A file's content type read from its bytes (libmagic, through python-magic), never from what a client or a server
claims, named as WhatsApp names it; and which types each kind of message may carry."""

from __future__ import annotations

import magic

# libmagic reads at most this much of a file (its own default limit is 1 MiB in file 5.4x; the formats WhatsApp takes
# are known from their first kilobytes, office documents, zip files inside, from their first entries).
SNIFF_BYTES = 1024 * 1024
OCTET_STREAM = "application/octet-stream"
# libmagic's names for the types WhatsApp names otherwise.
ALIASES = {
    "audio/x-m4a": "audio/mp4",
    "audio/x-hx-aac-adts": "audio/aac",
    "audio/x-aac": "audio/aac",
    "audio/x-amr": "audio/amr",
    "audio/x-mp3": "audio/mpeg",
    "audio/x-wav": "audio/wav",
    "video/x-m4v": "video/mp4",
    "application/x-empty": OCTET_STREAM,
}
# What each kind of message may carry, as WhatsApp plays it. A sticker must be WebP (WhatsApp shows no PNG sticker,
# and nothing here converts images); audio is any audio, since a voice note is converted to Ogg Opus
# (app/media/voice.py); a document is any file.
KINDS: dict[str, tuple[str, ...]] = {
    "image": ("image/jpeg", "image/png", "image/webp"),
    "sticker": ("image/webp",),
    "video": ("video/mp4", "video/3gpp"),
    "audio": ("audio/",),  # a prefix: any audio type
    "document": ("",),  # any type
}
WHATSAPP_AUDIO = ("audio/ogg", "audio/mpeg", "audio/mp4", "audio/aac", "audio/amr")  # played without conversion


def sniff(data: bytes) -> str:
    """The content type of `data` as WhatsApp names it: image/jpeg, audio/ogg, application/pdf...;
    application/octet-stream when libmagic knows no better (or the file is empty)."""
    found = magic.from_buffer(data[:SNIFF_BYTES], mime=True) or OCTET_STREAM
    return ALIASES.get(found, found)


def content_type(data: bytes, claimed: str | None) -> str:
    """The type to record for a file: sniffed from its bytes; only when libmagic calls it application/octet-stream
    (a format it does not know) is the claim of the client or server taken, and then only for a document (any type
    WhatsApp carries as media is one libmagic knows, so a claim of one is not believed)."""
    found = sniff(data)
    if found != OCTET_STREAM or not claimed:
        return found
    claim = claimed.split(";", 1)[0].strip().lower()
    if "/" not in claim or claim.startswith(("image/", "video/", "audio/", "text/html", "multipart/")):
        return found
    return claim


def fits(kind: str, mimetype: str) -> str | None:
    """Why a file of `mimetype` cannot be sent as a `kind` message (image, video, audio, document, sticker), or None
    if it can."""
    accepted = KINDS.get(kind)
    if accepted is None:
        return f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}"
    if any(mimetype.startswith(prefix) if prefix.endswith("/") else mimetype == prefix for prefix in accepted) or (
        accepted == ("",)
    ):
        return None
    named = ", ".join(f"{prefix}*" if prefix.endswith("/") else prefix for prefix in accepted)
    return f"the file is {mimetype} (read from its bytes); a {kind} must be {named}"
