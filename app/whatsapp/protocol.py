"""The private channel between the web process and its worker: length-prefixed JSON frames over a socketpair.

Never stdout: Go code inside neonize writes there. The parent's first frame is the worker's settings (WorkerSettings;
the worker reads nothing from its environment); then:
  {"type": "command", "id": 7, "name": "send_text", "args": {...}}           parent -> worker
  {"type": "reply", "id": 7, "ok": true, "result": {...}}                       worker -> parent
  {"type": "reply", "id": 7, "ok": false, "error": "...", "permanent": false}   worker -> parent
  {"type": "event", "name": "connected", "data": {...}}                         worker -> parent
  {"type": "incoming", "seq": 12, "name": "message", "data": {...}}             worker -> parent
  {"type": "stored", "seq": 12}                                                 parent -> worker

Session events ("event") go to the supervisor; what WhatsApp gave us ("incoming") goes straight to the message store,
which answers "stored" once it is committed (app/whatsapp/intake.py has the flow control).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import struct
from typing import Any

from app.whatsapp.backend import WHATSAPP_QR_SECONDS

HEADER = struct.Struct(">I")
MAX_FRAME = 16 * 2**20  # a message text is at most 64 KiB; anything near this size is a bug, not data

# Frame types.
COMMAND, REPLY, EVENT = "command", "reply", "event"
SETTINGS = "settings"  # the parent's first frame: the worker's settings
INCOMING = "incoming"  # something WhatsApp gave us (backend.INCOMING names), numbered
STORED = "stored"  # the parent committed every incoming frame up to `seq`

# Commands the worker understands.
PING = "ping"
PAIR_CODE = "pair_code"
SEND_TEXT = "send_text"
MARK_READ = "mark_read"  # {"chat", "sender", "message_ids"}
SEND_PRESENCE = "send_presence"  # {"chat", "state": "typing" | "recording" | "paused"}
CHECK_NUMBERS = "check_numbers"  # {"phones": ["+<digits>", ...]}
SEND_REACTION = "send_reaction"  # {"chat", "target_id", "sender": JID | None (this account), "emoji"}
EDIT_MESSAGE = "edit_message"  # {"chat", "target_id", "text"}
REVOKE_MESSAGE = "revoke_message"  # {"chat", "target_id", "sender": JID | None (this account)}
# A message other than a plain text: {"to", "content": {"type": text | image | video | audio | document | sticker |
# location | contact, ...its fields}, "file": the path of the bytes in the worker's media folder (files only),
# "reply": {"id", "sender": JID | None (this account), "quoted": base64 of the quoted waE2E.Message | None} | None}.
# The file's bytes never travel in a frame: the parent writes them there and deletes the file after the reply.
SEND_MESSAGE = "send_message"
FILE_TYPES = ("image", "video", "audio", "document", "sticker")  # SEND_MESSAGE types that carry a file
JOINED_GROUPS = "joined_groups"  # {}
GROUP_INFO = "group_info"  # {"jid": "<id>@g.us"}
DOWNLOAD_MEDIA = "download_media"  # {"message_id", "chat", "type", "media", "raw"}: a stored message's media again
LOGOUT = "logout"
STOP = "stop"
SIMULATE = "simulate"  # simulator backend only: drive the fake WhatsApp (pair, incoming, disconnect, crash, hang)

READY = "ready"  # the first event of every worker: {"pid": int, "backend": str}


@dataclasses.dataclass(frozen=True)
class WorkerSettings:
    """What a worker process knows of the configuration, all of it from the web process's Settings. Sent as the
    first frame, so that nothing in it (the database password among it) is on a command line or parsed twice."""

    backend: str  # neonize | replay | simulator
    database_url: str  # whatsmeow's store
    log_level: str = "INFO"
    sentry_dsn: str | None = None
    release: str | None = None
    deployed: bool = False  # Sentry's environment: production or local
    secrets: tuple[str, ...] = ()  # masked in the worker's log lines, like the parent's
    simulator_qr_seconds: tuple[float, ...] = WHATSAPP_QR_SECONDS
    replay_file: str | None = None  # WHATSAPP_BACKEND=replay: the neonize events to feed
    replay_calls: str | None = None  # replay: where the client records the calls it was given (tests read them)
    reject_calls: bool = False  # REJECT_CALLS: decline incoming calls as they arrive
    media_dir: str | None = None  # the parent's private folder where the worker writes downloaded media
    media_max_bytes: int = 16 * 1024 * 1024  # MEDIA_MAX_BYTES

    def frame(self) -> dict[str, Any]:
        return {"type": SETTINGS, "settings": dataclasses.asdict(self)}

    @classmethod
    def from_frame(cls, message: dict[str, Any]) -> WorkerSettings:
        if message.get("type") != SETTINGS:
            raise ValueError(f"the first frame must be the worker's settings, not {message.get('type')!r}")
        values = dict(message["settings"])
        values["secrets"] = tuple(values.get("secrets") or ())
        values["simulator_qr_seconds"] = tuple(values.get("simulator_qr_seconds") or WHATSAPP_QR_SECONDS)
        return cls(**values)


class ChannelClosed(Exception):
    """The other end went away (its process exited or was killed)."""


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    if len(body) > MAX_FRAME:
        raise ValueError(f"frame of {len(body)} bytes exceeds {MAX_FRAME}")
    return HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any]:
    try:
        header = await reader.readexactly(HEADER.size)
        (length,) = HEADER.unpack(header)
        if length > MAX_FRAME:
            raise ChannelClosed(f"peer sent a frame of {length} bytes; closing the channel")
        body = await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError) as error:
        raise ChannelClosed(str(error) or type(error).__name__) from error
    message: dict[str, Any] = json.loads(body)
    return message
