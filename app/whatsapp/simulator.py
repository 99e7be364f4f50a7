"""A simulated WhatsApp behind the same worker protocol, so everything above the worker runs for real without a phone.

It behaves like whatsmeow wherever it models the same thing:
- the device lives in Postgres (table simulator_devices): once paired, a restart reconnects without pairing;
- the simulated server holds what it has for the device (table simulator_inbox) until the worker takes it, and then
  it is gone: whatsmeow acknowledges a message as soon as it reaches the library, so WhatsApp never redelivers it;
- after a dropped connection the simulated library reconnects by itself (whatsmeow reconnects at once after a
  connection that had succeeded) and the offline backlog arrives right away, in the same worker;
- what it takes goes through the worker's intake, so it waits, like whatsmeow, while too much is unstored.

It is driven through the `simulate` command (the API's /api/simulator/* routes): pair, incoming (every kind of event
the product delivers), receipt, disconnect, send_failures, action_failures (the next calls of one action fail),
actions (what the simulated server was asked to do besides sending: read receipts, ...), crash (dies like a Go
panic) and hang.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import signal
import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from app.db.database import CONNECTION_ERRORS, describe
from app.phone import group_jid
from app.times import utcnow
from app.whatsapp import backend as events
from app.whatsapp import samples
from app.whatsapp.backend import WHATSAPP_QR_SECONDS, Backend, BackendError, Emit
from app.whatsapp.intake import Intake
from app.whatsapp.media import download_failed, failed, hand_over, too_large

log = logging.getLogger(__name__)

HANDSHAKE_SECONDS = 0.05  # a stored device "logs in" after this, standing in for WhatsApp's own handshake
RECONNECT_SECONDS = 0.2  # the simulated library's own reconnect after a drop (whatsmeow: at once, then 2 s, 4 s ...)
INBOX_BATCH = 100  # server rows taken per round trip
DEFAULT_PHONE = "+15550001111"
DEFAULT_PUSH_NAME = "Simulated Phone"
BACKLOG_SENDER = "+15550009999"
ACTIONS_KEPT = 1000  # the simulated server's record of actions (`actions`), newest kept
# WhatsApp answers too many number look-ups with a rate limit (whatsmeow: "info query returned status 429:
# rate-overlimit"); the simulated server allows this many numbers a minute.
CHECKS_PER_MINUTE = 60
RATE_LIMITED = "info query returned status 429: rate-overlimit"
NOT_IN_GROUP = "you're not participating in that group"  # whatsmeow's ErrNotInGroup

# `type` of a simulated incoming item -> the backend event it becomes (the rest are message types).
EVENT_TYPES = {
    "edit": events.EDITED,
    "delete": events.DELETED,
    "reaction": events.REACTION,
    "poll_vote": events.POLL_VOTE,
    "undecryptable": events.UNDECRYPTABLE,
    "call": events.CALL,
    "status": events.STATUS_POST,
}

TAKE_INBOX = "SELECT id, name, data FROM simulator_inbox ORDER BY id LIMIT $1"
DELETE_TAKEN = "DELETE FROM simulator_inbox WHERE id = ANY($1::bigint[])"
ACCEPT = "INSERT INTO simulator_inbox (name, data) SELECT * FROM unnest($1::text[], $2::jsonb[])"


def now_iso() -> str:
    return utcnow().isoformat()


def phone_to_jid(phone: str) -> str:
    return phone.removeprefix("+") + "@s.whatsapp.net"


def message_id() -> str:
    return "3EB0" + secrets.token_hex(8).upper()  # the shape of a WhatsApp Web message id


def incoming_item(args: dict[str, Any], chat: str, account: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """One simulated item as the backend event a real one would become (see app/whatsapp/backend.py)."""
    kind = str(args.get("type") or "text")
    from_me = bool(args.get("from_me")) and account is not None
    # Typed on the account's phone: the account is the sender (`from` names the contact, or the group, it went to).
    sender = str(account["phone"]) if from_me and account else str(args["from"])
    default_name = str(account.get("push_name") or DEFAULT_PUSH_NAME) if from_me and account else "Simulated Contact"
    common = {
        "message_id": str(args.get("message_id") or message_id()),
        "chat": chat,
        "from": sender,
        "sender_jid": str(account["jid"]) if from_me and account else phone_to_jid(sender),
        "push_name": args.get("push_name") or default_name,
        "timestamp": now_iso(),
        "is_group": chat.endswith("@g.us"),
        "is_from_me": from_me,
        "raw": None,
    }
    target = str(args.get("target_id") or "")
    if kind == "call":
        video = bool(args.get("video"))
        return events.CALL, {**common, "call_id": common["message_id"], "video": video}
    name = EVENT_TYPES.get(kind, events.MESSAGE)
    if name == events.EDITED:
        return name, {**common, "target_id": target, "text": args.get("text")}
    if name == events.DELETED:
        return name, {**common, "target_id": target}
    if name == events.REACTION:
        return name, {**common, "target_id": target, "emoji": str(args.get("emoji") or "")}
    if name == events.POLL_VOTE:
        selected = [str(option) for option in args.get("selected") or []]
        hashes = [hashlib.sha256(option.encode()).hexdigest() for option in selected]
        return name, {**common, "target_id": target, "selected_hashes": hashes, "selected": None}
    if name == events.UNDECRYPTABLE:
        return name, common
    message = {**common, "type": kind, "text": args.get("text"), "media": args.get("media"), "poll": None}
    if kind == "poll":
        options = [str(option) for option in args.get("options") or []]
        message["poll"] = {"question": args.get("text"), "options": options, "selectable_count": 1}
    if name == events.STATUS_POST:
        message.update(chat="status@broadcast", type="text", is_group=False)
    return name, message


class SimulatorBackend(Backend):
    def __init__(
        self, database_url: str, emit: Emit, intake: Intake, *, qr_seconds: Sequence[float] = WHATSAPP_QR_SECONDS
    ) -> None:
        super().__init__(database_url, emit, intake)
        self.qr_seconds = list(qr_seconds)  # SIMULATOR_QR_SECONDS, from the web process's settings
        self.account: dict[str, Any] | None = None
        self.connected = False
        self.pairing = False
        self.failures: list[dict[str, Any]] = []  # injected failures for the next sends (see simulate)
        self.action_failures: dict[str, list[dict[str, Any]]] = {}  # the same for other actions, by action name
        self.actions: list[dict[str, Any]] = []  # what the simulated server was asked to do, oldest first
        self.groups: dict[str, dict[str, Any]] | None = None  # `groups`: the account's groups (None: not modelled)
        self.absent: set[str] = set()  # phone numbers with no WhatsApp account (`numbers`); every other has one
        self._checked: list[float] = []  # when each number was looked up, for the rate limit
        self._tasks: set[asyncio.Task[None]] = set()
        self._inbox_waiting = asyncio.Event()  # the server has something for the device
        self._inbox: asyncpg.Connection | None = None  # the simulated server's queue, one connection
        self._server_lock = asyncio.Lock()
        self._inbox_task: asyncio.Task[None] | None = None
        self._ballast: list[bytes] = []  # `grow`: memory held on purpose, for the watchdog

    async def _connection(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.database_url)

    async def connect(self) -> None:
        try:
            connection = await self._connection()
            try:
                row = await connection.fetchrow("SELECT jid, push_name FROM simulator_devices LIMIT 1")
            finally:
                await connection.close()
        except CONNECTION_ERRORS as error:
            # Like whatsmeow's "failed to upgrade database": this attempt is over, the supervisor backs off.
            self.emit(events.DISCONNECTED, {"reason": "dial_failed", "detail": f"device store: {describe(error)}"})
            return
        if row is not None:
            self._spawn(self._log_in(dict(row), HANDSHAKE_SECONDS), "simulator-login")
        else:
            self.pairing = True
            self._spawn(self._qr_round(), "simulator-qr-round")

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _log_in(self, account: dict[str, Any], after: float) -> None:
        await asyncio.sleep(after)
        self._set_connected(account)

    def _set_connected(self, account: dict[str, Any]) -> None:
        self.account = {**account, "phone": "+" + str(account["jid"]).split("@")[0]}
        self.connected, self.pairing = True, False
        self.emit(events.CONNECTED, {"jid": account["jid"], "push_name": account["push_name"]})
        self._inbox_waiting.set()
        if self._inbox_task is None or self._inbox_task.done():
            self._inbox_task = asyncio.create_task(self._take_inbox(), name="simulator-inbox")

    async def _server(self, statement: str, *args: Any) -> Any:
        """One statement on the simulated server's queue, over one connection kept for the worker's life."""
        async with self._server_lock:  # an asyncpg connection runs one statement at a time
            if self._inbox is None or self._inbox.is_closed():
                self._inbox = await self._connection()
            return await self._inbox.fetch(statement, *args)

    async def _take_inbox(self) -> None:
        """While connected: take what the server holds, in order; each row is gone once the worker has it."""
        try:
            while self.connected:
                self._inbox_waiting.clear()  # before the read: an item accepted after it sets it again
                rows = await self._server(TAKE_INBOX, INBOX_BATCH)
                if not rows:
                    await self._inbox_waiting.wait()
                    continue
                taken = []
                for row in rows:
                    if not self.connected:
                        break
                    data = json.loads(row["data"])
                    if row["name"] == events.CALL:  # declined as the offer arrives, as the neonize backend does
                        data["rejected"] = self._reject(data) if self.reject_calls else False
                    if row["name"] == events.MESSAGE:  # media is downloaded as it arrives, as the neonize backend does
                        data["media"] = self._download(data)
                    await self.intake.deliver(str(row["name"]), data)
                    taken.append(row["id"])
                await self._server(DELETE_TAKEN, taken)
        except CONNECTION_ERRORS as error:
            # The server is still holding them; the next connection (or worker) takes them.
            log.warning("simulated server unreachable: %s", describe(error))

    def _download(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """The media of a simulated message, "downloaded": a generated file of its type (app/whatsapp/samples.py),
        with what the sender gave (`media`: mimetype, file_name, and a `size`: over MEDIA_MAX_BYTES it stands for a
        file too large to download; an image is made that large, of random pixels), handed to the parent
        like the neonize backend's. The `download` action failures (action_failures) make the next downloads fail
        with their error, classified as whatsmeow's are (a 5xx or a network error is retried later, a 404 or 410 is
        an expired CDN copy)."""
        given_media = message.get("media")
        kind = str(message.get("type"))
        if kind not in samples.SAMPLES:
            return given_media if isinstance(given_media, dict) else None
        given: dict[str, Any] = given_media if isinstance(given_media, dict) else {}
        size = given.get("size") if isinstance(given.get("size"), int) else None
        _, mimetype, file_name = samples.SAMPLES[kind]
        media = {"mimetype": given.get("mimetype") or mimetype, "size": size, "file_name": given.get("file_name")}
        media["file_name"] = media["file_name"] or file_name
        if (problem := too_large(size, self.media_max_bytes)) is not None:
            return failed(media, problem)  # before making it: a sample that large would only be thrown away
        data = samples.make(kind, size)
        media["size"] = len(data) if size is None else size
        failures = self.action_failures.get("download")
        if failures:
            return download_failed(media, str(failures.pop(0)["error"]))
        self._record({"action": "download", "message_id": message.get("message_id"), "at": now_iso()})
        return hand_over(media, data, hashlib.sha256(data).digest(), self.media_dir, self.media_max_bytes)

    async def download_media(self, message: dict[str, Any]) -> dict[str, Any]:
        if not self.connected:
            raise BackendError("websocket not connected")
        media = message.get("media")
        clean = {key: value for key, value in media.items() if key in ("mimetype", "size", "file_name")} if isinstance(
            media, dict
        ) else {}  # fmt: skip
        found = self._download({**message, "media": clean})
        if found is None:
            return failed(clean, "download failed: the message names no media to download")
        return found

    async def _accept(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        """The simulated server takes items for the device; it hands them over while the device is connected."""
        await self._server(ACCEPT, [name for name, _ in items], [json.dumps(data) for _, data in items])
        self._inbox_waiting.set()

    async def _qr_round(self) -> None:
        for seconds in self.qr_seconds:
            if not self.pairing:
                return
            payload = f"2@{secrets.token_urlsafe(30)},{secrets.token_urlsafe(32)},{secrets.token_urlsafe(32)},sim"
            self.emit(events.QR, {"payload": payload})
            await asyncio.sleep(seconds)
        if self.pairing:
            self.pairing = False
            self.emit(events.PAIRING_EXPIRED, {})

    async def pair_phone(self, phone: str) -> str:
        if not self.pairing:
            raise BackendError("not pairing: the device is already linked or the round is over")
        alphabet = "ABCDEFGHJKLMNPQRSTVWXYZ23456789"
        return "".join(secrets.choice(alphabet) for _ in range(8))

    async def _refuse_or_delay(self, to: str) -> None:
        """What the simulated server makes of any send before it goes out: refused while not connected, to a group
        the account is not in, or as injected (send_failures), or answered late (an injected delay)."""
        if not self.connected:
            raise BackendError("websocket not connected")
        if to.endswith("@g.us") and self.groups is not None and to not in self.groups:
            raise BackendError(NOT_IN_GROUP, permanent=True)
        if self.failures:
            failure = self.failures.pop(0)
            if failure.get("delay"):
                await asyncio.sleep(float(failure["delay"]))  # WhatsApp is slow to answer; the send goes out
            else:
                raise BackendError(str(failure["error"]), permanent=bool(failure["permanent"]))

    async def send_text(self, to: str, text: str, mentions: list[str] | None = None) -> dict[str, Any]:
        await self._refuse_or_delay(to)
        log.info("simulated send to %s (%d characters)", to, len(text))
        sent = {"message_id": message_id(), "timestamp": now_iso()}
        if mentions:  # kept among the server's actions, so that what a mention named can be seen
            self._record({"action": "send", "to": to, "text": text, "mentions": mentions, "at": sent["timestamp"]})
        return sent

    async def send_message(
        self, to: str, content: dict[str, Any], data: bytes | None, reply: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Any other message: kept among the server's actions with what it carried (a file by its SHA-256 and size,
        never its bytes), so that tests and the operator see what went out."""
        await self._refuse_or_delay(to)
        sent = {"message_id": message_id(), "timestamp": now_iso()}
        action: dict[str, Any] = {"action": "send_message", "to": to, "content": content, "reply": reply}
        if data is not None:
            action.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        log.info("simulated %s send to %s", content.get("type"), to)
        self._record({**action, "message_id": sent["message_id"], "at": sent["timestamp"]})
        return sent

    def _act(self, action: str, **details: Any) -> None:
        """An action the simulated server takes: refused while not connected, or as injected; else recorded."""
        if not self.connected:
            raise BackendError("websocket not connected")
        failures = self.action_failures.get(action)
        if failures:
            failure = failures.pop(0)
            raise BackendError(str(failure["error"]), permanent=bool(failure["permanent"]))
        self._record({"action": action, **details, "at": now_iso()})

    def _record(self, action: dict[str, Any]) -> None:
        """Keep an action among the simulated server's (`actions`), the newest ACTIONS_KEPT of them."""
        self.actions.append(action)
        del self.actions[:-ACTIONS_KEPT]

    def _reject(self, call: dict[str, Any]) -> bool:
        try:
            self._act("reject_call", call_id=call["call_id"], caller=call["sender_jid"])
        except BackendError as error:
            log.warning("could not reject call %s: %s", call["call_id"], error)
            return False
        return True

    async def mark_read(self, chat: str, sender: str, message_ids: list[str]) -> dict[str, Any]:
        if not message_ids:
            raise BackendError("no message ids to mark read", permanent=True)
        self._act("mark_read", chat=chat, sender=sender, message_ids=list(message_ids))
        return {"chat": chat, "message_ids": list(message_ids)}

    async def send_presence(self, chat: str, state: str) -> dict[str, Any]:
        if state not in events.PRESENCE_STATES:
            raise BackendError(f"unknown presence {state!r}", permanent=True)
        self._act("presence", chat=chat, state=state)
        return {"chat": chat, "state": state}

    async def check_numbers(self, phones: list[str]) -> dict[str, Any]:
        now = time.monotonic()
        self._checked = [at for at in self._checked if at > now - 60]
        if len(self._checked) + len(phones) > CHECKS_PER_MINUTE:
            raise BackendError(RATE_LIMITED)
        self._act("check_numbers", phones=list(phones))
        self._checked += [now] * len(phones)
        results = []
        for phone in phones:
            on = phone not in self.absent
            results.append({"phone": phone, "on_whatsapp": on, "jid": phone_to_jid(phone) if on else None})
        return {"results": results}

    async def send_reaction(self, chat: str, target_id: str, sender: str | None, emoji: str) -> dict[str, Any]:
        self._act("reaction", chat=chat, target_id=target_id, sender=sender, emoji=emoji)
        return {"message_id": message_id(), "timestamp": now_iso()}

    async def edit_message(self, chat: str, target_id: str, text: str) -> dict[str, Any]:
        self._act("edit", chat=chat, target_id=target_id, text=text)
        return {"message_id": message_id(), "timestamp": now_iso()}

    async def revoke_message(self, chat: str, target_id: str, sender: str | None) -> dict[str, Any]:
        self._act("revoke", chat=chat, target_id=target_id, sender=sender)
        return {"message_id": message_id(), "timestamp": now_iso()}

    def _group(self, group: dict[str, Any], *, with_participants: bool) -> dict[str, Any]:
        members = list(group.get("participants") or [])
        admins = set(group.get("admins") or [])
        answer = {
            "jid": group["jid"],
            "name": group.get("name"),
            "topic": group.get("topic"),
            "owner": phone_to_jid(sorted(admins)[0]) if admins else None,
            "created_at": None,
            "announce": bool(group.get("announce")),
            "participant_count": len(members),
        }
        if with_participants:
            answer["participants"] = [
                {
                    "jid": phone_to_jid(phone),
                    "phone": phone,
                    "lid": None,
                    "is_admin": phone in admins,
                    "is_super_admin": False,
                }
                for phone in members
            ]
        return answer

    async def joined_groups(self) -> dict[str, Any]:
        self._act("joined_groups")
        groups = (self.groups or {}).values()
        return {"groups": [self._group(group, with_participants=False) for group in groups]}

    async def group_info(self, jid: str) -> dict[str, Any]:
        self._act("group_info", jid=jid)
        group = (self.groups or {}).get(jid)
        if group is None:
            raise BackendError(NOT_IN_GROUP, permanent=True)  # whatsmeow: the server's 403 becomes ErrNotInGroup
        return self._group(group, with_participants=True)

    async def logout(self) -> None:
        if self.account is None:
            raise BackendError("not logged in")
        await self._forget_device()
        self.connected = False

    async def _forget_device(self) -> None:
        connection = await self._connection()
        try:
            await connection.execute("DELETE FROM simulator_devices")
        finally:
            await connection.close()
        self.account = None

    async def status(self) -> dict[str, Any]:
        return {"connected": self.connected, "logged_in": self.account is not None}

    async def stop(self) -> None:
        self.pairing = self.connected = False
        self.intake.release()
        self._inbox_waiting.set()
        for task in list(self._tasks):
            task.cancel()
        if self._inbox_task is not None:
            # It ends after the item in hand: rows handed to the worker are deleted, the rest stay on the server.
            await asyncio.wait({self._inbox_task}, timeout=2.0)
        if self._inbox is not None:
            self._inbox.terminate()  # a statement in flight (Postgres down) must not hold the stop up

    async def simulate(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        """Drive the simulated WhatsApp; the API validated `args` already."""
        if action == "pair":
            return await self._pair(
                str(args.get("phone") or DEFAULT_PHONE), str(args.get("push_name") or DEFAULT_PUSH_NAME)
            )
        if action == "incoming":
            return await self._incoming(args)
        if action == "receipt":
            return await self._receipt(args)
        if action == "disconnect":
            return await self._disconnect(str(args.get("reason", "connection_lost")), args)
        if action == "send_failures":
            failure = {
                "error": args.get("error") or "simulated failure",
                "permanent": bool(args.get("permanent")),
                "delay": float(args.get("delay") or 0),  # instead of failing: answer after this many seconds
            }
            self.failures = [dict(failure) for _ in range(int(args.get("count", 1)))]
            return {"failing_sends": len(self.failures)}
        if action == "action_failures":
            failure = {"error": args.get("error") or "simulated failure", "permanent": bool(args.get("permanent"))}
            name = str(args["name"])
            self.action_failures[name] = [dict(failure) for _ in range(int(args.get("count", 1)))]
            return {"name": name, "failing": len(self.action_failures[name])}
        if action == "groups":
            self.groups = {group_jid(str(g["jid"])): {**g, "jid": group_jid(str(g["jid"]))} for g in args["groups"]}
            return {"groups": sorted(self.groups)}
        if action == "numbers":
            self.absent = {str(phone) for phone in args.get("absent") or []}
            return {"absent": sorted(self.absent)}
        if action == "actions":
            return {"actions": list(self.actions)}
        if action == "grow":
            # Memory that is really resident (written, not just reserved), as a leaking library would hold.
            self._ballast.append(b"\x01" * (int(args["mb"]) * 2**20))
            return {"held_mb": sum(len(block) for block in self._ballast) // 2**20}
        if action == "crash":
            log.critical("simulated Go panic: killing the worker process")
            os.kill(os.getpid(), signal.SIGABRT)  # exit status 134, like neonize's uncatchable panics
        if action == "hang":
            log.warning("simulated hang: the worker stops answering")
            time.sleep(3600)  # noqa: ASYNC251 - blocks the event loop on purpose, as a stuck Go call would
        raise BackendError(f"unknown simulator action {action!r}", permanent=True)

    async def _pair(self, phone: str, push_name: str) -> dict[str, Any]:
        if not self.pairing:
            raise BackendError("no pairing round is open (already paired, or the QR round is over)", permanent=True)
        account = {"jid": phone_to_jid(phone), "push_name": push_name}
        connection = await self._connection()
        try:
            await connection.execute(
                "INSERT INTO simulator_devices (jid, push_name) VALUES ($1, $2)", account["jid"], push_name
            )
        finally:
            await connection.close()
        self._set_connected(account)
        return account

    async def _incoming(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.account is None:
            raise BackendError("the simulated account is not linked", permanent=True)
        group = args.get("group")
        chat = group_jid(str(group)) if group else phone_to_jid(str(args["from"]))
        count = int(args.get("count") or 1)  # a batch: `count` items in one command (benchmarks, load tests)
        items = [incoming_item(args, chat, self.account) for _ in range(count)]
        await self._accept(items)
        ids = [str(data.get("message_id")) for _, data in items]
        if "count" not in args:
            return {"message_id": ids[0], "chat": items[0][1]["chat"]}
        return {"message_ids": ids, "chat": chat}

    async def _receipt(self, args: dict[str, Any]) -> dict[str, Any]:
        # In a group the receipt's chat is the group (its sender, the member who got or read it, is `from`).
        if args.get("group"):
            chat = group_jid(str(args["group"]))
        else:
            chat = phone_to_jid(str(args["from"])) if args.get("from") else str(args.get("chat", ""))
        receipt = {
            "chat": chat,
            "message_ids": [str(item) for item in args["message_ids"]],
            "status": str(args.get("status", "delivered")),
            "timestamp": now_iso(),
        }
        await self._accept([(events.RECEIPT, receipt)])
        return receipt

    async def _disconnect(self, reason: str, args: dict[str, Any]) -> dict[str, Any]:
        self.connected = False
        self._inbox_waiting.set()  # the inbox task notices the drop and ends
        if reason == "connection_lost":
            backlog = int(args.get("backlog") or 0)
            if backlog:  # held by the server before the drop is reported: the report may retire this worker
                sender = {"from": BACKLOG_SENDER, "text": "sent while the link was down"}
                chat = phone_to_jid(BACKLOG_SENDER)
                await self._accept([incoming_item(sender, chat, self.account) for _ in range(backlog)])
            self.emit(events.DISCONNECTED, {"reason": "connection_lost", "detail": "simulated"})
            if args.get("reconnect", True) and self.account is not None:
                account = {"jid": self.account["jid"], "push_name": self.account["push_name"]}
                self._spawn(self._log_in(account, RECONNECT_SECONDS), "simulator-reconnect")
        elif reason == "logged_out":
            await self._forget_device()  # whatsmeow deletes the device rows before it reports the logout
            self.emit(events.LOGGED_OUT, {"reason": "401: logged out from the phone (simulated)"})
        elif reason == "replaced":
            self.emit(events.REPLACED, {})
        elif reason == "banned":
            until = utcnow() + dt.timedelta(seconds=float(args.get("seconds", 3600)))
            self.emit(events.BANNED, {"until": until.isoformat(), "code": 101})
        elif reason == "silent":
            pass  # the link died and nothing said so: only the heartbeat's status check can notice
        elif reason == "outdated":
            self.emit(events.OUTDATED, {"detail": "405: client outdated (simulated)"})
        else:
            raise BackendError(f"unknown disconnect reason {reason!r}", permanent=True)
        return {"reason": reason}
