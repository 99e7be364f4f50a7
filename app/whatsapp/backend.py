"""The interface every WhatsApp backend implements inside the worker process, and the events it emits.

The worker owns exactly one backend for its whole life and makes exactly one connection attempt with it
(neonize leaks a Postgres connection per connect(), so any reconnect whatsmeow does not do by itself is a new worker).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

# Event names a backend emits; the supervisor in the parent process reacts to them.
QR = "qr"  # {"payload": str}: a QR code payload ("2@ref,noise,identity,adv"); new one on every rotation
PAIRING_EXPIRED = "pairing_expired"  # {}: the QR round ended unscanned; the worker must be recycled
CONNECTED = "connected"  # {"jid": str, "push_name": str | None}
DISCONNECTED = "disconnected"  # {"reason": str, "detail": str | None}: transient loss, dial failure
LOGGED_OUT = "logged_out"  # {"reason": str}: the device was unlinked; the store no longer holds it
REPLACED = "replaced"  # {}: another client took the stream
BANNED = "banned"  # {"until": ISO-8601 str | None, "code": int | None}
OUTDATED = "outdated"  # {"detail": str | None}: WhatsApp refuses this client version
MESSAGE = "message"  # a normalised incoming message (see app/whatsapp/neonize_backend.py for the fields)
RECEIPT = "receipt"  # {"chat": str, "message_ids": [str], "status": "delivered|read|played", "timestamp": ISO}

# WhatsApp shows the first QR code for 60 s, then five more for 20 s each, then closes the socket (NEONIZE.md).
WHATSAPP_QR_SECONDS: tuple[float, ...] = (60.0, 20.0, 20.0, 20.0, 20.0, 20.0)

EVENTS = (QR, PAIRING_EXPIRED, CONNECTED, DISCONNECTED, LOGGED_OUT, REPLACED, BANNED, OUTDATED, MESSAGE, RECEIPT)

Emit = Callable[[str, dict[str, Any]], None]


class BackendError(Exception):
    """A command failed. `permanent` tells the caller whether retrying the same command can ever succeed."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Backend(abc.ABC):
    """One WhatsApp client inside the worker process. Events go out through `emit`, which never blocks."""

    def __init__(self, database_url: str, emit: Emit) -> None:
        self.database_url = database_url
        self.emit = emit

    @abc.abstractmethod
    async def connect(self) -> None:
        """Start the one connection attempt of this worker's life and return once it is under way.

        With a stored device this logs in; without one it starts a pairing round (QR events follow).
        A failure to connect is reported as a DISCONNECTED event, not raised."""

    @abc.abstractmethod
    async def pair_phone(self, phone: str) -> str:
        """Return the 8-character code that links this client from the phone (digits with country code)."""

    @abc.abstractmethod
    async def send_text(self, to: str, text: str) -> dict[str, Any]:
        """Send plain text (no automatic mentions) to a phone number or JID: {"message_id", "timestamp"}."""

    @abc.abstractmethod
    async def logout(self) -> None:
        """Unlink the device from the account and delete it from the store."""

    @abc.abstractmethod
    async def status(self) -> dict[str, Any]:
        """{"connected": bool, "logged_in": bool}: the client's own view, used by the heartbeat."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Disconnect without logging out. The worker exits after this."""
