"""The real WhatsApp backend: one neonize (whatsmeow over FFI) client inside the worker process, its store in Postgres.

Owns the client's lifecycle and neonize's logging side effects; app/whatsapp/neonize_mapping.py translates its events.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import subprocess
import sys
import warnings
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from app.observability import report
from app.whatsapp.backend import (
    BANNED,
    CONNECTED,
    DISCONNECTED,
    LOGGED_OUT,
    MESSAGE,
    OUTDATED,
    PAIRING_EXPIRED,
    QR,
    RECEIPT,
    REPLACED,
    Backend,
    BackendError,
    Emit,
)
from app.whatsapp.neonize_mapping import (
    command_error,
    connect_failure_to_event,
    is_internal_message,
    iso_utc,
    jid_to_str,
    logged_out_to_dict,
    message_to_dict,
    receipt_to_dict,
    recipient,
    short,
    temporary_ban_to_dict,
    text_message,
)

log = logging.getLogger(__name__)

# No new QR and no Connected for this long after the last QR means the round is over (codes rotate every 60/20 s).
PAIRING_EXPIRY = 75.0
PAIR_WAIT = 20.0  # how long pair_phone waits for the websocket (the first QR) to come up
STOP_TIMEOUT = 3.0  # stop() can block ~60 s while a dial hangs; the parent SIGKILLs a worker that does not exit
# Go keys its client map by this id. neonize's default is the store name, i.e. the database URL with its password.
CLIENT_ID = "whatsapp-gateway"
DEVICE_NAME = "WhatsApp Gateway"  # what the phone lists under "Linked devices"

# ---------------------------------------------------------------------------------------------------------------------
# neonize import and logging


_neonize: SimpleNamespace | None = None


def load_neonize() -> SimpleNamespace:
    """Import neonize once, undoing what its import does to the root logger (logging.basicConfig on root)."""
    global _neonize
    root = logging.getLogger()
    if _neonize is None:
        handlers, level = list(root.handlers), root.level
        with warnings.catch_warnings():
            # Its import runs os.popen("uname -a") and never closes the pipe (ResourceWarnings); reaped below.
            warnings.simplefilter("ignore", ResourceWarning)
            from neonize.aioze.client import NewAClient
            from neonize.aioze.events import (
                ClientOutdatedEv,
                ConnectedEv,
                ConnectFailureEv,
                DisconnectedEv,
                KeepAliveRestoredEv,
                KeepAliveTimeoutEv,
                LoggedOutEv,
                MessageEv,
                PairStatusEv,
                ReceiptEv,
                StreamReplacedEv,
                TemporaryBanEv,
            )
            from neonize.exc import NeonizeError
            from neonize.proto import Neonize_pb2
            from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps
            from neonize.proto.waE2E import WAWebProtobufsE2E_pb2
            from neonize.utils.enum import ClientName, ClientType
            from neonize.utils.message import extract_text

            _reap_uname()
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        _neonize = SimpleNamespace(
            NewAClient=NewAClient,
            NeonizeError=NeonizeError,
            DeviceProps=DeviceProps,
            ClientName=ClientName,
            ClientType=ClientType,
            proto=Neonize_pb2,
            e2e=WAWebProtobufsE2E_pb2,
            extract_text=extract_text,
            events=SimpleNamespace(
                Connected=ConnectedEv,
                Disconnected=DisconnectedEv,
                LoggedOut=LoggedOutEv,
                StreamReplaced=StreamReplacedEv,
                ClientOutdated=ClientOutdatedEv,
                TemporaryBan=TemporaryBanEv,
                ConnectFailure=ConnectFailureEv,
                KeepAliveTimeout=KeepAliveTimeoutEv,
                KeepAliveRestored=KeepAliveRestoredEv,
                PairStatus=PairStatusEv,
                Message=MessageEv,
                Receipt=ReceiptEv,
            ),
        )
    # Someone may have imported neonize before us (basicConfig then ran earlier): drop its handler all the same.
    neonize_handler = getattr(sys.modules.get("neonize.utils.log"), "stream_handler", None)
    if neonize_handler is not None and neonize_handler in root.handlers:
        root.removeHandler(neonize_handler)
    return _neonize


def _reap_uname() -> None:
    """Reap the `uname -a` that neonize's import starts with os.popen and drops without closing.

    Dropped while running, it parks in subprocess's list of live children; the next Popen anywhere in the process
    then frees its pipe with a ResourceWarning (a test failure under pytest's warnings-as-errors)."""
    active: list[Any] = getattr(subprocess, "_active", None) or []
    for process in list(active):
        if getattr(process, "args", None) == "uname -a":
            with contextlib.suppress(Exception):
                process.wait(timeout=5)
                active.remove(process)
                if process.stdout is not None:
                    process.stdout.close()


def log_level() -> int:
    """LOG_LEVEL (default INFO) as a logging level; unknown names fall back to INFO."""
    level = logging.getLevelName(os.environ.get("LOG_LEVEL", "INFO").strip().upper())
    return level if isinstance(level, int) and level > 0 else logging.INFO


def configure_neonize_logging(level: int | None = None) -> None:
    level = log_level() if level is None else level
    # connect() hands this logger's level to Go; unset (NOTSET) makes whatsmeow log DEBUG lines across FFI.
    logging.getLogger("neonize.utils.log").setLevel(level)
    # Go's log lines come back as "whatsmeow.<module>" and "Whatsmeow.Database" records.
    for name in ("neonize", "whatsmeow", "Whatsmeow"):
        logging.getLogger(name).setLevel(level)
    # It warns on every connect that ffmpeg is missing; we never convert media.
    logging.getLogger("neonize.utils.ffmpeg").setLevel(logging.ERROR)


# ---------------------------------------------------------------------------------------------------------------------


class NeonizeBackend(Backend):
    """One neonize client for the life of the worker process: one connect(), at most one stop()."""

    def __init__(
        self,
        database_url: str,
        emit: Emit,
        *,
        pairing_expiry: float = PAIRING_EXPIRY,
        pair_wait: float = PAIR_WAIT,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        # whatsmeow uses Postgres only for names starting with "postgres"; anything else silently becomes a SQLite file.
        if not database_url.startswith("postgres"):
            raise BackendError("the WhatsApp store must be a postgres:// or postgresql:// URL", permanent=True)
        super().__init__(database_url, emit)
        self.pairing_expiry = pairing_expiry
        self.pair_wait = pair_wait
        self.stop_timeout = stop_timeout
        self._nz = load_neonize()
        configure_neonize_logging()  # before the client exists: connect() reads the level once
        props = self._nz.DeviceProps(os=DEVICE_NAME, platformType=self._nz.DeviceProps.CHROME)
        self._client: Any = self._nz.NewAClient(database_url, props=props, uuid=CLIENT_ID)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._stop_task: asyncio.Future[None] | None = None
        self._stopping = False
        self._session_up = False  # a Connected event arrived
        self._websocket_up = asyncio.Event()  # first QR or Connected: the socket is up, PairPhone may be used
        self._expiry: asyncio.TimerHandle | None = None
        self._expired = False
        # Serialises the quick calls that look the client up in Go's (unlocked) client map against Stop(), which
        # deletes it: get_me on a deleted client is a process-killing nil dereference.
        self._ffi_lock = asyncio.Lock()
        self._register_handlers()

    # -- events ---------------------------------------------------------------------------------------------------

    def _register_handlers(self) -> None:
        events = self._nz.events
        handlers = {
            events.Connected: self._on_connected,
            events.Disconnected: self._on_disconnected,
            events.LoggedOut: self._on_logged_out,
            events.StreamReplaced: self._on_stream_replaced,
            events.ClientOutdated: self._on_client_outdated,
            events.TemporaryBan: self._on_temporary_ban,
            events.ConnectFailure: self._on_connect_failure,
            events.KeepAliveTimeout: self._on_keepalive_timeout,
            events.KeepAliveRestored: self._on_keepalive_restored,
            events.PairStatus: self._on_pair_status,
            events.Message: self._on_message,
            events.Receipt: self._on_receipt,
        }
        for event_type, handler in handlers.items():
            self._client.event(event_type)(self._guarded(handler))
        self._client.event.qr(self._guarded(self._on_qr))
        # neonize passes the pairing round's outcome ("success", "timeout", "err-...") to this private, no-op method;
        # its instance attribute is what connect() hands to Go. It is our only early sign of an expired QR round.
        self._client._NewAClient__onLoginStatus = self._on_login_status

    def _guarded(self, handler: Any) -> Any:
        """neonize drops exceptions raised in handlers silently: log and report them instead."""

        async def guarded(_client: Any, event: Any) -> None:
            try:
                await handler(event)
            except Exception as error:
                log.exception("WhatsApp event handler %s failed", handler.__name__)
                report(error)

        return guarded

    def _emit(self, name: str, data: dict[str, Any]) -> None:
        try:
            self.emit(name, data)
        except Exception as error:
            log.exception("emitting %s failed", name)
            report(error)

    async def _on_qr(self, data: bytes | str) -> None:
        payload = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        self._websocket_up.set()
        self._arm_pairing_expiry()
        self._emit(QR, {"payload": payload})

    async def _on_connected(self, _ev: Any) -> None:
        self._session_up = True
        self._websocket_up.set()
        self._cancel_pairing_expiry()
        jid, push_name = await self._read_me()
        if not self._stopping:
            self._emit(CONNECTED, {"jid": jid, "push_name": push_name})

    async def _read_me(self) -> tuple[str | None, str | None]:
        async with self._ffi_lock:
            # get_me before connect() or after stop() is an uncatchable Go panic; after Connected it is safe.
            if self._stopping:
                return None, None
            device = await self._client.get_me()
        jid = jid_to_str(device.JID) if device.HasField("JID") else ""
        return jid or None, device.PushName or None

    async def _on_disconnected(self, _ev: Any) -> None:
        # Only unexpected drops arrive here; whatsmeow reconnects by itself and sends Connected again.
        self._emit(DISCONNECTED, {"reason": "connection_lost", "detail": None})

    async def _on_logged_out(self, ev: Any) -> None:
        self._session_up = False
        self._emit(LOGGED_OUT, logged_out_to_dict(ev))

    async def _on_stream_replaced(self, _ev: Any) -> None:
        self._emit(REPLACED, {})

    async def _on_client_outdated(self, _ev: Any) -> None:
        self._emit(OUTDATED, {"detail": None})

    async def _on_temporary_ban(self, ev: Any) -> None:
        self._emit(BANNED, temporary_ban_to_dict(ev, datetime.now(UTC)))

    async def _on_connect_failure(self, ev: Any) -> None:
        name, data = connect_failure_to_event(ev)
        log.warning("WhatsApp refused the connection: %s", data)
        self._emit(name, data)

    async def _on_keepalive_timeout(self, ev: Any) -> None:
        log.warning("WhatsApp keepalive timed out (%d in a row)", ev.ErrorCount)

    async def _on_keepalive_restored(self, _ev: Any) -> None:
        log.info("WhatsApp keepalive restored")

    async def _on_pair_status(self, ev: Any) -> None:
        if ev.Error:
            log.warning("pairing failed: %s", ev.Error)
        else:
            log.info("paired as %s", jid_to_str(ev.ID))

    async def _on_message(self, ev: Any) -> None:
        if is_internal_message(ev):
            return
        self._emit(MESSAGE, message_to_dict(ev))

    async def _on_receipt(self, ev: Any) -> None:
        data = receipt_to_dict(ev)
        if data is not None:
            self._emit(RECEIPT, data)

    def _on_login_status(self, _uuid: int | None, status: int | None) -> None:
        # Called from a Go thread through ctypes: hand over to the event loop, never raise.
        try:
            text = ctypes.string_at(status).decode("utf-8", "replace") if status else ""
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._login_status, text)
        except Exception as error:
            log.exception("pairing status callback failed")
            report(error)

    def _login_status(self, status: str) -> None:
        log.info("pairing round ended: %s", status)
        if status == "timeout":
            self._pairing_expired()

    def _arm_pairing_expiry(self) -> None:
        self._cancel_pairing_expiry()
        if self._loop is not None and not self._session_up and not self._expired and not self._stopping:
            self._expiry = self._loop.call_later(self.pairing_expiry, self._pairing_expired)

    def _cancel_pairing_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def _pairing_expired(self) -> None:
        self._cancel_pairing_expiry()
        if self._session_up or self._expired or self._stopping:
            return
        # The Go side is now stuck for good (neonize never leaves its FetchMe loop): the worker must be recycled.
        self._expired = True
        self._emit(PAIRING_EXPIRED, {})

    def _on_task_done(self, task: asyncio.Task[Any]) -> None:
        try:
            if task.cancelled():
                return
            error = task.exception()
            if self._stopping:
                if error is not None:
                    log.info("neonize ended while stopping: %s", short(error))
                return
            # Before the socket came up it is the dial (or the store); afterwards neonize's event pump ended.
            up = self._session_up or self._websocket_up.is_set()
            reason = "session_ended" if up else "dial_failed"
            log.warning("WhatsApp connection ended (%s): %s", reason, short(error))
            self._session_up = False
            self._cancel_pairing_expiry()
            self._emit(DISCONNECTED, {"reason": reason, "detail": short(error)})
        except Exception as failure:
            log.exception("handling the end of the neonize connection failed")
            report(failure)

    # -- commands -------------------------------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._loop is not None:
            raise BackendError("connect() was already called: one connection attempt per worker", permanent=True)
        if self._stopping:
            raise BackendError("the backend is stopped", permanent=True)
        self._loop = asyncio.get_running_loop()
        try:
            # Returns at once: the blocking Go Neonize() runs in an executor thread behind this task.
            self._task = await self._client.connect()
        except Exception as error:
            log.exception("neonize connect() failed")
            report(error)
            self._emit(DISCONNECTED, {"reason": "dial_failed", "detail": short(error)})
            return
        self._task.add_done_callback(self._on_task_done)

    def _go_client_exists(self) -> bool:
        """Whether Go has put the client into its map yet (reading it while Neonize() writes it can be fatal)."""
        return self._websocket_up.is_set() or (self._task is not None and self._task.done())

    def _require_client(self) -> None:
        if self._stopping:
            raise BackendError("the backend is stopped", permanent=False)
        if not self._go_client_exists():
            raise BackendError("not connected to WhatsApp yet", permanent=False)

    async def pair_phone(self, phone: str) -> str:
        digits = phone.strip().removeprefix("+")
        if not (digits.isascii() and digits.isdigit()):
            raise BackendError(f"invalid phone number {phone!r}: digits with country code expected", permanent=True)
        if self._session_up:
            raise BackendError("already paired and connected", permanent=True)
        if self._loop is None or self._task is None:
            raise BackendError("not connecting: connect() has not run", permanent=False)
        if not self._websocket_up.is_set() and not self._task.done():
            waiter = asyncio.ensure_future(self._websocket_up.wait())
            await asyncio.wait({waiter, self._task}, timeout=self.pair_wait, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        if not self._websocket_up.is_set():
            raise BackendError("the WhatsApp websocket is not up (no QR round under way)", permanent=False)
        self._require_client()
        try:
            code = await self._client.PairPhone(
                digits,
                show_push_notification=True,
                client_name=self._nz.ClientName.LINUX,
                client_type=self._nz.ClientType.CHROME,
            )
        except self._nz.NeonizeError as error:
            raise command_error(error) from error
        self._arm_pairing_expiry()  # the user is now typing the code on the phone
        return str(code)

    async def send_text(self, to: str, text: str) -> dict[str, Any]:
        if not text:
            raise BackendError("empty text", permanent=True)
        user, server = recipient(to)
        self._require_client()
        jid = self._nz.proto.JID(User=user, Server=server, RawAgent=0, Device=0, Integrator=0, IsEmpty=False)
        message = text_message(self._nz.e2e, text)
        try:
            response = await self._client.send_message(jid, message)
        except self._nz.NeonizeError as error:
            raise command_error(error) from error
        sent_at = response.Timestamp if response.Timestamp > 0 else datetime.now(UTC).timestamp()
        return {"message_id": str(response.ID), "timestamp": iso_utc(sent_at)}

    async def logout(self) -> None:
        self._require_client()
        try:
            await self._client.logout()
        except self._nz.NeonizeError as error:
            raise command_error(error) from error
        # whatsmeow's Logout() disconnects and deletes the device but dispatches no LoggedOut event.
        self._session_up = False
        self._emit(LOGGED_OUT, {"reason": "user_initiated"})

    async def status(self) -> dict[str, Any]:
        async with self._ffi_lock:
            if self._stopping or not self._go_client_exists():
                return {"connected": False, "logged_in": False}
            # Both are properties returning a coroutine (a bare truth test is always true).
            connected = bool(await self._client.is_connected)
            logged_in = bool(await self._client.is_logged_in)
        return {"connected": connected, "logged_in": logged_in}

    async def stop(self) -> None:
        if self._stop_task is None:
            self._stopping = True
            self._cancel_pairing_expiry()
            self._stop_task = asyncio.ensure_future(self._stop_client())
        try:
            await asyncio.wait_for(asyncio.shield(self._stop_task), self.stop_timeout)
        except TimeoutError:
            log.warning("neonize did not stop within %.0f s (a dial may hang); left to process exit", self.stop_timeout)
        except Exception as error:
            log.exception("stopping neonize failed")
            report(error)

    async def _stop_client(self) -> None:
        if self._task is None:
            return  # connect() never ran: Go knows nothing of this client
        if not self._go_client_exists():
            # Stop() before Neonize() registered the client would miss it and the session would carry on.
            waiter = asyncio.ensure_future(self._websocket_up.wait())
            await asyncio.wait({waiter, self._task}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        async with self._ffi_lock:
            # disconnect() alone leaves the Go goroutine and our executor thread running; Stop() ends them.
            await self._client.disconnect()
            await self._client.stop()
        if not self._task.done():
            await asyncio.wait({self._task})
