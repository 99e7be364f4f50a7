"""The messages this account sends, built with neonize's own waE2E classes (passed in as `e2e`, so this module
imports nothing from neonize): a text, a reply's context, and a file after its upload, a location or a contact card,
field for field as neonize's build_*_message make them, but without their ffmpeg and libmagic (not on Heroku)."""

from __future__ import annotations

import base64
from typing import Any

from app.ogg import VOICE_MIMETYPE
from app.whatsapp.backend import BackendError


def text_message(e2e: Any, text: str, mentions: list[str] | None = None) -> Any:
    """A text waE2E Message. neonize turns a plain str into an extendedTextMessage that mentions every "@<digits>"
    in it; a `conversation` message carries the text as it is, mentioning nobody. With `mentions`, an
    extendedTextMessage that mentions exactly those JIDs (contextInfo.mentionedJID, as WhatsApp's apps send it)."""
    if mentions:
        context = e2e.ContextInfo(mentionedJID=mentions)
        return e2e.Message(extendedTextMessage=e2e.ExtendedTextMessage(text=text, contextInfo=context))
    return e2e.Message(conversation=text)


# The waE2E.Message field of each kind of file, and the upload type (MediaType's name) neonize's Upload takes for it.
FILE_FIELDS = {
    "image": ("imageMessage", "MediaImage"),
    "video": ("videoMessage", "MediaVideo"),
    "audio": ("audioMessage", "MediaAudio"),
    "document": ("documentMessage", "MediaDocument"),
    "sticker": ("stickerMessage", "MediaImage"),  # whatsmeow uploads stickers as images
}
THUMBNAIL_PIXELS = 72  # the longest side of the JPEG WhatsApp shows until the image is downloaded


def reply_context(e2e: Any, reply: dict[str, Any] | None, participant: str | None) -> Any:
    """The contextInfo of a reply: the quoted message's id (stanzaID), its sender (participant) and, when the parent
    had it stored, the message itself (quotedMessage: what WhatsApp shows in the quote). None without a reply."""
    if reply is None:
        return None
    context = e2e.ContextInfo(stanzaID=str(reply["id"]))
    if participant:
        context.participant = participant
    if reply.get("quoted"):
        quoted = e2e.Message.FromString(base64.b64decode(str(reply["quoted"])))
        context.quotedMessage.CopyFrom(quoted)
    return context


def image_facts(data: bytes) -> tuple[bytes | None, int | None, int | None]:
    """(a small JPEG thumbnail, width, height) of an image with Pillow (installed with neonize); Nones when it
    cannot be read: the image still goes, without a preview."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
            preview = io.BytesIO()
            image.convert("RGB").save(preview, format="JPEG", quality=60)
    except (UnidentifiedImageError, OSError, ValueError):
        return None, None, None
    return preview.getvalue(), width, height


def outgoing_message(
    e2e: Any, content: dict[str, Any], upload: Any, context: Any, data: bytes | None = None, seconds: int = 0
) -> Any:
    """The waE2E Message for protocol.SEND_MESSAGE's content, built with neonize's own classes as its build_*_message
    do (field for field), without their ffmpeg and libmagic: the type is the one stored, a voice note's `seconds`
    is given, a video has none. `upload` is neonize's UploadResponse for a file; `context` a reply_context."""
    kind = str(content["type"])

    def given(**fields: Any) -> dict[str, Any]:
        found = {name: value for name, value in fields.items() if value is not None}
        if context is not None:
            found["contextInfo"] = context
        return found

    if kind == "text":
        mentions = list(content.get("mentions") or [])
        text_context = e2e.ContextInfo(mentionedJID=mentions)
        if context is not None:
            text_context.MergeFrom(context)
        return e2e.Message(
            extendedTextMessage=e2e.ExtendedTextMessage(text=str(content["text"]), contextInfo=text_context)
        )
    if kind == "location":
        return e2e.Message(
            locationMessage=e2e.LocationMessage(
                **given(
                    degreesLatitude=float(content["latitude"]),
                    degreesLongitude=float(content["longitude"]),
                    name=content.get("name"),
                    address=content.get("address"),
                )
            )
        )
    if kind == "contact":
        return e2e.Message(
            contactMessage=e2e.ContactMessage(**given(displayName=str(content["name"]), vcard=str(content["vcard"])))
        )
    if kind not in FILE_FIELDS:
        raise BackendError(f"unknown message type {kind!r}", permanent=True)
    common = {
        "URL": upload.url,
        "directPath": upload.DirectPath,
        "mediaKey": upload.MediaKey,
        "fileEncSHA256": upload.FileEncSHA256,
        "fileSHA256": upload.FileSHA256,
        "fileLength": upload.FileLength,
        "mimetype": str(content["mimetype"]),
    }
    caption = content.get("caption")
    if kind == "image":
        thumbnail, width, height = image_facts(data or b"")
        body = e2e.ImageMessage(**common, **given(caption=caption, JPEGThumbnail=thumbnail, width=width, height=height))
    elif kind == "video":
        body = e2e.VideoMessage(**common, **given(caption=caption))
    elif kind == "audio":
        ptt = bool(content.get("ptt"))
        if ptt and common["mimetype"] == "audio/ogg":
            common["mimetype"] = VOICE_MIMETYPE
        body = e2e.AudioMessage(**common, **given(PTT=ptt, seconds=seconds))
    elif kind == "document":
        name = content.get("file_name")
        body = e2e.DocumentMessage(**common, **given(caption=caption, fileName=name, title=name))
    else:
        _, width, height = image_facts(data or b"")
        body = e2e.StickerMessage(**common, **given(width=width, height=height, isAnimated=False))
    return e2e.Message(**{FILE_FIELDS[kind][0]: body})
