"""Actions on a chat that WhatsApp carries out at once, without the send queue: POST /api/chats/{chat}/read sends
read receipts (blue ticks) for messages received in it; POST /api/chats/{chat}/presence shows "typing...",
"recording audio..." or neither there."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.incoming import lookup
from app.phone import InvalidPhone, Recipient, parse_recipient
from app.web.endpoint import Operation, Reply, api, reply
from app.web.models import (
    MAX_READ_IDS,
    RECIPIENT_EXAMPLES,
    RECIPIENT_FORMS,
    MarkedRead,
    MarkRead,
    Presence,
    SetPresence,
)
from app.web.state import state
from app.whatsapp import protocol

CHAT = {"chat": {"type": "string", "description": RECIPIENT_FORMS, "examples": RECIPIENT_EXAMPLES}}
NOT_NOW = "WhatsApp is not connected, or did not answer; the detail says which (try again)"
LIMITED = "WhatsApp answered with its rate limit; try again later"
REFUSED = "the body, the chat or the messages are invalid, or WhatsApp refused the action; the detail says why"


def chat_of(request: Request) -> Recipient:
    try:
        return parse_recipient(request.path_params["chat"])
    except InvalidPhone as error:
        raise HTTPException(422, f"the chat in the path: {error}") from None


async def mark_read(request: Request, body: MarkRead) -> Response:
    chat = chat_of(request)
    services = state(request)
    async with services["database"].connection() as connection:
        if body.up_to is not None:
            ids = await lookup.received_up_to(connection, chat.jid, body.up_to, MAX_READ_IDS)
            if not ids:
                raise HTTPException(404, f"no message received in this chat with id {body.up_to}")
        else:
            ids = list(body.message_ids or ())
        found = await lookup.senders(connection, chat.jid, ids, chat.is_group)
    if found.own:
        raise HTTPException(422, f"sent by this account, nothing to mark read: {', '.join(found.own)}")
    if found.unknown:
        # A group's read receipt names the member who wrote each message; only stored messages say who that was.
        raise HTTPException(404, f"no message received in this group with id {', '.join(found.unknown)}")
    supervisor = services["supervisor"]
    for sender, ids in found.by_sender.items():
        await supervisor.command(protocol.MARK_READ, {"chat": chat.jid, "sender": sender, "message_ids": ids})
    marked = [message_id for ids in found.by_sender.values() for message_id in ids]
    return reply(MarkedRead(chat=chat.jid, message_ids=marked, receipts=len(found.by_sender)))


async def presence(request: Request, body: SetPresence) -> Response:
    chat = chat_of(request)
    await state(request)["supervisor"].send_presence(chat.jid, body.state)
    return reply(Presence(chat=chat.jid, state=body.state))


ROUTES = [
    api(
        "/api/chats/{chat}/read",
        "POST",
        Operation(
            "Mark messages received in a chat as read (the sender sees blue ticks)",
            {
                200: Reply("WhatsApp took the read receipts", MarkedRead),
                404: Reply("a group message (or the `up_to` message) that was never received here"),
                409: Reply(NOT_NOW),
                422: Reply(REFUSED),
                429: Reply(LIMITED),
            },
            body=MarkRead,
            path=CHAT,
        ),
        mark_read,
    ),
    api(
        "/api/chats/{chat}/presence",
        "POST",
        Operation(
            'Show "typing..." (or "recording audio...", or neither) in a chat',
            {
                200: Reply("WhatsApp shows it", Presence),
                409: Reply(NOT_NOW),
                422: Reply(REFUSED),
                429: Reply(LIMITED),
            },
            body=SetPresence,
            path=CHAT,
        ),
        presence,
    ),
]
