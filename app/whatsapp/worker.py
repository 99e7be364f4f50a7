"""The session worker: a child process that owns one WhatsApp client for one connection attempt.

Started by the supervisor as `python -m app.whatsapp.worker --fd N`; the first frame on that channel is its settings
(protocol.WorkerSettings): it reads nothing from its environment, where only what libraries read when they load is
set for it (process.WORKER_ENVIRONMENT). It is the only process that imports neonize. It exits when told to stop,
when the parent goes away (the channel closes; on Linux the kernel also sends SIGKILL), or when it crashes, and the
supervisor respawns it. Stopping drains it: whatever the library handed over before it stopped goes to the parent first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any

from app.logs import configure_logging
from app.observability import init_sentry, report
from app.tasks import wait_any
from app.whatsapp import protocol
from app.whatsapp.backend import Backend, BackendError
from app.whatsapp.intake import Intake
from app.whatsapp.media import read_outgoing

log = logging.getLogger("app.worker")

STOP_BUDGET = 4.5  # seconds for backend.stop() and its drain; the parent SIGKILLs us 5 s after asking anyway


class Worker:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.loop = asyncio.get_running_loop()
        self.backend: Backend | None = None
        self.stopping = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self._loop_thread = threading.get_ident()
        self.intake = Intake(self.writer.write)

    def emit(self, name: str, data: dict[str, Any]) -> None:
        """Send an event to the parent; callable from any thread, never blocks."""
        frame = protocol.encode({"type": protocol.EVENT, "name": name, "data": data})
        if threading.get_ident() == self._loop_thread:
            self.writer.write(frame)
        else:
            self.loop.call_soon_threadsafe(self.writer.write, frame)

    async def run(self, backend: Backend) -> None:
        self.backend = backend
        self.emit(protocol.READY, {"pid": os.getpid(), "backend": type(backend).__name__})
        await backend.connect()
        # The reader goes on while the backend stops: the parent's "stored" answers come through it.
        reader = asyncio.create_task(self._read_commands(), name="worker-commands")
        await wait_any(reader, self.stopping.wait())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(backend.stop(), STOP_BUDGET)
        reader.cancel()
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()  # the parent reads what we wrote even after we are gone

    async def _read_commands(self) -> None:
        while True:
            try:
                message = await protocol.read_frame(self.reader)
            except protocol.ChannelClosed:
                log.info("the web process went away; stopping")
                self.stopping.set()
                return
            if message.get("type") == protocol.STORED:
                self.intake.stored(int(message["seq"]))
            elif message.get("type") == protocol.COMMAND:
                task = asyncio.create_task(self._execute(message), name=f"command-{message.get('name')}")
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _execute(self, command: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"type": protocol.REPLY, "id": command.get("id")}
        try:
            result = await self._dispatch(str(command.get("name")), command.get("args") or {})
            reply.update(ok=True, result=result)
        except BackendError as error:
            reply.update(ok=False, error=str(error), permanent=error.permanent)
        except Exception as error:  # a command must always get a reply, or the parent waits for nothing
            log.exception("command %s failed", command.get("name"))
            report(error)
            reply.update(ok=False, error=f"{type(error).__name__}: {error}", permanent=False)
        self.writer.write(protocol.encode(reply))
        if command.get("name") == protocol.STOP:
            self.stopping.set()

    async def _dispatch(self, name: str, args: dict[str, Any]) -> Any:
        backend = self.backend
        assert backend is not None
        if name == protocol.PING:
            return {"pid": os.getpid(), "unstored": self.intake.unstored, **(await backend.status())}
        if name == protocol.PAIR_CODE:
            return {"code": await backend.pair_phone(str(args["phone"]))}
        if name == protocol.SEND_TEXT:
            mentions = [str(jid) for jid in args["mentions"]] if args.get("mentions") else None
            return await backend.send_text(str(args["to"]), str(args["text"]), mentions)
        if name == protocol.SEND_MESSAGE:
            data = None
            if args.get("file"):
                data = await asyncio.to_thread(read_outgoing, str(args["file"]), backend.media_dir)
                if data is None:  # the parent gave up waiting and took it back; a new try writes it again
                    raise BackendError("the file to send is not in the media folder (any more)")
            kind = args["content"].get("type")
            if kind in protocol.FILE_TYPES and not data:  # for every backend, before anything goes out
                raise BackendError(f"no file to send as {kind}", permanent=True)
            reply = dict(args["reply"]) if args.get("reply") else None
            return await backend.send_message(str(args["to"]), dict(args["content"]), data, reply)
        if name == protocol.MARK_READ:
            ids = [str(item) for item in args["message_ids"]]
            return await backend.mark_read(str(args["chat"]), str(args["sender"]), ids)
        if name == protocol.SEND_PRESENCE:
            return await backend.send_presence(str(args["chat"]), str(args["state"]))
        if name == protocol.CHECK_NUMBERS:
            return await backend.check_numbers([str(phone) for phone in args["phones"]])
        if name == protocol.SEND_REACTION:
            sender = str(args["sender"]) if args.get("sender") else None
            return await backend.send_reaction(str(args["chat"]), str(args["target_id"]), sender, str(args["emoji"]))
        if name == protocol.EDIT_MESSAGE:
            return await backend.edit_message(str(args["chat"]), str(args["target_id"]), str(args["text"]))
        if name == protocol.REVOKE_MESSAGE:
            sender = str(args["sender"]) if args.get("sender") else None
            return await backend.revoke_message(str(args["chat"]), str(args["target_id"]), sender)
        if name == protocol.JOINED_GROUPS:
            return await backend.joined_groups()
        if name == protocol.GROUP_INFO:
            return await backend.group_info(str(args["jid"]))
        if name == protocol.DOWNLOAD_MEDIA:
            return await backend.download_media(dict(args))
        if name == protocol.LOGOUT:
            await backend.logout()
            return {}
        if name == protocol.STOP:
            return {}
        if name == protocol.SIMULATE:
            simulate = getattr(backend, "simulate", None)
            if simulate is None:
                raise BackendError("the simulator is not in use", permanent=True)
            result: dict[str, Any] = await simulate(str(args.get("action")), args)
            return result
        raise BackendError(f"unknown command {name!r}", permanent=True)


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies, so an orphan can never keep the account connected
    while a new web process takes over. (The closed channel stops us too; this also covers a hung worker.)"""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def make_backend(settings: protocol.WorkerSettings, emit: Any, intake: Intake) -> Backend:
    if settings.backend == "simulator":
        from app.whatsapp.simulator import SimulatorBackend

        return SimulatorBackend(settings.database_url, emit, intake, qr_seconds=settings.simulator_qr_seconds)
    if settings.backend == "replay":
        from app.whatsapp.replay import ReplayBackend

        return ReplayBackend(
            settings.database_url,
            emit,
            intake,
            replay_file=settings.replay_file,
            calls_file=settings.replay_calls,
            log_level=settings.log_level,
        )
    from app.whatsapp.neonize_backend import NeonizeBackend  # the one import of neonize in the whole app

    return NeonizeBackend(settings.database_url, emit, intake, log_level=settings.log_level)


def configure(settings: protocol.WorkerSettings) -> None:
    """Logging (stderr: Go owns stdout) and Sentry, as the parent has them."""
    configure_logging(settings.log_level, [*settings.secrets, settings.database_url], stream=sys.stderr)
    init_sentry(settings.sentry_dsn, settings.release, deployed=settings.deployed, web=False)


async def serve(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    settings = protocol.WorkerSettings.from_frame(await protocol.read_frame(reader))
    configure(settings)
    worker = Worker(reader, writer)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # The platform signals every process of the dyno; the parent decides when we stop, within its own budget.
        loop.add_signal_handler(signum, lambda: None)
    backend = make_backend(settings, worker.emit, worker.intake)
    backend.reject_calls = settings.reject_calls
    backend.media_dir = settings.media_dir
    backend.media_max_bytes = settings.media_max_bytes
    await worker.run(backend)
    writer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.whatsapp.worker", description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="the inherited socketpair end to talk over")
    args = parser.parse_args(argv)
    die_with_parent()
    try:
        asyncio.run(serve(args.fd))
    except Exception as error:  # one log line and a clear exit status; the supervisor respawns us
        log.critical("the worker failed: %r", error, exc_info=error)
        report(error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
