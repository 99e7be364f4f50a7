"""The web process's handle on one worker child: spawn it, send it commands, receive its events, stop or kill it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.errors import NoReply, WhatsAppError
from app.observability import rss_mb
from app.whatsapp import protocol

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent  # `-m app.whatsapp.worker` resolves from here
READY_TIMEOUT = 30.0  # importing neonize takes ~0.5 s; a worker not ready after this is broken
STOP_GRACE = 5.0  # ask, then SIGKILL after this many seconds

EventHandler = Callable[["WorkerProcess", str, dict[str, Any]], None]
# What WhatsApp gave us, numbered by the worker: the handler answers `worker.acknowledge(seq)` once it is stored.
IncomingHandler = Callable[["WorkerProcess", int, str, dict[str, Any]], None]

# The worker's environment beyond ours. neonize's Go SendMessage adds <bot biz_bot="1"/> (WhatsApp's "AI" label under
# the message) to every send to a phone-number JID unless NEONIZE_BOT_TAG is "off"; Go copies the environment when the
# library loads, so it must be there when the process starts. MALLOC_MMAP_THRESHOLD_ (glibc, read as the process
# starts): a downloaded file's buffers (128 KB and up) are mapped and unmapped on their own; without a fixed threshold
# glibc raises it after the first such buffer is freed, later ones come from the heap and freed megabytes stay
# resident (bench/media_in.py: the worker kept 1.3 MB more after the run, peaking up to 2.2 MB above idle; with it
# 0.2 MB more, peaking 1.1 MB above idle).
WORKER_ENVIRONMENT = {"NEONIZE_BOT_TAG": "off", "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}


class WorkerProcess:
    """One worker child. Session events (including READY) go to `on_event` and what WhatsApp gave us to
    `on_incoming`, in order, from the reader task, for as long as the channel is open: a retiring worker's last
    messages arrive like any others."""

    _generations = itertools.count(1)

    def __init__(self, process: asyncio.subprocess.Process, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 on_event: EventHandler, on_incoming: IncomingHandler) -> None:  # fmt: skip
        self.generation = next(self._generations)
        self.process = process
        self.pid = process.pid
        self.started_at = time.monotonic()
        self._writer = writer
        self._on_event = on_event
        self._on_incoming = on_incoming
        self._acknowledged = 0  # the highest seq reported stored, and whether a report is due
        self._ack_due = False
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._late: dict[int, Callable[[dict[str, Any]], None]] = {}  # commands still wanted after their timeout
        self.ready = asyncio.Event()
        self._reader_task = asyncio.create_task(self._read(reader), name=f"worker-{self.generation}-reader")

    @classmethod
    async def spawn(cls, settings: protocol.WorkerSettings, on_event: EventHandler, on_incoming: IncomingHandler,
                    env: dict[str, str] | None = None) -> WorkerProcess:  # fmt: skip
        """Start a worker with `settings` (its first frame). `env` is the environment it starts with (this process's if
        None): the worker itself reads none of it, but libraries do when they load (a proxy for Go, say)."""
        parent_end, child_end = socket.socketpair()
        environment = {**(os.environ if env is None else env), **WORKER_ENVIRONMENT}
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "app.whatsapp.worker", "--fd", str(child_end.fileno()),
                pass_fds=(child_end.fileno(),),
                cwd=PROJECT_ROOT,
                env=environment,
                stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            child_end.close()  # the child holds its own copy; ours would keep the channel open after it dies
        reader, writer = await asyncio.open_unix_connection(sock=parent_end)
        writer.write(protocol.encode(settings.frame()))
        worker = cls(process, reader, writer, on_event, on_incoming)
        log.info("worker %d started (pid %d, %s backend)", worker.generation, worker.pid, settings.backend)
        return worker

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await protocol.read_frame(reader)
                if message.get("type") == protocol.INCOMING:
                    self._on_incoming(self, int(message["seq"]), str(message["name"]), message.get("data") or {})
                elif message.get("type") == protocol.REPLY:
                    late = self._late.pop(int(message["id"]), None)
                    if late is not None and message.get("ok"):
                        late(message.get("result") or {})
                    future = self._pending.pop(int(message["id"]), None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif message.get("type") == protocol.EVENT:
                    if message["name"] == protocol.READY:
                        self.ready.set()
                    self._on_event(self, str(message["name"]), message.get("data") or {})
        except protocol.ChannelClosed:
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(NoReply("the worker exited before replying"))
            self._pending.clear()

    def acknowledge(self, seq: int) -> None:
        """Everything this worker sent up to `seq` is stored. Reports are coalesced: one frame per loop turn."""
        self._acknowledged = max(self._acknowledged, seq)
        if not self._ack_due:
            self._ack_due = True
            asyncio.get_running_loop().call_soon(self._send_acknowledgement)

    def _send_acknowledgement(self) -> None:
        self._ack_due = False
        if not self._writer.is_closing():
            with contextlib.suppress(ConnectionError, RuntimeError):
                self._writer.write(protocol.encode({"type": protocol.STORED, "seq": self._acknowledged}))

    async def request(
        self,
        name: str,
        args: dict[str, Any] | None = None,
        timeout: float = 10.0,
        late: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Send a command and wait for its reply; NoReply if the worker dies or does not answer in time. With
        `late`, a success that arrives after the timeout (while the worker lives) is still handed to `late`."""
        if self._reader_task.done():
            raise NoReply("the worker is not running")
        command_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        try:
            self._writer.write(
                protocol.encode({"type": protocol.COMMAND, "id": command_id, "name": name, "args": args or {}})
            )
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            if late is not None:
                self._late[command_id] = late
            raise NoReply(f"the worker did not answer {name!r} within {timeout:g} s") from None
        except ConnectionError:
            raise NoReply("the worker's channel is closed") from None
        finally:
            self._pending.pop(command_id, None)
        if not reply.get("ok"):
            raise WhatsAppError(str(reply.get("error")), permanent=bool(reply.get("permanent")))
        result: dict[str, Any] = reply.get("result") or {}
        return result

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def rss_mb(self) -> float | None:
        """The worker's resident memory in MB (Linux /proc), or None where it cannot be read."""
        return rss_mb(self.pid)

    async def wait(self) -> int:
        """Wait for the process to exit; then close our end of the channel."""
        returncode = await self.process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader_task
        if not self._writer.is_closing():
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        return returncode

    async def stop(self, grace: float = STOP_GRACE) -> int:
        """Ask the worker to stop (it disconnects without logging out); SIGKILL it if it is not gone after `grace`."""
        if self.running:
            deadline = time.monotonic() + grace
            with contextlib.suppress(WhatsAppError):
                await self.request(protocol.STOP, timeout=grace)
            try:
                return await asyncio.wait_for(self.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                log.warning("worker %d did not stop within %g s; killing it", self.generation, grace)
        return await self.kill()

    async def kill(self) -> int:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)
        return await self.wait()
