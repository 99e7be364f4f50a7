"""The replay backend: the real neonize backend (its handlers, its mapping, its intake) fed from a file of neonize
protobuf events instead of the Go library, at the exact point where Go hands an event to Python.

`WHATSAPP_BACKEND=replay` with `WHATSAPP_REPLAY_FILE=PATH`. The file is JSON lines:

    {"me": "6281234567890:12@s.whatsapp.net", "push_name": "Toko Maju"}      optional first line: the linked account
    {"event": 17, "data": "<base64 of Neonize_pb2.Message().SerializeToString()>"}  (neonize.events.EVENT_TO_INT)
    {"sleep": 0.5}                                                            pause the feed
    {"qr": "2@..."}  {"login_status": "err-client-outdated"}                  what Go's QR and pairing callbacks pass
    {"log": "You've been temporarily banned: ..."}                            a line whatsmeow logs (its Client log)
    {"end": "some error text"}                                                the connection ends with this NeonizeError

The first line may also carry what the stand-in answers for the Go client's own look-ups: `"lid_map": {"<lid>@lid":
"<phone>@s.whatsapp.net"}`, `"poll_votes": {"<vote message id>": ["option", ...]}` (whatsmeow decrypts votes with
keys only a real device has), `"send_errors": ["text", ...]` (the next sends fail with these whatsmeow errors) and
`"call_errors": {"mark_read": ["text", ...], ...}` (the next calls of that name fail with these; "upload" too) and
`"on_whatsapp": {"+<digits>": "<jid>", ...}` (the numbers is_on_whatsapp finds; any other is not on WhatsApp) and
`"groups": [{"jid", "name", "topic"?, "participants": [{"jid", "phone"?, "admin"?}]}]` (the account's groups; any
other group is one it does not take part in) and `"downloads": {"<directPath of the media>": "<file>"}` (what
download_any answers for media with that CDN path, from a file; any other fails as an expired CDN copy does).

Every event goes through the same checks Go's side makes: an event Go could not marshal (a required field unset, as
neonize leaves `Receipt.Type` for receipts it cannot map) ends the event pump with Go's error text, and the events
after it are never seen, exactly as with the real library. Calls that would go to Go (get_me, uploads, sends, look-ups,
logout) are answered here and recorded: in the log, and as JSON lines in `WHATSAPP_REPLAY_CALLS` when that is set
(a send with the whole message it carried, base64 of its serialized waE2E.Message).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ctypes
import hashlib
import json
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from app.whatsapp.backend import BackendError, Emit
from app.whatsapp.intake import Intake
from app.whatsapp.neonize_backend import NeonizeBackend, build_jid

log = logging.getLogger(__name__)

REPLAY_UUID = b"whatsapp-gateway"
LINE_KINDS = ("event", "sleep", "qr", "login_status", "log", "end")


def read_replay_file(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, lines) of a replay file; ValueError naming the line for anything malformed."""
    header: dict[str, Any] = {}
    lines: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as file:
        for number, text in enumerate(file, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
            if not isinstance(line, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object")
            kinds = [kind for kind in LINE_KINDS if kind in line]
            if not lines and not header and not kinds:
                header = line  # the optional first line: the account and the stand-in's answers
                continue
            if len(kinds) != 1:
                raise ValueError(f"{path}:{number}: expected exactly one of {', '.join(LINE_KINDS)}")
            if kinds[0] == "event":
                if not isinstance(line["event"], int) or not isinstance(line.get("data"), str):
                    raise ValueError(f"{path}:{number}: 'event' must be an integer code and 'data' base64 text")
                try:
                    line["bytes"] = base64.b64decode(line["data"], validate=True)
                except binascii.Error:
                    raise ValueError(f"{path}:{number}: 'data' is not base64") from None
            if kinds[0] == "sleep" and not (isinstance(line["sleep"], int | float) and 0 <= line["sleep"] <= 3600):
                raise ValueError(f"{path}:{number}: 'sleep' must be seconds from 0 to 3600")
            lines.append(line)
    return header, lines


def message_summary(message: Any) -> dict[str, Any]:
    """What a recorded send carried besides plain text: a reaction, or a protocol message (edit, revoke), its key."""

    def key_of(key: Any) -> dict[str, Any]:
        return {"id": key.ID, "chat": key.remoteJID, "from_me": key.fromMe, "participant": key.participant or None}

    if message.HasField("reactionMessage"):
        return {"reaction": {"text": message.reactionMessage.text, **key_of(message.reactionMessage.key)}}
    protocol = message.protocolMessage
    if message.HasField("editedMessage"):
        protocol = message.editedMessage.message.protocolMessage
    if protocol.ByteSize():
        edited = protocol.editedMessage.conversation or None
        kind = protocol.Type.Name(protocol.type)
        return {"protocol": {"type": kind, "text": edited, **key_of(protocol.key)}}
    return {}


class ReplayClient:
    """Stands in for neonize's NewAClient: connect() feeds the file from a thread of its own, as Go does."""

    def __init__(self, nz: Any, path: Path, calls_path: str | None) -> None:
        from neonize.aioze.events import Event  # neonize's own handler registry, as NewAClient has it

        self._nz = nz
        self.header, self._lines = read_replay_file(path)
        self._calls_path = calls_path
        self._send_errors: list[str] = list(self.header.get("send_errors") or [])
        self._call_errors: dict[str, list[str]] = {
            str(name): list(errors) for name, errors in (self.header.get("call_errors") or {}).items()
        }
        self.uuid = REPLAY_UUID
        self.me: Any = None
        self.connected = False
        self.event = Event(self)
        self._stop = threading.Event()
        self._ended: asyncio.Future[str | None] | None = None
        self._thread: threading.Thread | None = None

    def _NewAClient__onLoginStatus(self, _uuid: Any, _status: Any) -> None:
        """Replaced by the backend, as on the real client."""

    def _record(self, call: str, **details: Any) -> None:
        log.info("replay: %s %s", call, json.dumps(details, ensure_ascii=False))
        if self._calls_path:
            with open(self._calls_path, "a", encoding="utf-8") as file:
                file.write(json.dumps({"call": call, **details}, ensure_ascii=False) + "\n")

    # -- the feed ----------------------------------------------------------------------------------------------------

    async def connect(self) -> asyncio.Task[None]:
        loop = asyncio.get_running_loop()
        self._ended = loop.create_future()
        self._thread = threading.Thread(target=self._feed, args=(loop,), name="replay-feed", daemon=True)
        self._thread.start()
        return asyncio.create_task(self._connection(), name="replay-connection")

    async def _connection(self) -> None:
        """Like neonize's connect task: ends when stopped, or raises the library's error."""
        assert self._ended is not None
        error = await self._ended
        if error is not None:
            raise self._nz.NeonizeError(error)

    def _end(self, loop: asyncio.AbstractEventLoop, error: str | None) -> None:
        def settle() -> None:
            if self._ended is not None and not self._ended.done():
                self._ended.set_result(error)

        if not loop.is_closed():
            loop.call_soon_threadsafe(settle)

    def _feed(self, loop: asyncio.AbstractEventLoop) -> None:
        for line in self._lines:
            if self._stop.is_set():
                return
            if "sleep" in line:
                self._stop.wait(float(line["sleep"]))
            elif "end" in line:
                self._end(loop, str(line["end"]))
                return
            elif "qr" in line:
                asyncio.run_coroutine_threadsafe(self.event._qr(self, str(line["qr"]).encode()), loop)
            elif "log" in line:
                self._go_log(str(line["log"]))
            elif "login_status" in line:
                text = ctypes.create_string_buffer(str(line["login_status"]).encode())
                self._NewAClient__onLoginStatus(None, ctypes.addressof(text))
            elif not self._hand_over(loop, int(line["event"]), line["bytes"]):
                return  # the pump is over, as in Go after a failed marshal

    def _go_log(self, text: str) -> None:
        """Through neonize's own log path, as Go's logger calls it (a LogEntry's bytes and their length)."""
        from neonize.utils.log import log_whatsmeow

        entry = self._nz.proto.LogEntry(Message=text, Level="WARN", Name="Client").SerializeToString()
        buffer = ctypes.create_string_buffer(entry, len(entry))
        log_whatsmeow(ctypes.addressof(buffer), len(entry))

    def _hand_over(self, loop: asyncio.AbstractEventLoop, code: int, data: bytes) -> bool:
        event_type = self._nz.int_to_event.get(code)
        if event_type is None:
            log.warning("replay: unknown event code %d skipped", code)
            return True
        event = event_type()
        event.MergeFromString(data)
        missing = event.FindInitializationErrors()
        if missing:
            # Go's proto.Marshal refuses a message with a required field unset, and neonize's pump ends there.
            self._end(loop, f"proto: required field {event.DESCRIPTOR.full_name}.{missing[0]} not set")
            return False
        buffer = ctypes.create_string_buffer(data, len(data))
        self.event.execute(self.uuid, ctypes.addressof(buffer), len(data), code)
        return True

    # -- what the Go client would answer -------------------------------------------------------------------------

    def _fail_if_told(self, call: str) -> None:
        errors = self._call_errors.get(call)
        if errors:
            raise self._nz.NeonizeError(errors.pop(0))

    @staticmethod
    def _text(jid: Any) -> str:
        return f"{jid.User}@{jid.Server}"

    def _jid(self, text: str) -> Any:
        user, _, server = text.partition("@")
        user, _, device = user.partition(":")
        return build_jid(self._nz.proto, user, server, int(device or 0))

    async def get_me(self) -> Any:
        me = self.header.get("me")
        device = self._nz.proto.Device(PushName=str(self.header.get("push_name") or ""))
        if me:
            device.JID.CopyFrom(self._jid(str(me)))
        return device

    async def send_message(self, to: Any, message: Any) -> Any:
        target = f"{to.User}@{to.Server}"
        text = message.conversation or message.extendedTextMessage.text or None
        mentions = list(message.extendedTextMessage.contextInfo.mentionedJID) or None
        # The whole message too, as Go would get it (tests decode it with neonize's own classes).
        whole = base64.b64encode(message.SerializeToString()).decode()
        summary = message_summary(message)
        self._record("send_message", to=target, text=text, mentions=mentions, **summary, message=whole)
        if self._send_errors:
            raise self._nz.NeonizeError(self._send_errors.pop(0))
        return self._nz.proto.SendResponse(ID="3EB0" + secrets.token_hex(8).upper(), Timestamp=int(time.time()))

    async def upload(self, binary: bytes, media_type: Any = None) -> Any:
        """neonize's own signature and answer (an UploadResponse), as whatsmeow's Upload fills it: a CDN path of its
        own (here made from the file's SHA-256, so it is the same every time), a media key, and the SHA-256 of the
        file and of its encrypted form (here the file's with the key prepended: nothing is encrypted)."""
        self._fail_if_told("upload")
        digest = hashlib.sha256(binary).hexdigest()
        key = hashlib.sha256(b"media key " + binary).digest()
        direct_path = f"/v/t62.7118-24/replay-{digest[:32]}.enc"
        self._record("upload", media_type=media_type.name, sha256=digest, length=len(binary), direct_path=direct_path)
        return self._nz.proto.UploadResponse(
            url="https://mmg.whatsapp.net" + direct_path,
            DirectPath=direct_path,
            MediaKey=key,
            FileEncSHA256=hashlib.sha256(key + binary).digest(),
            FileSHA256=hashlib.sha256(binary).digest(),
            FileLength=len(binary),
        )

    async def mark_read(
        self, *message_ids: str, chat: Any, sender: Any, receipt: Any, timestamp: int | None = None
    ) -> None:
        # neonize's own signature (neonize.aioze.client.NewAClient.mark_read); the JIDs are Neonize_pb2.JID.
        self._record(
            "mark_read",
            message_ids=list(message_ids),
            chat=self._text(chat),
            sender=self._text(sender),
            receipt=receipt.name,
        )
        self._fail_if_told("mark_read")

    async def send_chat_presence(self, jid: Any, state: Any, media: Any) -> None:
        # neonize's own signature; state and media are its ChatPresence and ChatPresenceMedia enums.
        self._record("send_chat_presence", jid=self._text(jid), state=state.name, media=media.name)
        self._fail_if_told("send_chat_presence")

    async def is_on_whatsapp(self, *numbers: str) -> Any:
        # neonize's own signature and answer: a sequence of Neonize_pb2.IsOnWhatsAppResponse.
        self._record("is_on_whatsapp", numbers=list(numbers))
        self._fail_if_told("is_on_whatsapp")
        known = self.header.get("on_whatsapp") or {}
        answers = []
        for number in numbers:
            jid = known.get("+" + number.removeprefix("+"))
            answer = self._nz.proto.IsOnWhatsAppResponse(Query=number, IsIn=jid is not None)
            answer.JID.CopyFrom(self._jid(jid or number.removeprefix("+") + "@s.whatsapp.net"))
            answers.append(answer)
        return answers

    async def build_reaction(self, chat: Any, sender: Any, message_id: str, reaction: str) -> Any:
        """As whatsmeow's BuildReaction and BuildMessageKey do it (Go, so not run here): the key is ours (fromMe)
        unless the sender is someone else, who is then named as the participant outside 1:1 chats."""
        self._record("build_reaction", chat=self._text(chat), sender=self._text(sender), id=message_id)
        own = self.header.get("me") or ""
        key = self._nz.MessageKey(fromMe=True, ID=message_id, remoteJID=self._text(chat))
        if sender.User and sender.User != own.partition("@")[0].partition(":")[0]:
            key.fromMe = False
            if chat.Server not in ("s.whatsapp.net", "lid"):
                key.participant = self._text(sender)
        reacted = self._nz.e2e.ReactionMessage(key=key, text=reaction, senderTimestampMS=int(time.time() * 1000))
        return self._nz.e2e.Message(reactionMessage=reacted)

    async def edit_message(self, chat: Any, message_id: str, new_message: Any) -> Any:
        # neonize's own code path: its builder, then send_message.
        from neonize.builder import build_edit

        return await self.send_message(chat, build_edit(chat, message_id, new_message))

    async def revoke_message(self, chat: Any, sender: Any, message_id: str) -> Any:
        from neonize.builder import build_revoke

        return await self.send_message(chat, build_revoke(chat, sender, message_id, (await self.get_me()).JID))

    def _group(self, group: dict[str, Any]) -> Any:
        info = self._nz.proto.GroupInfo(GroupCreated=float(group.get("created", 0)))
        info.JID.CopyFrom(self._jid(str(group["jid"])))
        info.GroupName.Name = str(group.get("name") or "")
        info.GroupTopic.Topic = str(group.get("topic") or "")
        for member in group.get("participants") or []:
            participant = info.Participants.add(IsAdmin=bool(member.get("admin")))
            participant.JID.CopyFrom(self._jid(str(member["jid"])))
            if member.get("phone"):
                participant.PhoneNumber.CopyFrom(self._jid(str(member["phone"]).removeprefix("+") + "@s.whatsapp.net"))
        return info

    async def get_joined_groups(self) -> Any:
        self._record("get_joined_groups")
        self._fail_if_told("get_joined_groups")
        return [self._group(group) for group in self.header.get("groups") or []]

    async def get_group_info(self, jid: Any) -> Any:
        wanted = self._text(jid)
        self._record("get_group_info", jid=wanted)
        self._fail_if_told("get_group_info")
        for group in self.header.get("groups") or []:
            if group["jid"] == wanted:
                return self._group(group)
        # whatsmeow's getGroupInfo turns the server's 403 into ErrNotInGroup.
        raise self._nz.NeonizeError("failed to get group info: you're not participating in that group")

    async def reject_call(self, call_from: Any, call_id: str) -> None:
        # neonize's own signature: the caller's JID as the offer delivered it, and the call's id.
        self._record("reject_call", call_from=self._text(call_from), call_id=call_id)
        self._fail_if_told("reject_call")

    async def get_pn_from_lid(self, jid: Any) -> Any:
        lid = f"{jid.User}@{jid.Server}"
        self._record("get_pn_from_lid", lid=lid)
        phone = (self.header.get("lid_map") or {}).get(lid)
        if not phone:
            raise self._nz.NeonizeError(f"no phone number known for {lid}")
        return self._jid(str(phone) if "@" in str(phone) else str(phone).removeprefix("+") + "@s.whatsapp.net")

    async def decrypt_poll_vote(self, message: Any) -> Any:
        message_id = message.Info.ID
        self._record("decrypt_poll_vote", message_id=message_id)
        names = (self.header.get("poll_votes") or {}).get(message_id)
        if names is None:
            raise self._nz.NeonizeError(f"failed to decrypt poll vote {message_id}")
        return self._nz.e2e.PollVoteMessage(selectedOptions=[hashlib.sha256(str(n).encode()).digest() for n in names])

    async def download_any(self, message: Any, path: str | None = None) -> bytes | None:
        # neonize's own signature: the waE2E Message holding the media; with `path`, the bytes are written there.
        from neonize.exc import DownloadError

        body = next((value for field, value in message.ListFields() if hasattr(value, "directPath")), None)
        direct_path = str(body.directPath) if body is not None else ""
        self._record("download_any", direct_path=direct_path)
        self._fail_if_told("download_any")
        source = (self.header.get("downloads") or {}).get(direct_path)
        if source is None:
            raise DownloadError("download failed with status code 404")  # whatsmeow's text for an expired CDN copy
        data = await asyncio.to_thread(Path(source).read_bytes)
        if path:
            await asyncio.to_thread(Path(path).write_bytes, data)
            return None
        return data

    async def PairPhone(self, phone: str, **_options: Any) -> str:
        self._record("pair_phone", phone=phone)
        return "REPL4Y00"

    async def logout(self) -> None:
        self._record("logout")

    async def disconnect(self) -> None:
        self._record("disconnect")

    async def stop(self) -> None:
        self._record("stop")
        self._stop.set()
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)

    async def _answer(self, value: bool) -> bool:
        return value

    @property
    def is_connected(self) -> Any:
        return self._answer(self.connected and not self._stop.is_set())

    @property
    def is_logged_in(self) -> Any:
        return self._answer(bool(self.header.get("me")) and not self._stop.is_set())


class ReplayBackend(NeonizeBackend):
    """NeonizeBackend with the Go client replaced by ReplayClient; everything else is the real backend."""

    def __init__(
        self,
        database_url: str,
        emit: Emit,
        intake: Intake,
        *,
        replay_file: str | None,
        calls_file: str | None = None,
        log_level: str = "INFO",
    ) -> None:
        # Both from the web process's settings (WHATSAPP_REPLAY_FILE, WHATSAPP_REPLAY_CALLS).
        self._replay_path = Path(replay_file or "")
        self._calls_path = calls_file
        if not self._replay_path.is_file():
            raise BackendError(
                f"WHATSAPP_REPLAY_FILE {str(self._replay_path)!r} is not a readable file", permanent=True
            )
        super().__init__(database_url, emit, intake, log_level=log_level)

    def _make_client(self) -> Any:
        return ReplayClient(self._nz, self._replay_path, self._calls_path)
