"""The interface every WhatsApp backend implements inside the worker process, and the events it emits.

The worker owns exactly one backend for its whole life and makes exactly one connection attempt with it
(neonize leaks a Postgres connection per connect(), so any reconnect whatsmeow does not do by itself is a new worker).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.whatsapp.intake import Intake

# Event names a backend emits; the supervisor in the parent process reacts to the session events.
QR = "qr"  # {"payload": str}: a QR code payload ("2@ref,noise,identity,adv"); new one on every rotation
PAIRING_EXPIRED = "pairing_expired"  # {}: the QR round ended unscanned; the worker must be recycled
PAIRING_FAILED = "pairing_failed"  # {"error": str, "detail": str}: the phone refused the link (err-...)
CONNECTED = "connected"  # {"jid": str, "push_name": str | None}
DISCONNECTED = "disconnected"  # {"reason": str, "detail": str | None}: transient loss, dial failure
LOGGED_OUT = "logged_out"  # {"reason": str}: the device was unlinked; the store no longer holds it
REPLACED = "replaced"  # {}: another client took the stream
BANNED = "banned"  # {"until": ISO-8601 str | None, "code": int | None}
OUTDATED = "outdated"  # {"detail": str | None}: WhatsApp refuses this client version
PRESENCE_STATES = ("typing", "recording", "paused")  # what send_presence shows in a chat
STOPPED = "stopped"  # {"reason": str, "detail": str}: WhatsApp refuses this client for good (409 bad user agent)
PUMP_ENDED = "pump_ended"  # {"detail": str}: the library stopped handing events over; the worker must go at once

# What WhatsApp gave us: these travel on their own path to the message store (app/whatsapp/intake.py), never through
# the supervisor. Every one carries, where it applies: message_id, chat, from ('+<digits>' or None), sender_jid,
# push_name, timestamp (ISO-8601), is_group, is_from_me, raw (base64 of the serialized waE2E.Message, or None).
MESSAGE = "message"  # + type, text, media | None, poll {question, options, selectable_count}
# A MESSAGE's media: {mimetype, size, file_name} and, once the worker tried to download it, either `file` (the path of
# the bytes in the parent's media folder) and `sha256` (hex), or `error` (why there is no content) and, when the failure
# was transient (a network error, a timeout, a 5xx from the CDN), `retry`: true (the parent tries again later).
STATUS_POST = "status_post"  # a contact's status (status@broadcast) or a newsletter post; same fields as MESSAGE
EDITED = "edited"  # + target_id, text: the sender changed the text of message target_id
DELETED = "deleted"  # + target_id: the sender deleted message target_id for everyone
REACTION = "reaction"  # + target_id, emoji ("" when the reaction was removed)
POLL_VOTE = "poll_vote"  # + target_id (the poll), selected_hashes [hex SHA-256 of option names], selected [str] | None
UNDECRYPTABLE = "undecryptable"  # a message WhatsApp delivered that could not be decrypted (no raw)
CALL = "call"  # {call_id, chat, from, sender_jid, timestamp, video, rejected}: an incoming call offer
RECEIPT = "receipt"  # {"chat": str, "message_ids": [str], "status": "delivered|read|played", "timestamp": ISO}

INCOMING = frozenset({MESSAGE, STATUS_POST, EDITED, DELETED, REACTION, POLL_VOTE, UNDECRYPTABLE, CALL, RECEIPT})

# whatsmeow waits up to 75 s for the server to answer a send (request.go); the parent waits a little longer, so that a
# slow answer still records WhatsApp's id instead of reading as a lost worker.
SEND_TIMEOUT = 90.0

# WhatsApp shows the first QR code for 60 s, then five more for 20 s each, then closes the socket (whatsmeow's QR
# channel, seen with neonize 0.5.2).
WHATSAPP_QR_SECONDS: tuple[float, ...] = (60.0, 20.0, 20.0, 20.0, 20.0, 20.0)

Emit = Callable[[str, dict[str, Any]], None]


class BackendError(Exception):
    """A command failed. `permanent` tells the caller whether retrying the same command can ever succeed."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Backend(abc.ABC):
    """One WhatsApp client inside the worker process. Session events go out through `emit`, which never blocks;
    what WhatsApp gave us goes through `intake`, which holds the library back while too much is unstored."""

    reject_calls = False  # REJECT_CALLS: decline every incoming call as it arrives (set by the worker)
    media_dir: str | None = None  # where downloaded media is handed to the parent (app/whatsapp/media.py)
    media_max_bytes = 16 * 1024 * 1024  # MEDIA_MAX_BYTES: a larger file is not downloaded

    def __init__(self, database_url: str, emit: Emit, intake: Intake) -> None:
        self.database_url = database_url
        self.emit = emit
        self.intake = intake

    @abc.abstractmethod
    async def connect(self) -> None:
        """Start the one connection attempt of this worker's life and return once it is under way.

        With a stored device this logs in; without one it starts a pairing round (QR events follow).
        A failure to connect is reported as a DISCONNECTED event, not raised."""

    @abc.abstractmethod
    async def pair_phone(self, phone: str) -> str:
        """Return the 8-character code that links this client from the phone (digits with country code)."""

    @abc.abstractmethod
    async def send_text(self, to: str, text: str, mentions: list[str] | None = None) -> dict[str, Any]:
        """Send text to a phone number or JID: {"message_id", "timestamp"}. Nobody is mentioned but the JIDs in
        `mentions` (WhatsApp renders "@<user>" in the text as a mention of those alone).
        whatsmeow waits up to 75 s for the server's answer (SEND_TIMEOUT covers it)."""

    @abc.abstractmethod
    async def send_message(
        self, to: str, content: dict[str, Any], data: bytes | None, reply: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Send a message other than a plain text (protocol.SEND_MESSAGE): a text quoting another, a file (`data`, its
        bytes: image, video, audio, document, sticker), a location or a contact card, quoting `reply` if given:
        {"message_id", "timestamp"}, refused as send_text is."""

    @abc.abstractmethod
    async def mark_read(self, chat: str, sender: str, message_ids: list[str]) -> dict[str, Any]:
        """Send read receipts for messages of one sender in one chat (in a 1:1 chat the sender is the chat):
        {"chat", "message_ids"}. The sender's blue ticks turn on; WhatsApp answers nothing more."""

    @abc.abstractmethod
    async def send_presence(self, chat: str, state: str) -> dict[str, Any]:
        """Show `state` in a chat: "typing", "recording" (a voice note) or "paused" (neither): {"chat", "state"}.
        WhatsApp clears it by itself after about 25 s, or when our next message arrives."""

    @abc.abstractmethod
    async def check_numbers(self, phones: list[str]) -> dict[str, Any]:
        """Whether each phone ('+<digits>') has a WhatsApp account: {"results": [{"phone", "on_whatsapp", "jid"}]},
        in the order asked; "jid" is None for a number not on WhatsApp."""

    @abc.abstractmethod
    async def send_reaction(self, chat: str, target_id: str, sender: str | None, emoji: str) -> dict[str, Any]:
        """React with `emoji` ("" removes the reaction) to message `target_id` in `chat`, sent by `sender` (None:
        this account): {"message_id", "timestamp"} of the reaction message."""

    @abc.abstractmethod
    async def edit_message(self, chat: str, target_id: str, text: str) -> dict[str, Any]:
        """Replace the text of message `target_id` this account sent in `chat`: {"message_id", "timestamp"}."""

    @abc.abstractmethod
    async def revoke_message(self, chat: str, target_id: str, sender: str | None) -> dict[str, Any]:
        """Delete message `target_id` in `chat` for everyone (sent by `sender`, None: this account; another sender's
        only as a group admin): {"message_id", "timestamp"}."""

    @abc.abstractmethod
    async def joined_groups(self) -> dict[str, Any]:
        """{"groups": [{jid, name, topic, owner, created_at, announce, participant_count}]}: the account's groups."""

    @abc.abstractmethod
    async def group_info(self, jid: str) -> dict[str, Any]:
        """One group as joined_groups lists it, with "participants" [{jid, phone, lid, is_admin, is_super_admin}];
        BackendError (permanent) when the account is not a member or the group does not exist."""

    async def download_media(self, message: dict[str, Any]) -> dict[str, Any]:
        """Try again to download the media of a stored message ({message_id, chat, type, media {mimetype, size,
        file_name}, raw}): its media with `file` and `sha256`, or with `error` (and `retry` while a later try may
        succeed), handed over as on arrival (app/whatsapp/media.py)."""
        raise BackendError("this backend downloads no media", permanent=True)

    @abc.abstractmethod
    async def logout(self) -> None:
        """Unlink the device from the account and delete it from the store."""

    @abc.abstractmethod
    async def status(self) -> dict[str, Any]:
        """{"connected": bool, "logged_in": bool}: the client's own view, used by the heartbeat."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Disconnect without logging out. The worker exits after this."""
