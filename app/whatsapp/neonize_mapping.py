"""Pure translation between neonize's protobuf objects and the backend's vocabulary: events, JIDs, errors.

Functions here only read attributes of the objects they are given, so this module imports nothing from neonize and
is unit-tested with real neonize protobufs built in the test (tests/whatsapp/corpus.py).

What neonize hands over, as read in its Go source (krypton-byte/neonize goneonize/utils/encoder.go at fcd96cb, the
shipped binary is 840dd69) and in whatsmeow (tulir/whatsmeow at 33cfac5):
- Message events: `EncodeEventTypesMessage` puts whatsmeow's `events.Message.Message` in both `Message` and `Raw`.
  That is the message AFTER whatsmeow's `UnwrapRaw` (types/events/events.go), which strips deviceSentMessage,
  botInvokeMessage, ephemeralMessage, viewOnceMessage(V2, V2Extension), lottieStickerMessage,
  documentWithCaptionMessage and editedMessage, setting the IsEphemeral / IsViewOnce* / IsDocumentWithCaption /
  IsLottieSticker / IsEdit flags instead. whatsmeow's own `RawMessage` (the wrapped original) is not passed on.
  We unwrap the same containers again anyway, so a replayed or future message that still has them maps the same.
- Info.Timestamp is `UnixMilli()`; Receipt.Timestamp and BasicCallMeta.timestamp are `Unix()` (seconds).
- Info.Edit is whatsmeow's `EditAttribute` (types/message.go): "1" message edit, "2" pin, "3" admin edit (newsletters),
  "7" sender revoke, "8" admin revoke. whatsmeow's `BuildEdit` (send.go) sends an edit as
  editedMessage{message{protocolMessage{type MESSAGE_EDIT, key, editedMessage}}}, so after UnwrapRaw an edit arrives as
  a bare protocolMessage MESSAGE_EDIT with IsEdit true and Info.Edit "1". A newsletter edit is different
  (events.NewsletterMessageMeta): the new content itself, under the ORIGINAL message ID, with NewsLetterMeta.EditTS.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from app.whatsapp.backend import (
    BANNED,
    DELETED,
    DISCONNECTED,
    EDITED,
    LOGGED_OUT,
    MESSAGE,
    OUTDATED,
    PAIRING_FAILED,
    POLL_VOTE,
    PUMP_ENDED,
    REACTION,
    STATUS_POST,
    STOPPED,
    BackendError,
)

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
BAD_USER_AGENT_DETAIL = "WhatsApp refuses this client's user agent (409); upgrade the app's neonize"
# neonize's TemporaryBan.TempBanReason enum number -> whatsmeow's TempBanReason code.
TEMP_BAN_CODES = {1: 101, 2: 102, 3: 103, 4: 104, 5: 106}
# neonize's Receipt.ReceiptType numbers we report; the rest (sender, retry, *-self, ...) are not about delivery.
RECEIPT_STATUSES = {1: "delivered", 4: "read", 6: "played"}

PHONE_SERVERS = frozenset({"s.whatsapp.net", "hosted"})
LID_SERVERS = frozenset({"lid", "hosted.lid"})
STATUS_CHAT = "status@broadcast"
NEWSLETTER_SERVER = "newsletter"

# FutureProofMessage containers around the real content (field name -> .message). whatsmeow's UnwrapRaw strips the
# first seven itself (see the module docstring); the rest are containers of the same shape that it leaves in place.
# editedMessage is handled apart: it marks an edit. deviceSentMessage is a DeviceSentMessage whose field is `message`.
WRAPPERS = (
    "deviceSentMessage",
    "botInvokeMessage",
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "lottieStickerMessage",
    "documentWithCaptionMessage",
    "groupMentionedMessage",
    "pollCreationMessageV4",
    "botForwardedMessage",
    "spoilerMessage",
)
EDIT_WRAPPER = "editedMessage"
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
    # Every PollCreationMessage-typed field of waE2E.Message in neonize 0.5.2 (V4 is a FutureProofMessage wrapper).
    ("pollCreationMessage", "poll"),
    ("pollCreationMessageV2", "poll"),
    ("pollCreationMessageV3", "poll"),
    ("pollCreationMessageV5", "poll"),
    ("pollCreationMessageV6", "poll"),
)
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
# Signal-protocol key material and context that ride along with (or alone in) a Message event: not content.
KEY_FIELDS = frozenset({"senderKeyDistributionMessage", "fastRatchetKeySenderKeyDistributionMessage"})
INTERNAL_FIELDS = KEY_FIELDS | {"messageContextInfo", "protocolMessage"}
# ProtocolMessage.Type numbers (waE2E): REVOKE is 0, proto2's default, so an unset type must not read as a delete.
PROTOCOL_REVOKE = 0
PROTOCOL_MESSAGE_EDIT = 14
EDIT_ATTRIBUTES = frozenset({"1", "3"})  # whatsmeow EditAttributeMessageEdit, EditAttributeAdminEdit

NOT_PAIRED = "store doesn't contain a device JID"
# Send failures that retrying the same command can never fix. Substrings of whatsmeow's error texts (neonize passes
# err.Error() through unchanged):
PERMANENT_ERRORS = (
    "phone number too short",  # errors.go ErrPhoneNumberTooShort
    "international phone number required",  # errors.go ErrPhoneNumberIsNotInternational
    "can't send message to unknown server",  # errors.go ErrUnknownServer (send.go adds the server)
    "message recipient must be a user JID",  # errors.go ErrRecipientADJID
    "sending to non-status broadcast lists",  # errors.go ErrBroadcastListUnsupported
    "invalid inline bot ID",  # errors.go ErrInvalidInlineBotID
    "no LID found for",  # send.go: "no LID found for <jid> from server" = the number is not on WhatsApp
    # errors.go ErrNotInGroup; group.go getGroupInfo wraps a 403 to the group query in it, and send.go reports it as
    # "failed to get group members: you're not participating in that group".
    "you're not participating in that group",
    "that group does not exist",  # errors.go ErrGroupNotFound: group.go's answer to a 404 on the group query
    # errors.go IQError texts, "info query returned status <code>: <text>" (ErrIQForbidden, ErrIQNotAuthorized,
    # ErrIQNotFound).
    "forbidden",
    "not-authorized",
    "item-not-found",
)
# send.go: a message the server refuses comes back as "server returned error <code>" (errors.go ErrServerReturnedError
# + the code); 403 = not allowed to post there (e.g. an announcement group, a blocked contact).
PERMANENT_ERROR_PATTERNS = (re.compile(r"\bserver returned error 403\b"),)

# -- neonize's event pump ---------------------------------------------------------------------------------------------
# neonize's Go CallbackFunction (goneonize/main.go) proto.Marshal's every event; on an error it RETURNS that error,
# which ends the pump: Neonize() hands the text back and the Python connect task raises NeonizeError(text), while the
# Go client stays connected. proto2 required fields left nil by neonize's encoders are what fails:
KNOWN_PUMP_FAILURES: tuple[tuple[str, str, str], ...] = (
    # encoder.go EncodeReceipts has no case for whatsmeow's "server-error" receipt type (and any type added later).
    ("Receipt", "Type", "receipt type neonize does not map (server-error, new types)"),
    # encoder.go EncodeTemporaryBan maps 101-104 and 106 only.
    ("TemporaryBan", "Code", "temporary ban code outside 101-104/106"),
    # encoder.go EncodeConnectFailureReason maps 400-406/409/500/501/503; whatsmeow also has 413, 414, 415, 418.
    ("ConnectFailure", "Reason", "connect failure 413/414/415/418 or any new code"),
)
# protobuf-go's text is "proto: required field <full name> not set", where the space after "proto:" is randomly a
# U+00A0 no-break space (its detrand, meant to stop exactly this kind of matching; the shipped .so contains both
# "required field %v not set" and "proto:\u00a0"). Old protobuf versions quoted the name: allow both.
_REQUIRED_NOT_SET = re.compile(r"proto:[\s\u00a0]+required field \"?(?P<name>[\w.]+)\"? not set")

# -- pairing ---------------------------------------------------------------------------------------------------------
# whatsmeow qrchan.go QRChannelItem events neonize passes to its login-status callback (goneonize/main.go).
PAIRING_OK = frozenset({"success", "timeout", "code", "passkey-request", "passkey-confirmation"})
PAIRING_DETAILS = {
    "err-client-outdated": "WhatsApp says this client is outdated; upgrade the app (its neonize / whatsmeow version)",
    "err-scanned-without-multidevice": (
        "The QR code was scanned by a phone without multi-device support; update WhatsApp on the phone "
        "(and enable linked devices / multi-device) and scan again"
    ),
    "err-unexpected-state": "Pairing ended in an unexpected state; start a new pairing round",
}


# -- JIDs and times -------------------------------------------------------------------------------------------------


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


def _seconds_time(value: int) -> str | None:
    return iso_utc(value) if value > 0 else None


# -- message content ------------------------------------------------------------------------------------------------


def _has(message: Any, field: str) -> bool:
    """HasField that tolerates a field this protobuf version does not have."""
    return field in message.DESCRIPTOR.fields_by_name and bool(message.HasField(field))


def _unwrap(content: Any) -> tuple[Any, bool]:
    """(the waE2E Message inside any containers, whether an editedMessage container was among them)."""
    edited = False
    for _ in range(8):  # containers nest a few levels at most; bounded so a malformed message cannot loop
        for wrapper in (*WRAPPERS, EDIT_WRAPPER):
            if _has(content, wrapper) and getattr(content, wrapper).HasField("message"):
                content = getattr(content, wrapper).message
                edited = edited or wrapper == EDIT_WRAPPER
                break
        else:
            break
    return content, edited


def unwrap(content: Any) -> Any:
    """The waE2E Message inside ephemeral / view-once / document-with-caption / edited / device-sent containers."""
    return _unwrap(content)[0]


def _content_type(content: Any) -> tuple[str, Any]:
    for field, kind in CONTENT_TYPES:
        if _has(content, field):
            return kind, getattr(content, field)
    return "other", None


def _text(kind: str, body: Any) -> str | None:
    # Same cases as neonize.utils.extract_text (text, extended text, image/video/document captions), plus poll names.
    if kind == "text":
        text = body if isinstance(body, str) else body.text
    elif kind in ("image", "video", "document"):
        text = body.caption
    elif kind == "poll":
        text = body.name
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


# The media fields whatsmeow's DownloadAny looks at; a round video (ptvMessage) is a VideoMessage it downloads as one.
DOWNLOAD_FIELDS = {"ptvMessage": "videoMessage"}


def media_content(ev: Any) -> tuple[Any, Any] | None:
    """(a waE2E Message holding only the media, for neonize's download_any; the media body with its fileSHA256) of a
    Message event, or None if it carries no media. Containers (ephemeral, view-once, ...) are taken off first."""
    return media_of(ev.Message)


def media_of(whole: Any) -> tuple[Any, Any] | None:
    """media_content of a waE2E Message (a stored message's `raw`, parsed again for a later download)."""
    content = unwrap(whole)
    for field, kind in CONTENT_TYPES:
        if kind in MEDIA_TYPES and _has(content, field):
            body = getattr(content, field)
            message = type(content)()
            getattr(message, DOWNLOAD_FIELDS.get(field, field)).CopyFrom(body)
            return message, body
    return None


def _poll(kind: str, body: Any) -> dict[str, Any] | None:
    if kind != "poll":
        return None
    return {
        "question": str(body.name),
        "options": [str(option.optionName) for option in body.options],
        "selectable_count": int(body.selectableOptionsCount),
    }


def _has_content(content: Any) -> bool:
    return any(field.name not in INTERNAL_FIELDS for field, _ in content.ListFields())


def _sender(source: Any) -> tuple[str | None, str | None]:
    """(phone '+digits' or None, sender JID or None) of a MessageSource."""
    sender = source.Sender
    phone = phone_of(sender)
    if phone is None and source.HasField("SenderAlt"):
        # Senders are often LIDs ('<id>@lid', no phone number); SenderAlt then holds the phone-number JID.
        phone = phone_of(source.SenderAlt)
    return phone, jid_to_str(sender) or None


def _common(info: Any, raw: str | None) -> dict[str, Any]:
    source = info.MessageSource
    phone, sender_jid = _sender(source)
    return {
        "message_id": str(info.ID),
        "chat": jid_to_str(source.Chat),
        "from": phone,
        "sender_jid": sender_jid,
        "push_name": info.Pushname or None,
        "timestamp": message_time(info.Timestamp),
        "is_group": bool(source.IsGroup),
        "is_from_me": bool(source.IsFromMe),
        "raw": raw,
    }


def _raw(ev: Any) -> str:
    """base64 of the serialized waE2E.Message exactly as neonize handed it over (media keys included)."""
    message = ev.Message if ev.HasField("Message") or not _has(ev, "Raw") else ev.Raw
    return base64.b64encode(message.SerializeToString()).decode("ascii")


def _is_broadcast_post(chat: Any) -> bool:
    return jid_to_str(chat) == STATUS_CHAT or chat.Server == NEWSLETTER_SERVER


def _message_fields(content: Any) -> dict[str, Any]:
    kind, body = _content_type(content)
    return {
        "type": kind,
        "text": _text(kind, body),
        "media": _media(kind, body),
        "poll": _poll(kind, body),
    }


def _edited_text(edited: Any) -> str | None:
    kind, body = _content_type(unwrap(edited))
    return _text(kind, body)


def _is_edit(ev: Any, wrapped_edit: bool) -> bool:
    info = ev.Info
    newsletter_edit = _has(ev, "NewsLetterMeta") and ev.NewsLetterMeta.EditTS > 0
    return wrapped_edit or bool(ev.IsEdit) or str(info.Edit) in EDIT_ATTRIBUTES or newsletter_edit


def incoming_message(ev: Any) -> tuple[str, dict[str, Any]] | None:
    """A neonize Message event (Neonize_pb2.Message) as (event name, data), or None for protocol plumbing.

    MESSAGE / STATUS_POST carry type, text, media, poll; EDITED target_id + text; DELETED target_id; REACTION
    target_id + emoji; POLL_VOTE target_id + selected_hashes [] + selected None (the backend decrypts the vote).
    Every event also carries message_id, chat, from, sender_jid, push_name, timestamp, is_group, is_from_me, raw."""
    content, wrapped_edit = _unwrap(ev.Message)
    common = _common(ev.Info, _raw(ev))

    if _has(content, "protocolMessage"):
        protocol = content.protocolMessage
        target = str(protocol.key.ID) if protocol.HasField("key") else ""
        # An unset type reads as 0 = REVOKE under proto2: only an explicit type counts.
        kind = protocol.type if protocol.HasField("type") else None
        if kind == PROTOCOL_MESSAGE_EDIT and target:
            return EDITED, {**common, "target_id": target, "text": _edited_text(protocol.editedMessage)}
        if kind == PROTOCOL_REVOKE and target:
            return DELETED, {**common, "target_id": target}
        # Ephemeral settings, history sync notifications, app state key shares, peer data operations, ...
        if not _has_content(_without(content, "protocolMessage")):
            return None

    if _has(content, "reactionMessage"):
        reaction = content.reactionMessage
        if not reaction.key.ID:
            return None
        return REACTION, {**common, "target_id": str(reaction.key.ID), "emoji": str(reaction.text)}
    if _has(content, "encReactionMessage"):
        # A reaction encrypted with the target's message secret (community comments); never a MESSAGE.
        return None

    if _has(content, "pollUpdateMessage"):
        update = content.pollUpdateMessage
        target = str(update.pollCreationMessageKey.ID)
        if not target:
            return None
        return POLL_VOTE, {**common, "target_id": target, "selected_hashes": [], "selected": None}

    if not _has_content(content):
        return None  # sender key distribution, message context only, empty

    if _is_edit(ev, wrapped_edit):
        # An edit without a protocolMessage: a newsletter edit (new content under the original ID, whatsmeow
        # events.NewsletterMessageMeta) or an edit container holding content directly. Never a second MESSAGE.
        return EDITED, {**common, "target_id": str(ev.Info.ID), "text": _text(*_content_type(content))}

    name = STATUS_POST if _is_broadcast_post(ev.Info.MessageSource.Chat) else MESSAGE
    return name, {**common, **_message_fields(content)}


def _without(content: Any, field: str) -> Any:
    rest = type(content)()
    rest.CopyFrom(content)
    rest.ClearField(field)
    return rest


def needs_phone_lookup(data: dict[str, Any]) -> str | None:
    """The '<id>@lid' JID whose phone number the backend should look up (get_pn_from_lid), or None."""
    sender = data.get("sender_jid")
    if data.get("from") is None and isinstance(sender, str) and sender.rsplit("@", 1)[-1] in LID_SERVERS:
        return sender
    return None


def poll_vote_selection(vote_message: Any) -> list[str]:
    """Hex SHA-256 hashes of the options chosen in a decrypted waE2E.PollVoteMessage (client.decrypt_poll_vote)."""
    return [bytes(option).hex() for option in vote_message.selectedOptions]


def undecryptable_to_dict(ev: Any) -> dict[str, Any]:
    """A neonize UndecryptableMessage event (code 44) as UNDECRYPTABLE data: the message's common fields, raw None.

    neonize's proto has Info, IsUnavailable and DecryptFailMode (whatsmeow's UnavailableType is not passed on)."""
    return _common(ev.Info, None)


# -- calls, receipts ----------------------------------------------------------------------------------------------


def call_offer_to_dict(ev: Any) -> dict[str, Any]:
    """A neonize CallOffer (36) or CallOfferNotice (40) event as CALL data.

    whatsmeow call.go: `from` is the stanza's sender, callCreator the caller (a LID when hidden, callCreatorAlt then
    its phone JID), timestamp the stanza's "t" (neonize encodes it with Unix(): seconds). CallOfferNotice carries
    media "audio"/"video"; a CallOffer only has the raw <offer> node, whose <video> child marks a video call
    (WhatsApp's stanza layout, not parsed by whatsmeow: NOT VERIFIED against a live call)."""
    meta = ev.basicCallMeta
    caller = getattr(meta, "from")  # a Python keyword
    creator = meta.callCreator if meta.callCreator.Server else caller
    phone = phone_of(creator) or phone_of(meta.callCreatorAlt) or phone_of(caller)
    if "media" in ev.DESCRIPTOR.fields_by_name:
        video = str(ev.media) == "video"
    else:
        video = any(node.Tag == "video" for node in ev.data.Nodes)
    return {
        "call_id": str(meta.callID),
        "chat": jid_to_str(caller),
        "from": phone,
        "sender_jid": jid_to_str(creator) or None,
        "timestamp": _seconds_time(meta.timestamp),
        "video": video,
    }


def receipt_to_dict(ev: Any) -> dict[str, Any] | None:
    """A neonize Receipt event as RECEIPT data, or None for receipts that are not about our messages' delivery.

    whatsmeow receipt.go parseReceipt takes its MessageSource from message.go parseMessageSource: IsFromMe is true
    when the receipt's `from` (or, in groups, `participant`) is our own account (phone or LID user): that is one of
    our own devices, e.g. the owner reading an incoming chat on the phone. Those say nothing about our sends."""
    if ev.MessageSource.IsFromMe:
        return None
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
        "timestamp": _seconds_time(ev.Timestamp),
    }


# -- session events ------------------------------------------------------------------------------------------------


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
    """ConnectFailure event -> (event name, data), by WhatsApp's code: 401/403/406 unlinked, 402 ban, 405 outdated,
    409 stopped for good (the user agent is refused: reconnecting cannot help)."""
    code, name = _failure_reason(ev)
    detail = str(ev.Message) or None
    if code in LOGGED_OUT_CODES:
        return LOGGED_OUT, {"reason": name}
    if code == 402:
        return BANNED, {"until": None, "code": None}
    if code == 405:
        return OUTDATED, {"detail": detail}
    if code == 409:
        return STOPPED, {"reason": "bad_user_agent", "detail": BAD_USER_AGENT_DETAIL}
    return DISCONNECTED, {"reason": f"connect_failure_{code or 'unknown'}", "detail": detail}


def pump_failure(text: str) -> tuple[str, dict[str, Any]] | None:
    """The error that ended neonize's connect task as (PUMP_ENDED, {detail, message, field}) when it is an event
    neonize could not encode (see KNOWN_PUMP_FAILURES), else None."""
    match = _REQUIRED_NOT_SET.search(text)
    if match is None:
        return None
    *path, field = match["name"].split(".")
    message = path[-1] if path else ""
    return PUMP_ENDED, {"detail": short_text(text), "message": message, "field": field}


def pairing_failure(status: str) -> tuple[str, dict[str, Any]] | None:
    """A pairing round's outcome as neonize reports it ("success", "timeout", "err-client-outdated", ...):
    (PAIRING_FAILED, {error, detail}) for a failure, None for success, timeout and progress events."""
    status = status.strip()
    if status in PAIRING_OK or not (status == "error" or status.startswith("err")):
        return None
    detail = PAIRING_DETAILS.get(status, f"Pairing failed ({status}); start a new pairing round and try again")
    return PAIRING_FAILED, {"error": status, "detail": detail}


def pair_status_to_event(ev: Any) -> tuple[str, dict[str, Any]] | None:
    """A neonize PairStatus event: (PAIRING_FAILED, ...) for whatsmeow's PairError (Status ERROR / Error set), which
    neonize encodes with Error = err.Error() (encoder.go EncodePairError); None for PairSuccess."""
    error = str(ev.Error) if ev.HasField("Error") else ""
    failed = error or (ev.HasField("Status") and ev.Status == ev.ERROR)
    if not failed:
        return None
    detail = f"Finishing the link with the phone failed: {error or 'unknown error'}; start a new pairing round"
    return PAIRING_FAILED, {"error": "pair-error", "detail": detail}


# -- commands -------------------------------------------------------------------------------------------------------

RECIPIENT_SERVERS = {"s.whatsapp.net": "s.whatsapp.net", "c.us": "s.whatsapp.net", "lid": "lid", "g.us": "g.us"}
_GROUP_USER = re.compile(r"\d+(-\d+)?")  # new groups are digits; old ones '<creator phone>-<unix time>'


def _phone_digits(value: str) -> bool:
    return value.isascii() and value.isdigit() and 6 <= len(value) <= 15


def recipient(to: str) -> tuple[str, str]:
    """(user, server) of a send target: phone digits (a leading '+' allowed), or a JID on s.whatsapp.net, c.us (an
    old name for it), lid or g.us. Anything else is refused for good."""
    to = to.strip()
    if "@" in to:
        user, server = to.rsplit("@", 1)
        target = RECIPIENT_SERVERS.get(server.lower())
        if target is None:
            raise BackendError(
                f"invalid recipient {to!r}: only phone numbers and @s.whatsapp.net, @c.us, @lid or @g.us JIDs",
                permanent=True,
            )
        valid = {
            "s.whatsapp.net": _phone_digits(user),
            "lid": user.isascii() and user.isdigit(),
            "g.us": user.isascii() and _GROUP_USER.fullmatch(user) is not None,
        }[target]
        if not valid:
            raise BackendError(f"invalid recipient JID {to!r}", permanent=True)
        return user, target
    digits = to.removeprefix("+")
    if not _phone_digits(digits):
        raise BackendError(
            f"invalid recipient {to!r}: expected phone digits with country code or a JID", permanent=True
        )
    return digits, "s.whatsapp.net"


def command_error(error: BaseException) -> BackendError:
    """A neonize/whatsmeow error as a BackendError; unknown errors count as transient (retrying is the safe default)."""
    message = str(error) or type(error).__name__
    if NOT_PAIRED in message:
        return BackendError(f"not paired: {message}", permanent=False)
    permanent = any(marker in message for marker in PERMANENT_ERRORS) or any(
        pattern.search(message) for pattern in PERMANENT_ERROR_PATTERNS
    )
    return BackendError(message, permanent=permanent)


def short_text(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short(error: BaseException | None, limit: int = 300) -> str | None:
    if error is None:
        return None
    return short_text(str(error) or type(error).__name__, limit)


def group_to_dict(info: Any, *, with_participants: bool) -> dict[str, Any]:
    """A neonize GroupInfo as the API shows a group: {jid, name, topic, owner, created_at, announce,
    participant_count} and, with `with_participants`, participants [{jid, phone, lid, is_admin, is_super_admin}]."""
    participants = list(info.Participants)
    group: dict[str, Any] = {
        "jid": jid_to_str(info.JID),
        "name": info.GroupName.Name or None,
        "topic": info.GroupTopic.Topic or None,
        "owner": jid_to_str(info.OwnerJID) or None,
        "created_at": iso_utc(info.GroupCreated) if info.GroupCreated > 0 else None,
        "announce": bool(info.GroupAnnounce.IsAnnounce),  # only admins may write
        "participant_count": len(participants),
    }
    if with_participants:
        group["participants"] = [
            {
                "jid": jid_to_str(member.JID),
                # In a LID group the member's JID is a LID; whatsmeow gives the phone number beside it when it has one.
                "phone": phone_of(member.PhoneNumber) if member.HasField("PhoneNumber") else phone_of(member.JID),
                "lid": jid_to_str(member.LID) or None,
                "is_admin": bool(member.IsAdmin or member.IsSuperAdmin),
                "is_super_admin": bool(member.IsSuperAdmin),
            }
            for member in participants
        ]
    return group
