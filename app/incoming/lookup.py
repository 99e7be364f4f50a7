"""Reads of stored incoming messages that actions on them need: who sent a message (a read receipt names its sender;
in a group that is the member who wrote it)."""

from __future__ import annotations

import dataclasses
from typing import Any

SENDERS = """
SELECT message_id, sender_jid, is_from_me FROM incoming_messages
WHERE chat = $1 AND message_id = ANY($2::text[]) AND event_type IN ('message.received', 'message.from_me')
"""


@dataclasses.dataclass(frozen=True)
class Senders:
    by_sender: dict[str, list[str]]  # sender JID -> message ids, in the order asked
    unknown: list[str]  # ids not stored for this chat (a group needs each message's sender)
    own: list[str]  # ids of messages the account sent itself (nothing to mark read)


async def senders(connection: Any, chat: str, message_ids: list[str], is_group: bool) -> Senders:
    """Group the ids by their sender. In a 1:1 chat the sender is the chat, so an id not stored (pruned by retention,
    or from before the gateway ran) still goes; in a group an id not stored has no known sender."""
    rows = {row["message_id"]: row for row in await connection.fetch(SENDERS, chat, message_ids)}
    by_sender: dict[str, list[str]] = {}
    unknown, own = [], []
    for message_id in dict.fromkeys(message_ids):
        row = rows.get(message_id)
        if row is not None and row["is_from_me"]:
            own.append(message_id)
            continue
        sender = row["sender_jid"] if row is not None and row["sender_jid"] else None
        if sender is None and not is_group:
            sender = chat
        if sender is None:
            unknown.append(message_id)
        else:
            by_sender.setdefault(sender, []).append(message_id)
    return Senders(by_sender, unknown, own)


# A chat's messages received up to one of them, newest first: "read up to here". Rows are numbered in the order they
# arrived (the store writes each batch in arrival order), so the id orders them, also within one batch.
RECEIVED_UP_TO = """
WITH mark AS (
    SELECT max(id) AS id FROM incoming_messages
    WHERE chat = $1 AND message_id = $2 AND event_type = 'message.received'
)
SELECT message_id FROM incoming_messages, mark
WHERE chat = $1 AND event_type = 'message.received' AND incoming_messages.id <= mark.id
ORDER BY incoming_messages.id DESC LIMIT $3
"""


async def received_up_to(connection: Any, chat: str, message_id: str, limit: int) -> list[str]:
    """The ids of the latest `limit` messages received in `chat` up to and including `message_id`, oldest first;
    empty if that message was not received (stored) here."""
    rows = await connection.fetch(RECEIVED_UP_TO, chat, message_id, limit)
    return [row["message_id"] for row in reversed(rows)]


MESSAGE = """
SELECT DISTINCT chat, sender_jid, is_from_me FROM incoming_messages
WHERE message_id = $1 AND event_type IN ('message.received', 'message.from_me')
LIMIT 2
"""


async def message(connection: Any, message_id: str) -> list[dict[str, Any]]:
    """The stored message(s) with WhatsApp id `message_id`: {chat, sender_jid, is_from_me}; two when the id is not
    unique across chats (WhatsApp ids are unique per sender, not globally)."""
    return [dict(row) for row in await connection.fetch(MESSAGE, message_id)]


QUOTED = """
SELECT sender_jid, is_from_me, raw FROM incoming_messages
WHERE chat = $1 AND message_id = $2 AND event_type IN ('message.received', 'message.from_me')
ORDER BY id DESC LIMIT 1
"""


async def quoted(connection: Any, chat: str, message_id: str) -> dict[str, Any] | None:
    """A message received (or typed on the account's phone) in `chat`, for a reply to quote: {sender_jid,
    is_from_me, raw (the serialized waE2E.Message, or None)}; None if it is not stored here."""
    row = await connection.fetchrow(QUOTED, chat, message_id)
    return dict(row) if row else None
