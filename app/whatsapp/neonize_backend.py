"""The real WhatsApp backend: one neonize (whatsmeow over FFI) client inside the worker process, its store in Postgres.

Owns the client's lifecycle and neonize's logging side effects; app/whatsapp/neonize_mapping.py translates its events.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import logging
import re
import subprocess
import sys
import threading
import warnings
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from app.observability import report
from app.ogg import opus_seconds
from app.tasks import wait_any
from app.whatsapp.backend import (
    BANNED,
    CALL,
    CONNECTED,
    DISCONNECTED,
    LOGGED_OUT,
    MESSAGE,
    OUTDATED,
    PAIRING_EXPIRED,
    PRESENCE_STATES,
    PUMP_ENDED,
    QR,
    RECEIPT,
    REPLACED,
    UNDECRYPTABLE,
    Backend,
    BackendError,
    Emit,
)
from app.whatsapp.intake import Intake
from app.whatsapp.media import download_failed, failed, hand_over, too_large
from app.whatsapp.neonize_mapping import (
    call_offer_to_dict,
    command_error,
    connect_failure_to_event,
    group_to_dict,
    incoming_message,
    iso_utc,
    jid_to_str,
    logged_out_to_dict,
    media_content,
    media_of,
    needs_phone_lookup,
    pair_status_to_event,
    pairing_failure,
    phone_of,
    poll_vote_selection,
    pump_failure,
    receipt_to_dict,
    recipient,
    short,
    temporary_ban_to_dict,
    undecryptable_to_dict,
)
from app.whatsapp.neonize_outgoing import FILE_FIELDS, outgoing_message, reply_context, text_message

log = logging.getLogger(__name__)

# No new QR and no Connected for this long after the last QR means the round is over (codes rotate every 60/20 s).
PAIRING_EXPIRY = 75.0
PAIR_WAIT = 20.0  # how long pair_phone waits for the websocket (the first QR) to come up
LOG_WAIT = 1.0  # for Go's log lines already queued on their way to Python
FINISH_TIMEOUT = 1.0  # after stopping, handling what the library handed over (look-ups are skipped by then)
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
            from neonize.events import INT_TO_EVENT
            from neonize.exc import NeonizeError
            from neonize.proto import Neonize_pb2
            from neonize.proto.waCommon.WACommon_pb2 import MessageKey
            from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps
            from neonize.proto.waE2E import WAWebProtobufsE2E_pb2
            from neonize.utils.enum import (
                ChatPresence,
                ChatPresenceMedia,
                ClientName,
                ClientType,
                MediaType,
                ReceiptType,
            )

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
            ReceiptType=ReceiptType,
            MediaType=MediaType,
            ChatPresence=ChatPresence,
            ChatPresenceMedia=ChatPresenceMedia,
            proto=Neonize_pb2,
            e2e=WAWebProtobufsE2E_pb2,
            MessageKey=MessageKey,
            int_to_event=INT_TO_EVENT,
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
                # Not re-exported by neonize.aioze.events. neonize's Go encoder sets every required field of both,
                # so subscribing cannot end its event pump (unlike receipts it cannot map).
                UndecryptableMessage=Neonize_pb2.UndecryptableMessage,
                CallOffer=Neonize_pb2.CallOffer,
                CallOfferNotice=Neonize_pb2.CallOfferNotice,
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


def configure_neonize_logging(level: int) -> None:
    """neonize's and whatsmeow's loggers (Go's included) at `level`."""
    # connect() hands this logger's level to Go; unset (NOTSET) makes whatsmeow log DEBUG lines across FFI.
    logging.getLogger("neonize.utils.log").setLevel(level)
    # Go's log lines come back as "whatsmeow.<module>" and "Whatsmeow.Database" records.
    for name in ("neonize", "whatsmeow", "Whatsmeow"):
        logging.getLogger(name).setLevel(level)
    # It warns on every connect that ffmpeg is missing; we never convert media.
    logging.getLogger("neonize.utils.ffmpeg").setLevel(logging.ERROR)


def build_jid(proto: Any, user: str, server: str, device: int = 0) -> Any:
    """A neonize JID protobuf with every field set: Go's proto.Marshal refuses one with a required field unset."""
    return proto.JID(User=user, Server=server, Device=device, RawAgent=0, Integrator=0, IsEmpty=False)


# whatsmeow's words when it is told of a ban: "You've been temporarily banned: <reason>. The ban expires in <duration>"
BAN_LOG = re.compile(r"temporarily banned: (?P<reason>.*)\. The ban expires in (?P<duration>[0-9hmsµun.]+)")
GO_DURATION_PART = re.compile(r"([0-9.]+)(h|ms|m|s|µs|us|ns)")
GO_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}


def ban_from_log(line: str, now: datetime) -> dict[str, Any] | None:
    """BANNED data from whatsmeow's log line about a ban (Go's time.Duration text, e.g. "23h59m59.5s")."""
    match = BAN_LOG.search(line)
    if match is None:
        return None
    seconds = sum(float(value) * GO_DURATION_UNITS[unit] for value, unit in GO_DURATION_PART.findall(match["duration"]))
    until = iso_utc((now + timedelta(seconds=seconds)).timestamp()) if seconds > 0 else None
    return {"until": until, "code": None, "detail": match["reason"]}


# ---------------------------------------------------------------------------------------------------------------------


class NeonizeBackend(Backend):
    """One neonize client for the life of the worker process: one connect(), at most one stop()."""

    def __init__(
        self,
        database_url: str,
        emit: Emit,
        intake: Intake,
        *,
        pairing_expiry: float = PAIRING_EXPIRY,
        pair_wait: float = PAIR_WAIT,
        stop_timeout: float = STOP_TIMEOUT,
        log_level: str = "INFO",
    ) -> None:
        # whatsmeow uses Postgres only for names starting with "postgres"; anything else silently becomes a SQLite file.
        if not database_url.startswith("postgres"):
            raise BackendError("the WhatsApp store must be a postgres:// or postgresql:// URL", permanent=True)
        super().__init__(database_url, emit, intake)
        self.pairing_expiry = pairing_expiry
        self.pair_wait = pair_wait
        self.stop_timeout = stop_timeout
        self._nz = load_neonize()
        # LOG_LEVEL, from the web process's settings; before the client exists: connect() reads the level once.
        configure_neonize_logging(logging.getLevelNamesMapping().get(log_level.upper(), logging.INFO))
        self._client: Any = self._make_client()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Events from the library, in the order it handed them over, for the one task that handles them (neonize's
        # own dispatch runs each handler as a separate task: a receipt could overtake its message).
        self._library_events: asyncio.Queue[tuple[int, Any, bool] | None] = asyncio.Queue()
        self._event_task: asyncio.Task[None] | None = None
        self._ban_hint: dict[str, Any] | None = None  # what whatsmeow logged about a ban it could not hand over
        self._rejected: list[str] = []  # call ids declined (REJECT_CALLS), the last 100
        self._background_tasks: set[asyncio.Future[Any]] = set()
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
        self._watch_go_log()

    def _make_client(self) -> Any:
        """The Go-backed neonize client (the replay backend answers with a recording stand-in instead)."""
        props = self._nz.DeviceProps(os=DEVICE_NAME, platformType=self._nz.DeviceProps.CHROME)
        return self._nz.NewAClient(self.database_url, props=props, uuid=CLIENT_ID)

    # -- events ---------------------------------------------------------------------------------------------------

    def _register_handlers(self) -> None:
        events = self._nz.events
        session_handlers = {
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
        }
        # What WhatsApp gave us: each handler translates one event into at most one item for the parent.
        incoming_handlers = {
            events.Message: self._on_message,
            events.Receipt: self._on_receipt,
            events.UndecryptableMessage: self._on_undecryptable,
            events.CallOffer: self._on_call_offer,
            events.CallOfferNotice: self._on_call_offer,  # group calls and offers seen elsewhere; same call_id
        }
        codes = {event_type: code for code, event_type in self._nz.int_to_event.items()}
        self._handlers: dict[int, Any] = {}
        for event_type, handler in {**session_handlers, **incoming_handlers}.items():
            # Registering tells Go which events to hand over (connect() sends it the codes of registered handlers);
            # the handling itself happens in _from_library and _handle_events, in order.
            self._client.event(event_type)(self._never_called)
            self._handlers[codes[event_type]] = handler
        self._incoming_codes = frozenset(codes[event_type] for event_type in incoming_handlers)
        self._connected_code = codes[events.Connected]
        # The library's entry point into Python: connect() hands Go the bound method it finds here.
        self._client.event.execute = self._from_library
        self._client.event.qr(self._guarded(self._on_qr))
        # neonize passes the pairing round's outcome ("success", "timeout", "err-...") to this private, no-op method;
        # its instance attribute is what connect() hands to Go. It is our only early sign of an expired QR round.
        self._client._NewAClient__onLoginStatus = self._on_login_status

    @staticmethod
    async def _never_called(_client: Any, _event: Any) -> None:
        """Stands in neonize's handler table; _from_library replaces neonize's dispatch."""

    def _from_library(self, _uuid: Any, binary: Any, size: int, code: int) -> None:
        """Where the library hands an event to Python, on its own thread (neonize's Event.execute, replaced).

        For what WhatsApp gave us, a slot of the intake window is taken first: while too much is unstored this
        blocks the library's thread, and whatsmeow takes no further messages from WhatsApp until it returns."""
        try:
            event_type = self._nz.int_to_event.get(code)
            if event_type is None:
                return
            event = event_type.FromString(ctypes.string_at(binary, size))
            if code == 0:  # the device (neonize keeps it as client.me)
                self._client.me = event
                return
            if code == self._connected_code:
                self._client.connected = True
            incoming = code in self._incoming_codes
            loop = self._loop
            if loop is None or loop.is_closed():
                return
            if incoming:
                self.intake.reserve()
            loop.call_soon_threadsafe(self._library_events.put_nowait, (code, event, incoming))
        except Exception as error:  # raising into Go would be lost; this event is logged instead
            log.exception("an event from the library could not be taken (code %s)", code)
            report(error)

    async def _handle_events(self) -> None:
        """The one task that handles the library's events, in the order they came."""
        while (item := await self._library_events.get()) is not None:
            code, event, incoming = item
            try:
                result = await self._handlers[code](event)
            except Exception as error:
                log.exception("WhatsApp event handler %s failed", self._handlers[code].__name__)
                report(error)
                result = None
            if incoming:
                if result is None:
                    self.intake.cancel()
                else:
                    self.intake.send(*result)

    def _watch_go_log(self) -> None:
        """whatsmeow logs a ban's expiry before handing over a TemporaryBan event that neonize may fail to encode;
        keep it so that such a ban still waits until it ends."""
        backend = self

        class BanLog(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                hint = ban_from_log(record.getMessage(), datetime.now(UTC))
                if hint is not None:
                    backend._ban_hint = hint

        handler = BanLog(level=logging.DEBUG)
        for name in ("whatsmeow", "Whatsmeow"):
            logging.getLogger(name).addHandler(handler)

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
        failure = pair_status_to_event(ev)
        if failure is not None:
            self._pairing_failed(*failure)
        else:
            log.info("paired as %s", jid_to_str(ev.ID))

    # What WhatsApp gave us: each returns the one item for the parent, or None.

    async def _on_message(self, ev: Any) -> tuple[str, dict[str, Any]] | None:
        item = incoming_message(ev)
        if item is None:
            return None
        name, data = item
        lid = needs_phone_lookup(data)
        if lid is not None:
            data["from"] = await self._phone_of_lid(lid)
        if "selected_hashes" in data:
            data["selected_hashes"] = await self._poll_vote(ev)
        if name == MESSAGE and data.get("media") is not None:
            data["media"] = await self._download(ev, data["media"])
        return name, data

    async def _download(self, ev: Any, media: dict[str, Any]) -> dict[str, Any]:
        """Download a message's media with neonize's download_any (from the whole message, media keys included) and
        hand it to the parent (app/whatsapp/media.py). Any failure is the media's `error`: the message still goes.

        On the one task that handles events, so messages stay in order; a download holds the next events back for
        as long as it takes (seconds for a large file), as the intake window does while Postgres is slow."""
        return await self._fetch(media_content(ev), media, str(ev.Info.ID))

    async def download_media(self, message: dict[str, Any]) -> dict[str, Any]:
        """A later try at a stored message's media (the parent's retry of a transient failure): the media keys come
        from its stored `raw` (the serialized waE2E.Message), parsed again into neonize's own class."""
        media = dict(message.get("media") or {})
        raw = message.get("raw")
        if not isinstance(raw, str) or not raw:
            return failed(media, "download failed: the stored message has no media keys to download it again")
        try:
            whole = self._nz.e2e.Message.FromString(base64.b64decode(raw))
        except Exception as error:  # a stored message that no longer parses: no try can ever succeed
            return failed(media, f"download failed: the stored message could not be read ({short(error)})")
        return await self._fetch(media_of(whole), media, str(message.get("message_id")))

    async def _fetch(self, found: tuple[Any, Any] | None, media: dict[str, Any], message_id: str) -> dict[str, Any]:
        if found is None:
            return failed(media, "download failed: the message names no media to download")
        content, body = found
        if (problem := too_large(media.get("size"), self.media_max_bytes)) is not None:
            return failed(media, problem)
        try:
            async with self._ffi_lock:  # Stop() must not delete the client under a download
                if self._stopping:
                    return download_failed(media, "the worker was stopping")
                data = await self._client.download_any(content)
        except Exception as error:  # neonize's DownloadError (expired CDN copy, 404, bad MAC) and the like
            log.warning("media of message %s could not be downloaded: %s", message_id, short(error))
            return download_failed(media, short(error) or "download failed")
        return hand_over(media, bytes(data or b""), bytes(body.fileSHA256), self.media_dir, self.media_max_bytes)

    async def _phone_of_lid(self, lid: str) -> str | None:
        """whatsmeow's LID map (get_pn_from_lid); None when it does not know the phone number."""
        user, _, server = lid.partition("@")
        jid = build_jid(self._nz.proto, user, server)
        try:
            async with self._ffi_lock:
                if self._stopping:
                    return None
                found = await self._client.get_pn_from_lid(jid)
        except Exception as error:  # not in the map: the event goes out with from = null
            log.debug("no phone number for %s: %s", lid, short(error))
            return None
        return phone_of(found)

    async def _poll_vote(self, ev: Any) -> list[str]:
        """The selected options' hashes of a poll vote (encrypted for this device; whatsmeow decrypts it)."""
        try:
            async with self._ffi_lock:
                if self._stopping:
                    return []
                vote = await self._client.decrypt_poll_vote(ev)
        except Exception as error:
            log.warning("a poll vote could not be decrypted: %s", short(error))
            return []
        return poll_vote_selection(vote)

    async def _on_receipt(self, ev: Any) -> tuple[str, dict[str, Any]] | None:
        data = receipt_to_dict(ev)
        return (RECEIPT, data) if data is not None else None

    async def _on_undecryptable(self, ev: Any) -> tuple[str, dict[str, Any]] | None:
        return UNDECRYPTABLE, undecryptable_to_dict(ev)

    async def _on_call_offer(self, ev: Any) -> tuple[str, dict[str, Any]] | None:
        data = call_offer_to_dict(ev)
        data["rejected"] = await self._reject(ev, data) if self.reject_calls else False
        return CALL, data

    async def _reject(self, ev: Any, data: dict[str, Any]) -> bool:
        """Decline a call (REJECT_CALLS), once per call id (an offer may come as CallOffer and CallOfferNotice)."""
        call_id = str(data["call_id"])
        if call_id in self._rejected:
            return True
        meta = ev.basicCallMeta
        # neonize: the caller's JID exactly as the offer delivered it (the creator, a phone or a hosted LID JID).
        caller = meta.callCreator if meta.callCreator.Server else getattr(meta, "from")
        try:
            await self._client.reject_call(caller, call_id)
        except self._nz.NeonizeError as error:
            log.warning("could not reject call %s: %s", call_id, error)
            return False
        self._rejected.append(call_id)
        del self._rejected[:-100]
        return True

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
            return
        failure = pairing_failure(status)
        if failure is not None:
            self._pairing_failed(*failure)

    def _pairing_failed(self, name: str, data: dict[str, Any]) -> None:
        # After a failed pairing neonize never leaves its FetchMe loop (it does not check for the failure): the
        # worker must be recycled.
        log.warning("pairing failed: %s", data.get("error"))
        self._cancel_pairing_expiry()
        if not (self._expired or self._stopping):
            self._expired = True
            self._emit(name, data)

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
            self._session_up = False
            self._cancel_pairing_expiry()
            failure = pump_failure(str(error)) if error is not None else None
            if failure is not None:
                self._pump_ended(failure[1])
                return
            # Before the socket came up it is the dial (or the store); afterwards neonize's event pump ended.
            up = self._websocket_up.is_set()
            reason = "session_ended" if up else "dial_failed"
            log.warning("WhatsApp connection ended (%s): %s", reason, short(error))
            self._emit(DISCONNECTED, {"reason": reason, "detail": short(error)})
        except Exception as failure:
            log.exception("handling the end of the neonize connection failed")
            report(failure)

    def _pump_ended(self, data: dict[str, Any]) -> None:
        """neonize could not encode an event, so its event pump is over while the Go client stays connected and
        keeps acknowledging messages that Python will never see: the worker must go at once. Where whatsmeow said
        why (a ban), the parent learns the real reason."""
        log.error("neonize stopped handing events over: %s", data.get("detail"))
        if data.get("message") == "TemporaryBan":
            self._background(self._report_ban())
        else:
            self._emit(PUMP_ENDED, data)

    async def _report_ban(self) -> None:
        # Go's log lines reach Python through a queue and a thread of their own: let whatever Go logged before the
        # pump ended arrive first, so that the ban's expiry is known.
        log_queue = getattr(sys.modules.get("neonize.utils.log"), "_log_queue", None)
        if log_queue is not None:
            loop = asyncio.get_running_loop()
            logged: asyncio.Future[None] = loop.create_future()

            def arrived() -> None:
                if not logged.done():
                    logged.set_result(None)

            def wait_for_log() -> None:  # a daemon thread: a queue that never empties must not hold up the exit
                log_queue.join()
                if not loop.is_closed():
                    loop.call_soon_threadsafe(arrived)

            threading.Thread(target=wait_for_log, name="go-log-wait", daemon=True).start()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(logged, LOG_WAIT)
        self._emit(BANNED, self._ban_hint or {"until": None, "code": None})

    def _background(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)

    # -- commands -------------------------------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._loop is not None:
            raise BackendError("connect() was already called: one connection attempt per worker", permanent=True)
        if self._stopping:
            raise BackendError("the backend is stopped", permanent=True)
        self._loop = asyncio.get_running_loop()
        self._event_task = asyncio.create_task(self._handle_events(), name="neonize-events")
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
            await wait_any(self._websocket_up.wait(), self._task, timeout=self.pair_wait)
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

    async def send_text(self, to: str, text: str, mentions: list[str] | None = None) -> dict[str, Any]:
        if not text:
            raise BackendError("empty text", permanent=True)
        user, server = recipient(to)
        for mention in mentions or []:
            recipient(mention)  # a malformed JID is refused for good, before anything is sent
        self._require_client()
        jid = build_jid(self._nz.proto, user, server)
        message = text_message(self._nz.e2e, text, mentions)
        try:
            response = await self._client.send_message(jid, message)
        except self._nz.NeonizeError as error:
            raise command_error(error) from error
        sent_at = response.Timestamp if response.Timestamp > 0 else datetime.now(UTC).timestamp()
        return {"message_id": str(response.ID), "timestamp": iso_utc(sent_at)}

    async def send_message(
        self, to: str, content: dict[str, Any], data: bytes | None, reply: dict[str, Any] | None
    ) -> dict[str, Any]:
        kind = str(content.get("type"))
        user, server = recipient(to)
        for mention in content.get("mentions") or []:
            recipient(mention)  # a malformed JID is refused for good, before anything is sent
        self._require_client()
        jid = build_jid(self._nz.proto, user, server)
        participant = None
        if reply is not None:  # the quoted message's sender; our own JID (without its device) for ours
            own = await self._sender_jid(reply.get("sender") or None)
            participant = f"{own.User}@{own.Server}"
        context = reply_context(self._nz.e2e, reply, participant)
        upload = None
        try:
            if kind in FILE_FIELDS:
                # neonize's upload: encrypted with a fresh media key and put on WhatsApp's CDN by whatsmeow.
                upload = await self._client.upload(data, getattr(self._nz.MediaType, FILE_FIELDS[kind][1]))
            seconds = round(opus_seconds(data)) if kind == "audio" and data else 0
            # Off the loop: an image's thumbnail is decoded and scaled with Pillow.
            message = await asyncio.to_thread(outgoing_message, self._nz.e2e, content, upload, context, data, seconds)
            response = await self._client.send_message(jid, message)
        except self._nz.NeonizeError as error:
            raise command_error(error) from error
        return self._sent(response)

    async def mark_read(self, chat: str, sender: str, message_ids: list[str]) -> dict[str, Any]:
        if not message_ids:
            raise BackendError("no message ids to mark read", permanent=True)
        chat_jid = build_jid(self._nz.proto, *recipient(chat))
        sender_jid = build_jid(self._nz.proto, *recipient(sender))
        self._require_client()
        try:
            # whatsmeow's MarkRead: one receipt for several ids, all from one sender (a group member, or the chat).
            await self._client.mark_read(
                *message_ids, chat=chat_jid, sender=sender_jid, receipt=self._nz.ReceiptType.READ
            )
        except self._nz.NeonizeError as error:
            raise command_error(error) from error
        return {"chat": chat, "message_ids": message_ids}

    async def send_presence(self, chat: str, state: str) -> dict[str, Any]:
        if state not in PRESENCE_STATES:
            raise BackendError(f"unknown presence {state!r}: one of {', '.join(PRESENCE_STATES)}", permanent=True)
        jid = build_jid(self._nz.proto, *recipient(chat))
        self._require_client()
        # whatsmeow has two states (composing, paused) and a media flag: "recording" is composing audio.
        presence, media = self._nz.ChatPresence, self._nz.ChatPresenceMedia
        composing = presence.CHAT_PRESENCE_PAUSED if state == "paused" else presence.CHAT_PRESENCE_COMPOSING
        kind = media.CHAT_PRESENCE_MEDIA_AUDIO if state == "recording" else media.CHAT_PRESENCE_MEDIA_TEXT
        try:
            await self._client.send_chat_presence(jid, composing, kind)
        except self._nz.NeonizeError as error:
            raise command_error(error) from error
        return {"chat": chat, "state": state}

    async def check_numbers(self, phones: list[str]) -> dict[str, Any]:
        digits = [phone.strip().removeprefix("+") for phone in phones]
        if not digits or not all(d.isascii() and d.isdigit() for d in digits):
            raise BackendError("phone numbers are '+' and digits with the country code", permanent=True)
        self._require_client()
        try:
            # whatsmeow's IsOnWhatsApp: one usync query for all of them; each answer names its query ("+<digits>").
            answers = await self._client.is_on_whatsapp(*("+" + d for d in digits))
        except self._nz.NeonizeError as error:
            raise command_error(error) from error
        by_query = {answer.Query.removeprefix("+"): answer for answer in answers}
        results = []
        for number in digits:
            answer = by_query.get(number)
            on = bool(answer is not None and answer.IsIn)
            jid = f"{answer.JID.User}@{answer.JID.Server}" if on and answer is not None and answer.JID.User else None
            results.append({"phone": "+" + number, "on_whatsapp": on, "jid": jid})
        return {"results": results}

    async def _sender_jid(self, sender: str | None) -> Any:
        """The JID of a message's sender; None is this account (whatsmeow then marks the key as ours, fromMe)."""
        if sender is not None:
            return build_jid(self._nz.proto, *recipient(sender))
        own, _ = await self._read_me()
        if own is None:
            raise BackendError("not logged in yet", permanent=False)
        user, _, server = own.partition("@")
        return build_jid(self._nz.proto, user.partition(":")[0], server)

    def _sent(self, response: Any) -> dict[str, Any]:
        sent_at = response.Timestamp if response.Timestamp > 0 else datetime.now(UTC).timestamp()
        return {"message_id": str(response.ID), "timestamp": iso_utc(sent_at)}

    async def send_reaction(self, chat: str, target_id: str, sender: str | None, emoji: str) -> dict[str, Any]:
        chat_jid = build_jid(self._nz.proto, *recipient(chat))
        self._require_client()
        sender_jid = await self._sender_jid(sender)
        try:
            # whatsmeow's BuildReaction makes the key (fromMe, participant in groups); the reaction is a message.
            message = await self._client.build_reaction(chat_jid, sender_jid, target_id, emoji)
            response = await self._client.send_message(chat_jid, message)
        except self._nz.NeonizeError as error:
            raise command_error(error) from error
        return self._sent(response)

    async def edit_message(self, chat: str, target_id: str, text: str) -> dict[str, Any]:
        if not text:
            raise BackendError("empty text", permanent=True)
        chat_jid = build_jid(self._nz.proto, *recipient(chat))
        self._require_client()
        try:
            response = await self._client.edit_message(chat_jid, target_id, text_message(self._nz.e2e, text))
        except self._nz.NeonizeError as error:
            raise command_error(error) from error
        return self._sent(response)

    async def revoke_message(self, chat: str, target_id: str, sender: str | None) -> dict[str, Any]:
        chat_jid = build_jid(self._nz.proto, *recipient(chat))
        self._require_client()
        sender_jid = await self._sender_jid(sender)
        try:
            response = await self._client.revoke_message(chat_jid, sender_jid, target_id)
        except self._nz.NeonizeError as error:
            raise command_error(error) from error
        return self._sent(response)

    async def joined_groups(self) -> dict[str, Any]:
        self._require_client()
        try:
            groups = await self._client.get_joined_groups()
        except self._nz.NeonizeError as error:
            raise command_error(error) from error
        return {"groups": [group_to_dict(info, with_participants=False) for info in groups]}

    async def group_info(self, jid: str) -> dict[str, Any]:
        user, server = recipient(jid)
        if server != "g.us":
            raise BackendError(f"{jid!r} is not a group JID", permanent=True)
        self._require_client()
        try:
            info = await self._client.get_group_info(build_jid(self._nz.proto, user, server))
        except self._nz.NeonizeError as error:
            raise command_error(error) from error
        return group_to_dict(info, with_participants=True)

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
            self.intake.release()  # a library thread waiting for room must not hold the stop up
            self._cancel_pairing_expiry()
            self._stop_task = asyncio.ensure_future(self._stop_client())
        try:
            await asyncio.wait_for(asyncio.shield(self._stop_task), self.stop_timeout)
        except TimeoutError:
            log.warning("neonize did not stop within %.0f s (a dial may hang); left to process exit", self.stop_timeout)
        except Exception as error:
            log.exception("stopping neonize failed")
            report(error)
        await self._finish_events()

    async def _finish_events(self) -> None:
        """Hand over everything the library gave before it stopped: whatsmeow acknowledged it already."""
        task = self._event_task
        if task is None or task.done():
            return
        self._library_events.put_nowait(None)  # behind whatever the library queued before Stop() returned
        await asyncio.wait({task}, timeout=FINISH_TIMEOUT)
        if not task.done():
            log.error("%d library event(s) not handled before the worker stopped", self._library_events.qsize())
            task.cancel()

    async def _stop_client(self) -> None:
        if self._task is None:
            return  # connect() never ran: Go knows nothing of this client
        if not self._go_client_exists():
            # Stop() before Neonize() registered the client would miss it and the session would carry on.
            await wait_any(self._websocket_up.wait(), self._task, timeout=1.0)
        async with self._ffi_lock:
            # disconnect() alone leaves the Go goroutine and our executor thread running; Stop() ends them.
            await self._client.disconnect()
            await self._client.stop()
        if not self._task.done():
            await asyncio.wait({self._task})
