"""Pure translation between neonize's protobuf objects and the backend's vocabulary: events, JIDs, errors.

Functions here only read attributes of the objects they are given, so this module imports nothing from neonize and
is unit-tested with real neonize protobufs built in the test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.whatsapp.backend import BANNED, DISCONNECTED, LOGGED_OUT, OUTDATED, BackendError

# neonize's ConnectFailureReason enum number -> (WhatsApp's code, name); the proto numbers are NOT the codes.
CONNECT_FAILURES: dict[int, tuple[int, str]] = {
    1: (400, "generic"),
    2: (401, "logged_out"),
    3: (402, "temp_banned"),
    4: (403, "main_device_gone"),
    5: (406, "unknown_logout"),
    6: (405, "client_outdated"),
    7: (409, "bad_user_agent"),
    8: (500, "internal_server_error"),
    9: (501, "experimental"),
    10: (503, "service_unavailable"),
}
LOGGED_OUT_CODES = frozenset({401, 403, 406})
# neonize's TemporaryBan.TempBanReason enum number -> whatsmeow's TempBanReason code.
TEMP_BAN_CODES = {1: 101, 2: 102, 3: 103, 4: 104, 5: 106}
# neonize's Receipt.ReceiptType numbers we report; the rest (sender, retry, *-self, ...) are not about delivery.
RECEIPT_STATUSES = {1: "delivered", 4: "read", 6: "played"}

PHONE_SERVERS = frozenset({"s.whatsapp.net", "hosted"})
# Containers whatsmeow may leave around the real content (it usually unwraps them itself).
WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "editedMessage",
    "lottieStickerMessage",
)
# Content field -> our message type, in priority order.
CONTENT_TYPES = (
    ("conversation", "text"),
    ("extendedTextMessage", "text"),
    ("imageMessage", "image"),
    ("videoMessage", "video"),
    ("ptvMessage", "video"),
    ("audioMessage", "audio"),
    ("documentMessage", "document"),
    ("stickerMessage", "sticker"),
    ("locationMessage", "location"),
    ("liveLocationMessage", "location"),
    ("contactMessage", "contact"),
    ("contactsArrayMessage", "contact"),
)
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
# Signal-protocol and app-state plumbing that whatsmeow also delivers as Message events; nothing for the operator.
INTERNAL_FIELDS = frozenset(
    {
        "senderKeyDistributionMessage",
        "fastRatchetKeySenderKeyDistributionMessage",
        "messageContextInfo",
        "protocolMessage",
    }
)

NOT_PAIRED = "store doesn't contain a device JID"
PERMANENT_ERRORS = (
    "phone number too short",
    "international phone number required",
    "can't send message to unknown server",
    "message recipient must be a user JID",
    "sending to non-status broadcast lists",
    "invalid inline bot ID",
    "no LID found for",
)


def jid_to_str(jid: Any) -> str:
    """'user@server' of a neonize JID, without agent and device parts; '' for an empty JID."""
    if jid is None or not jid.Server:
        return ""
    return f"{jid.User}@{jid.Server}" if jid.User else str(jid.Server)


def phone_of(jid: Any) -> str | None:
    """E.164 ('+<digits>') of a phone-number JID; None for LIDs, groups and anything else."""
    user = str(jid.User) if jid is not None else ""
    if jid is None or jid.Server not in PHONE_SERVERS or not (user.isascii() and user.isdigit()):
        return None
    return "+" + user


def iso_utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def message_time(value: int) -> str | None:
    """Info.Timestamp of a Message event: neonize sends UnixMilli (Receipt and SendResponse carry seconds)."""
    if value <= 0:
        return None
    # Defensive: a seconds value (should neonize change back) would otherwise read as January 1970.
    return iso_utc(value / 1000 if value >= 100_000_000_000 else value)


def unwrap(content: Any) -> Any:
    """The waE2E Message inside ephemeral / view-once / document-with-caption / edited containers."""
    for _ in range(4):  # containers nest at most a couple of levels; bounded so a malformed message cannot loop
        for wrapper in WRAPPERS:
            if content.HasField(wrapper) and getattr(content, wrapper).HasField("message"):
                content = getattr(content, wrapper).message
                break
        else:
            return content
    return content


def _content_type(content: Any) -> tuple[str, Any]:
    for field, kind in CONTENT_TYPES:
        if content.HasField(field):
            return kind, getattr(content, field)
    return "other", None


def _text(content: Any, kind: str, body: Any) -> str | None:
    # Same cases as neonize.utils.extract_text (text, extended text, image/video/document captions), after unwrap.
    if kind == "text":
        text = body if isinstance(body, str) else body.text
    elif kind in ("image", "video", "document"):
        text = body.caption
    else:
        text = ""
    return str(text) or None


def _media(kind: str, body: Any) -> dict[str, Any] | None:
    if kind not in MEDIA_TYPES:
        return None
    return {
        "mimetype": body.mimetype or None,
        "size": int(body.fileLength) if body.fileLength else None,
        "file_name": (body.fileName or None) if kind == "document" else None,
    }


def message_to_dict(ev: Any) -> dict[str, Any]:
    """A neonize Message event (Neonize_pb2.Message) as the normalised MESSAGE event data."""
    info = ev.Info
    source = info.MessageSource
    content = unwrap(ev.Message)
    kind, body = _content_type(content)
    sender = source.Sender
    phone = phone_of(sender)
    if phone is None and source.HasField("SenderAlt"):
        # Senders are often LIDs ('<id>@lid', no phone number); SenderAlt then holds the phone-number JID.
        phone = phone_of(source.SenderAlt)
    return {
        "message_id": info.ID,
        "chat": jid_to_str(source.Chat),
        "from": phone,
        "sender_jid": jid_to_str(sender) or None,
        "push_name": info.Pushname or None,
        "timestamp": message_time(info.Timestamp),
        "is_group": bool(source.IsGroup),
        "is_from_me": bool(source.IsFromMe),
        "type": kind,
        "text": _text(content, kind, body),
        "media": _media(kind, body),
    }


def is_internal_message(ev: Any) -> bool:
    """True for Message events that carry only protocol plumbing (key distribution, revokes, edits, app state)."""
    fields = {field.name for field, _ in unwrap(ev.Message).ListFields()}
    return not fields - INTERNAL_FIELDS


def receipt_to_dict(ev: Any) -> dict[str, Any] | None:
    """A neonize Receipt event as RECEIPT event data, or None for receipt types that are not delivery states."""
    # Receipt types neonize does not map arrive with Type unset, which proto2 would read as DELIVERED (its default).
    if not ev.HasField("Type"):
        return None
    status = RECEIPT_STATUSES.get(ev.Type)
    if status is None:
        return None
    return {
        "chat": jid_to_str(ev.MessageSource.Chat),
        "message_ids": [str(message_id) for message_id in ev.MessageIDs],
        "status": status,
        "timestamp": iso_utc(ev.Timestamp) if ev.Timestamp > 0 else None,
    }


def _failure_reason(ev: Any) -> tuple[int | None, str]:
    if not ev.HasField("Reason") or ev.Reason not in CONNECT_FAILURES:
        return None, "unknown"
    return CONNECT_FAILURES[ev.Reason]


def logged_out_to_dict(ev: Any) -> dict[str, Any]:
    """LoggedOut event -> LOGGED_OUT data; reason is the ConnectFailureReason name, e.g. 'main_device_gone'."""
    return {"reason": _failure_reason(ev)[1]}


def temporary_ban_to_dict(ev: Any, now: datetime) -> dict[str, Any]:
    """TemporaryBan event -> BANNED data. Expire is a duration in seconds counted from when the event arrived."""
    until = iso_utc((now + timedelta(seconds=ev.Expire)).timestamp()) if ev.Expire > 0 else None
    return {"until": until, "code": TEMP_BAN_CODES.get(ev.Code) if ev.HasField("Code") else None}


def connect_failure_to_event(ev: Any) -> tuple[str, dict[str, Any]]:
    """ConnectFailure event -> (event name, data), by WhatsApp's code: 401/403/406 unlinked, 402 ban, 405 outdated."""
    code, name = _failure_reason(ev)
    detail = str(ev.Message) or None
    if code in LOGGED_OUT_CODES:
        return LOGGED_OUT, {"reason": name}
    if code == 402:
        return BANNED, {"until": None, "code": None}
    if code == 405:
        return OUTDATED, {"detail": detail}
    return DISCONNECTED, {"reason": f"connect_failure_{code or 'unknown'}", "detail": detail}


def recipient(to: str) -> tuple[str, str]:
    """(user, server) of a send target: phone digits (a leading '+' allowed) or a full JID 'user@server'."""
    to = to.strip()
    if "@" in to:
        user, server = to.rsplit("@", 1)
        server = "s.whatsapp.net" if server == "c.us" else server  # WhatsApp Web's old name for phone JIDs
        if not user or not server:
            raise BackendError(f"invalid recipient JID {to!r}", permanent=True)
        return user, server
    digits = to.removeprefix("+")
    if not (digits.isascii() and digits.isdigit() and 6 <= len(digits) <= 15):
        raise BackendError(
            f"invalid recipient {to!r}: expected phone digits with country code or a JID", permanent=True
        )
    return digits, "s.whatsapp.net"


def command_error(error: BaseException) -> BackendError:
    """A neonize/whatsmeow error as a BackendError; unknown errors count as transient (retrying is the safe default)."""
    message = str(error) or type(error).__name__
    if NOT_PAIRED in message:
        return BackendError(f"not paired: {message}", permanent=False)
    return BackendError(message, permanent=any(marker in message for marker in PERMANENT_ERRORS))


def short(error: BaseException | None, limit: int = 300) -> str | None:
    if error is None:
        return None
    text = str(error) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_message(e2e: Any, text: str) -> Any:
    """A plain-text waE2E Message. neonize turns a plain str into an extendedTextMessage that mentions every
    "@<digits>" in it; a `conversation` message carries the text as it is, mentioning nobody."""
    return e2e.Message(conversation=text)
