"""A simulated WhatsApp behind the same worker protocol, so everything above the worker runs for real without a phone.

Like whatsmeow, it keeps its "device" in Postgres (table simulator_devices): once paired, a restart reconnects without
pairing. It is driven through the `simulate` command (the API's /api/simulator/* routes): pair, incoming, receipt,
disconnect (connection_lost | logged_out | replaced | banned | outdated), crash (dies like a Go panic) and hang.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import secrets
import signal
import time
from typing import Any

import asyncpg

from app.db.database import CONNECTION_ERRORS, describe
from app.times import utcnow
from app.whatsapp import backend as events
from app.whatsapp.backend import WHATSAPP_QR_SECONDS, Backend, BackendError, Emit

log = logging.getLogger(__name__)

HANDSHAKE_SECONDS = 0.05  # a stored device "logs in" after this, standing in for WhatsApp's own handshake
DEFAULT_PHONE = "+15550001111"
DEFAULT_PUSH_NAME = "Simulated Phone"


def now_iso() -> str:
    return utcnow().isoformat()


def phone_to_jid(phone: str) -> str:
    return phone.removeprefix("+") + "@s.whatsapp.net"


def message_id() -> str:
    return "3EB0" + secrets.token_hex(8).upper()  # the shape of a WhatsApp Web message id


class SimulatorBackend(Backend):
    def __init__(self, database_url: str, emit: Emit) -> None:
        super().__init__(database_url, emit)
        # The web process validated SIMULATOR_QR_SECONDS (Settings) and passes it to this worker process.
        configured = os.environ.get("SIMULATOR_QR_SECONDS")
        self.qr_seconds = [float(part) for part in configured.split(",")] if configured else list(WHATSAPP_QR_SECONDS)
        self.account: dict[str, Any] | None = None
        self.connected = False
        self.pairing = False
        self.failures: list[dict[str, Any]] = []  # injected failures for the next sends (see simulate)
        self._tasks: set[asyncio.Task[None]] = set()

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
            self._spawn(self._log_in(dict(row)), "simulator-login")
        else:
            self.pairing = True
            self._spawn(self._qr_round(), "simulator-qr-round")

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _log_in(self, account: dict[str, Any]) -> None:
        await asyncio.sleep(HANDSHAKE_SECONDS)
        self._set_connected(account)

    def _set_connected(self, account: dict[str, Any]) -> None:
        self.account, self.connected, self.pairing = account, True, False
        self.emit(events.CONNECTED, {"jid": account["jid"], "push_name": account["push_name"]})

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

    async def send_text(self, to: str, text: str) -> dict[str, Any]:
        if not self.connected:
            raise BackendError("websocket not connected")
        if self.failures:
            failure = self.failures.pop(0)
            raise BackendError(str(failure["error"]), permanent=bool(failure["permanent"]))
        log.info("simulated send to %s (%d characters)", to, len(text))
        return {"message_id": message_id(), "timestamp": now_iso()}

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
        for task in list(self._tasks):
            task.cancel()

    async def simulate(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        """Drive the simulated WhatsApp; the API validated `args` already."""
        if action == "pair":
            return await self._pair(
                str(args.get("phone") or DEFAULT_PHONE), str(args.get("push_name") or DEFAULT_PUSH_NAME)
            )
        if action == "incoming":
            return self._incoming(args)
        if action == "receipt":
            return self._receipt(args)
        if action == "disconnect":
            return await self._disconnect(str(args.get("reason", "connection_lost")), args)
        if action == "send_failures":
            self.failures = [
                {"error": args.get("error") or "simulated failure", "permanent": bool(args.get("permanent"))}
                for _ in range(int(args.get("count", 1)))
            ]
            return {"failing_sends": len(self.failures)}
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

    def _incoming(self, args: dict[str, Any]) -> dict[str, Any]:
        if not self.connected:
            raise BackendError("the simulated account is not connected", permanent=True)
        sender = str(args["from"])
        group = args.get("group")
        chat = f"{group}@g.us" if group else phone_to_jid(sender)
        count = int(args.get("count") or 1)  # a batch: `count` messages in one command (benchmarks, load tests)
        ids = []
        for _ in range(count):
            message = {
                "message_id": str(args.get("message_id") or message_id()),
                "chat": chat,
                "from": sender,
                "sender_jid": phone_to_jid(sender),
                "push_name": args.get("push_name") or "Simulated Contact",
                "timestamp": now_iso(),
                "is_group": bool(group),
                "is_from_me": bool(args.get("from_me")),  # typed on the account's own phone
                "type": str(args.get("type") or "text"),
                "text": args.get("text"),
                "media": args.get("media"),
            }
            self.emit(events.MESSAGE, message)
            ids.append(message["message_id"])
        if "count" not in args:
            return {"message_id": ids[0], "chat": chat}
        return {"message_ids": ids, "chat": chat}

    def _receipt(self, args: dict[str, Any]) -> dict[str, Any]:
        receipt = {
            "chat": phone_to_jid(str(args["from"])) if args.get("from") else str(args.get("chat", "")),
            "message_ids": [str(item) for item in args["message_ids"]],
            "status": str(args.get("status", "delivered")),
            "timestamp": now_iso(),
        }
        self.emit(events.RECEIPT, receipt)
        return receipt

    async def _disconnect(self, reason: str, args: dict[str, Any]) -> dict[str, Any]:
        self.connected = False
        if reason == "connection_lost":
            self.emit(events.DISCONNECTED, {"reason": "connection_lost", "detail": "simulated"})
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
