"""What an incoming event says at the webhook: its event type and `data`, built from the worker's normalised item.

docs/WEBHOOKS.md documents each type; the store (app/incoming/store.py) writes what this module builds.
"""

from __future__ import annotations

import hashlib
from typing import Any

from app.webhooks import outbox
from app.whatsapp import backend as events

MESSAGE_TYPES = ("text", "image", "video", "audio", "document", "sticker", "location", "contact", "poll", "other")

# Backend event name -> the webhook event type it becomes (a MESSAGE typed on the phone becomes message.from_me).
EVENT_TYPES = {
    events.MESSAGE: outbox.MESSAGE_RECEIVED,
    events.STATUS_POST: outbox.STATUS_POSTED,
    events.EDITED: outbox.MESSAGE_EDITED,
    events.DELETED: outbox.MESSAGE_DELETED,
    events.REACTION: outbox.MESSAGE_REACTION,
    events.POLL_VOTE: outbox.MESSAGE_POLL_VOTE,
    events.UNDECRYPTABLE: outbox.MESSAGE_UNDECRYPTABLE,
    events.CALL: outbox.CALL_RECEIVED,
}
# The `type` column of rows that are not messages (a message's own type goes there otherwise).
ROW_TYPES = {
    events.EDITED: "edit",
    events.DELETED: "delete",
    events.REACTION: "reaction",
    events.POLL_VOTE: "poll_vote",
    events.UNDECRYPTABLE: "undecryptable",
}
# Rows whose `poll` column holds a poll's definition (a vote's row holds the vote there).
POLL_SOURCES = (outbox.MESSAGE_RECEIVED, outbox.MESSAGE_FROM_ME, outbox.STATUS_POSTED)


def string_or_none(value: Any) -> str | None:
    """The value if it is a string (items come from a worker, and JSON can hold anything)."""
    return value if isinstance(value, str) else None


def event_media(media: Any) -> dict[str, Any] | None:
    """What a webhook says of a message's media: what describes it, the stored file's id and SHA-256, or why there
    is no file (`error`); never WhatsApp's media keys or CDN path, nor the bytes."""
    if not isinstance(media, dict):
        return None
    described = {
        "mimetype": string_or_none(media.get("mimetype")),
        "size": media.get("size") if isinstance(media.get("size"), int) else None,
        "file_name": string_or_none(media.get("file_name")),
    }
    if isinstance(media.get("id"), str):
        # `url`: a signed, expiring link to this app (app/media/links.py); null without SECRET_KEY.
        url = string_or_none(media.get("url"))
        return {"id": media["id"], **described, "sha256": string_or_none(media.get("sha256")), "url": url}
    if isinstance(media.get("error"), str):
        return {**described, "error": media["error"]}
    return described


def poll_of(value: Any) -> dict[str, Any] | None:
    """A poll's definition {question, options, selectable_count} as stored and sent; None if it is not one."""
    if not isinstance(value, dict):
        return None
    options = value.get("options")
    count = value.get("selectable_count")
    return {
        "question": string_or_none(value.get("question")),
        "options": [option for option in options if isinstance(option, str)] if isinstance(options, list) else [],
        "selectable_count": count if isinstance(count, int) and not isinstance(count, bool) else None,
    }


def option_hash(name: str) -> str:
    """How a poll vote names an option: the hex SHA-256 of the option's name (UTF-8)."""
    return hashlib.sha256(name.encode()).hexdigest()


def message_event_data(message: dict[str, Any]) -> dict[str, Any]:
    """`data` of `message.received` (and `message.from_me`) from a normalised MESSAGE event."""
    kind = message.get("type")
    kind = kind if kind in MESSAGE_TYPES else "other"
    return {
        "message_id": str(message["message_id"]),
        "chat": str(message["chat"]),
        "from": message.get("from"),
        "sender_jid": message.get("sender_jid"),
        "push_name": message.get("push_name"),
        "timestamp": message.get("timestamp"),
        "type": kind,
        "text": string_or_none(message.get("text")),
        "is_group": bool(message.get("is_group")),
        "is_from_me": bool(message.get("is_from_me")),
        "media": event_media(message.get("media")),
        "poll": poll_of(message.get("poll")) if kind == "poll" else None,
    }


def event_data(name: str, item: dict[str, Any]) -> dict[str, Any]:
    """`data` of the webhook event a backend event (already normalised by `normalise`) becomes."""
    if name == events.MESSAGE:
        return message_event_data(item)
    if name == events.CALL:
        return {
            "call_id": item["message_id"],
            "from": item.get("from"),
            "sender_jid": item.get("sender_jid"),
            "timestamp": item.get("timestamp"),
            "video": bool(item.get("video")),
            "rejected": bool(item.get("rejected")),  # declined as it arrived (REJECT_CALLS)
        }
    data: dict[str, Any] = {
        "message_id": item["message_id"],
        "target_id": item.get("target_id"),
        "chat": item["chat"],
        "from": item.get("from"),
        "sender_jid": item.get("sender_jid"),
    }
    if name == events.STATUS_POST:
        full = message_event_data(item)
        del data["target_id"]
        data.update({key: full[key] for key in ("push_name", "type", "text", "media")})
    elif name == events.EDITED:
        data.update(push_name=item.get("push_name"), text=string_or_none(item.get("text")))
    elif name == events.REACTION:
        data["emoji"] = item.get("emoji") if isinstance(item.get("emoji"), str) else ""
    elif name == events.POLL_VOTE:
        data.update(selected=item["selected"], selected_hashes=item["selected_hashes"])
    elif name == events.UNDECRYPTABLE:
        del data["target_id"]
    data["timestamp"] = item.get("timestamp")
    return data


def normalise(name: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The item with a string id and chat (a call's id is its call_id); None if it lacks either and cannot be stored."""
    message_id = data.get("call_id") if name == events.CALL else data.get("message_id")
    chat = data.get("chat") or (data.get("sender_jid") if name == events.CALL else None)
    if not message_id or not chat:
        return None
    return {**data, "message_id": str(message_id), "chat": str(chat)}
