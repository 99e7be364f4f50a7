"""The sending API: POST /api/messages queues a text, a file (image, video, audio, document, sticker), a location or
a contact card, any of them as a reply; GET shows one or a page. Actions on a message go through the
same queue, as rows of their own: POST .../reaction reacts (also to an incoming message, by WhatsApp's id), PATCH
edits our sent text, DELETE cancels a queued message or, once sent, deletes it for everyone."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.incoming import lookup
from app.media import fetch, sniff, voice
from app.media import store as media_store
from app.media.intake import MediaRefused
from app.sending import queue
from app.times import utcnow
from app.web.endpoint import Operation, Reply, api, reply
from app.web.models import EditText, MediaSpec, Message, MessagePage, MessagesQuery, React, SendMessage
from app.web.state import state

MAX_KEY = 255
LOCATION = {"Location": "/api/messages/{id}: where to follow the message"}
ONE = "#/paths/~1api~1messages~1{message_id}"
FOLLOW = {  # what a client does next with the id it got
    "show": {"operationRef": f"{ONE}/get", "parameters": {"message_id": "$response.body#/id"}},
    "cancel": {"operationRef": f"{ONE}/delete", "parameters": {"message_id": "$response.body#/id"}},
}
MESSAGE_ID = {"message_id": {"type": "string", "format": "uuid", "description": "as returned by POST /api/messages"}}
ANY_MESSAGE_ID = {
    "message_id": {
        "type": "string",
        "minLength": 1,
        "description": "our id (as returned by POST /api/messages) or WhatsApp's id of a message received here (the "
        "message_id of its message.received event)",
        "examples": ["9b1c2d3e-4f50-4a6b-8c7d-0e1f2a3b4c5d", "3EB0C431D5F1A2B3C4D5"],
    }
}
ACTION_LOCATION = {"Location": "/api/messages/{id}: where to follow the action (a queued row of its own)"}
ACTION_REPLIES = {
    202: Reply("the action is queued; follow it by its own id", Message, ACTION_LOCATION),
    404: Reply("no such message"),
    409: Reply("the message is not sent (yet), or the WhatsApp id names messages in several chats"),
    422: Reply("the body is invalid, or the message cannot take this action (an action itself, too old to edit)"),
}
IDEMPOTENCY_KEY = {
    "Idempotency-Key": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY,
        "description": "makes a retried request return the message the first one queued",
    }
}


def message_id_of(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params["message_id"])
    except ValueError:
        raise HTTPException(404, "no such message (ids are UUIDs, as returned by POST /api/messages)") from None


async def stored_media_for(request: Request, spec: MediaSpec, kind: str) -> media_store.Served:
    """The stored file a message sends: the one `media_id` names (422 when none is stored, its bytes were removed,
    or it is not of a type the kind carries), or the one at `url`, fetched into the media table now, so that a bad,
    private, too large or unreachable URL is this request's 4xx/5xx and not a failed message later, and a retried
    send never fetches again (app/media/fetch.py)."""
    services = state(request)
    settings = services["settings"]
    try:
        if spec.url is not None:
            fetched = await fetch.fetch_to_store(
                services["database"], services["media_storage"], spec.url, kind, max_bytes=settings.media_max_bytes,
                allow_private=settings.media_fetch_allow_private,
            )  # fmt: skip
            media_id = fetched.id
        else:
            assert spec.media_id is not None
            media_id = uuid.UUID(spec.media_id)
        async with services["database"].connection() as connection:
            stored = await media_store.served(connection, media_id)
    except MediaRefused as refused:
        raise HTTPException(refused.status, f"'{kind}.url': {refused}") from None
    if stored is None:
        raise HTTPException(422, f"'{kind}.media_id': no stored file has the id {media_id}")
    if stored.removed is not None:
        raise HTTPException(422, f"'{kind}.media_id': the file {media_id} is no longer stored ({stored.removed})")
    wrong = sniff.fits(kind, stored.mimetype)
    if wrong is not None:
        raise HTTPException(422, f"'{kind}': {wrong}")
    return stored


async def file_content(request: Request, spec: MediaSpec, kind: str) -> dict[str, Any]:
    """What the queue keeps of a file to send: the stored file's id, its caption, name and type (as given, else as
    stored). A voice note (audio with ptt) that is not Ogg Opus is sent as its converted copy (app/media/voice.py)."""
    stored = await stored_media_for(request, spec, kind)
    media_id, mimetype = stored.id, spec.mimetype or stored.mimetype
    if kind == "audio" and spec.ptt:
        try:
            note = await voice.voice_note(
                state(request)["database"],
                state(request)["media_storage"],
                media_id,
                max_bytes=state(request)["settings"].media_max_bytes,
            )
        except MediaRefused as refused:
            raise HTTPException(refused.status, f"'audio': {refused}") from None
        media_id, mimetype = note.media_id, note.mimetype
    content: dict[str, Any] = {"media_id": str(media_id), "mimetype": mimetype}
    file_name = spec.file_name or stored.file_name
    if file_name:
        content["file_name"] = file_name
    if spec.caption is not None:
        content["caption"] = spec.caption
    if kind == "audio":
        content["ptt"] = bool(spec.ptt)
    return content


def vcard_of(name: str, phone: str) -> str:
    """A vCard 3.0 for a name and an E.164 number; waid tells WhatsApp the number's account (the "Message" button)."""
    digits = phone.removeprefix("+")
    clean = " ".join(name.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").split())
    return f"BEGIN:VCARD\nVERSION:3.0\nFN:{clean}\nTEL;type=CELL;waid={digits}:{phone}\nEND:VCARD"


def card_name(vcard: str) -> str:
    """The FN (formatted name) of a vCard, as WhatsApp shows the card; '' if it has none."""
    for line in vcard.splitlines():
        label, _, value = line.partition(":")
        if label.split(";")[0].strip().upper() == "FN":
            return value.strip()
    return ""


async def content_of(request: Request, body: SendMessage) -> dict[str, Any] | None:
    """What a message other than text carries (None for a text)."""
    kind = body.kind
    if kind == "location":
        assert body.location is not None
        return body.location.model_dump(exclude_none=True)
    if kind == "contact":
        card = body.contact
        assert card is not None
        if card.vcard is not None:
            return {"name": card.name or card_name(card.vcard), "vcard": card.vcard}
        assert card.name is not None and card.phone is not None
        return {"name": card.name, "vcard": vcard_of(card.name, card.phone)}
    spec = getattr(body, kind)
    return await file_content(request, spec, kind) if isinstance(spec, MediaSpec) else None


async def reply_of(connection: Any, chat: str, whatsapp_id: str) -> queue.Reply:
    """The message a reply quotes: received in this chat (stored here), or sent to it from here. Else 422: a quote
    WhatsApp cannot show would make the reply read as a plain message, which is not what was asked."""
    received = await lookup.quoted(connection, chat, whatsapp_id)
    if received is not None:
        sender = None if received["is_from_me"] else (received["sender_jid"] or chat)
        return queue.Reply(whatsapp_id, sender, received["raw"])
    if await queue.sent_in_chat(connection, chat, whatsapp_id):
        return queue.Reply(whatsapp_id, None, None)
    raise HTTPException(
        422, f"'reply_to': no message {whatsapp_id!r} was received in or sent to {chat} here (or it was deleted)"
    )


async def create(request: Request, body: SendMessage) -> Response:
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= MAX_KEY:
        raise HTTPException(422, f"the Idempotency-Key header must be 1 to {MAX_KEY} characters")
    services = state(request)
    asked = body.asked()
    digest = queue.request_hash(body.to, body.text or "", body.typing, body.mentions, asked)
    try:
        result = None
        # A retry of a file, location, contact or reply gets its message back before anything is fetched, converted
        # or looked up again. A plain text has nothing to resolve: its one INSERT finds the key (one round trip).
        if key is not None and asked:
            async with services["database"].connection() as connection:
                result = await queue.earlier(connection, key, digest)
        if result is None:
            content = await content_of(request, body)  # before a connection is taken: a URL may take seconds
            async with services["database"].connection() as connection:  # one insert: no explicit transaction
                reply_to = await reply_of(connection, body.to.jid, body.reply_to) if body.reply_to else None
                result = await queue.enqueue(
                    connection, body.to, body.text or "", key, typing=body.typing, mentions=body.mentions,
                    kind=body.kind, content=content, reply=reply_to, digest=digest,
                )  # fmt: skip
    except queue.IdempotencyConflict as error:
        raise HTTPException(409, str(error)) from None
    if result.created:
        services["sender"].wake()
    headers = {"Location": f"/api/messages/{result.message['id']}"}
    return reply(Message.model_validate(result.message), 202 if result.created else 200, headers)


async def show(request: Request) -> Response:
    async with state(request)["database"].connection() as connection:
        message = await queue.get(connection, message_id_of(request))
    if message is None:
        raise HTTPException(404, "no such message")
    return reply(Message.model_validate(message))


SENT = ("sent", "delivered", "read")
EDIT_WINDOW = dt.timedelta(minutes=15)  # WhatsApp lets a message be edited for 15 minutes after it was sent


def sent_message(row: Any, action: str) -> queue.Target:
    """The target of an action on one of our messages: it must be a message (not an action) that WhatsApp has."""
    if row["kind"] in queue.ACTIONS:
        raise HTTPException(422, f"this is a {row['kind']}, not a message: only messages can be acted on")
    if row["status"] not in SENT or row["whatsapp_id"] is None:
        raise HTTPException(409, f"only a sent message can be {action}; this one is {row['status']}")
    return queue.Target(row["jid"], row["whatsapp_id"], None, str(row["id"]))


async def queue_action(request: Request, kind: str, target: queue.Target, text: str) -> Response:
    async with state(request)["database"].transaction() as connection:
        action = await queue.enqueue_action(connection, kind, target, text)
    state(request)["sender"].wake()
    return reply(Message.model_validate(action), 202, {"Location": f"/api/messages/{action['id']}"})


async def cancel(request: Request) -> Response:
    """Two meanings, by the message's status: a queued message is cancelled (200, it is never sent); a sent one is
    deleted for everyone (202, a `delete` action is queued, with its own id and statuses)."""
    message_id = message_id_of(request)
    async with state(request)["database"].transaction() as connection:
        cancelled = await queue.cancel(connection, message_id)
        current = None if cancelled else await queue.get_row(connection, message_id)
    if cancelled is not None:
        return reply(Message.model_validate(cancelled))
    if current is None:
        raise HTTPException(404, "no such message")
    if current["status"] not in SENT:
        raise HTTPException(
            409, f"a queued message is cancelled and a sent one deleted for everyone; this one is {current['status']}"
        )
    return await queue_action(request, "delete", sent_message(current, "deleted"), "")


async def edit(request: Request, body: EditText) -> Response:
    async with state(request)["database"].connection() as connection:
        row = await queue.get_row(connection, message_id_of(request))
    if row is None:
        raise HTTPException(404, "no such message")
    target = sent_message(row, "edited")
    if row["kind"] != "text":
        raise HTTPException(422, f"only a text can be edited; this message's kind is {row['kind']}")
    if row["sent_at"] is not None and utcnow() - row["sent_at"] > EDIT_WINDOW:
        raise HTTPException(422, "WhatsApp lets a message be edited only within 15 minutes of sending it")
    return await queue_action(request, "edit", target, body.text)


async def react(request: Request, body: React) -> Response:
    """On one of our messages (by our id) or on an incoming one (by WhatsApp's id, as its webhook event named it)."""
    named = str(request.path_params["message_id"])
    try:
        ours: uuid.UUID | None = uuid.UUID(named)
    except ValueError:
        ours = None
    async with state(request)["database"].connection() as connection:
        if ours is not None:
            row = await queue.get_row(connection, ours)
            if row is None:
                raise HTTPException(404, "no such message")
            target = sent_message(row, "reacted to")
        else:
            found = await lookup.message(connection, named)
            if not found:
                raise HTTPException(404, "no such message: neither our id (a UUID) nor a message received here")
            if len(found) > 1:
                raise HTTPException(409, f"WhatsApp id {named!r} names messages in several chats")
            message = found[0]
            # Typed on the account's phone: ours (fromMe). Else its sender; in a 1:1 chat that is the chat.
            sender = None if message["is_from_me"] else (message["sender_jid"] or message["chat"])
            target = queue.Target(message["chat"], named, sender, named)
    return await queue_action(request, "reaction", target, body.emoji)


async def listing(request: Request, query: MessagesQuery) -> Response:
    before = None
    if query.before is not None:
        try:
            before = dt.datetime.fromisoformat(query.before)
        except ValueError:
            raise HTTPException(422, "'before' must be an ISO-8601 time (the created_at of the last item)") from None
        if before.tzinfo is None:
            before = before.replace(tzinfo=dt.UTC)
    async with state(request)["database"].connection() as connection:
        items = await queue.page(connection, query.status, before, query.limit)
    next_before = items[-1]["created_at"] if len(items) == query.limit else None
    return reply(MessagePage.model_validate({"items": items, "next_before": next_before}))


ROUTES = [
    api(
        "/api/messages",
        "POST",
        Operation(
            "Queue a message: a text, a file, a location or a contact, any of them as a reply (an Idempotency-Key "
            "header makes a retried request return the same message)",
            {
                202: Reply("queued", Message, LOCATION, FOLLOW),
                200: Reply(
                    "the message an earlier request with the same Idempotency-Key queued", Message, LOCATION, FOLLOW
                ),
                409: Reply("the Idempotency-Key was used with a different request"),
                422: Reply(
                    "the body is invalid: not exactly one kind, an unknown or removed media_id, a reply_to that names "
                    "no message of this chat"
                ),
            },
            body=SendMessage,
            headers=IDEMPOTENCY_KEY,
            description="`text` alone, or exactly one of `image`, `video`, `audio` (`ptt`: a voice note), "
            "`document`, `sticker` (each a stored file by `media_id`, with its own `caption`), `location`, "
            "`contact`; `reply_to` quotes a message of the same chat. Every kind goes through the same queue: "
            "rate limit, spacing, retries, statuses, receipts. See docs/SENDING.md.",
        ),
        create,
    ),
    api(
        "/api/messages",
        "GET",
        Operation("Queued and sent messages, newest first", {200: Reply("a page", MessagePage)}, query=MessagesQuery),
        listing,
    ),
    api(
        "/api/messages/{message_id}",
        "GET",
        Operation("One message and where it is", {200: Reply("the message", Message)}, path=MESSAGE_ID),
        show,
    ),
    api(
        "/api/messages/{message_id}",
        "DELETE",
        Operation(
            "Cancel a queued message, or delete a sent one for everyone",
            {
                200: Reply("it was queued: cancelled, it will not be sent", Message),
                202: Reply("it was sent: a delete for everyone is queued, with its own id", Message, ACTION_LOCATION),
                409: Reply("the message is being sent, failed or cancelled: neither applies"),
                422: Reply("this is an action (a reaction, edit or delete), which cannot be deleted once sent"),
            },
            path=MESSAGE_ID,
            description="A queued message is cancelled (200). A sent one (sent, delivered, read) is deleted for "
            "everyone: a `delete` action goes through the queue like a message (202, its own id, statuses and "
            "message.status events; WhatsApp allows it for about two days after sending).",
        ),
        cancel,
    ),
    api(
        "/api/messages/{message_id}",
        "PATCH",
        Operation(
            "Edit the text of a message sent in the last 15 minutes",
            ACTION_REPLIES,
            body=EditText,
            path=MESSAGE_ID,
            description="An `edit` action goes through the queue like a message (its own id, statuses and "
            "message.status events). The message's own row keeps the text it was sent with.",
        ),
        edit,
    ),
    api(
        "/api/messages/{message_id}/reaction",
        "POST",
        Operation(
            'React to a message with an emoji ("" removes the reaction)',
            ACTION_REPLIES,
            body=React,
            path=ANY_MESSAGE_ID,
            description="On one of our sent messages (by our id) or on a message received here (by WhatsApp's "
            "id). A `reaction` action goes through the queue like a message (its own id, statuses and events).",
        ),
        react,
    ),
]
