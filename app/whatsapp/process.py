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

from app.whatsapp import protocol

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent  # `-m app.whatsapp.worker` resolves from here
READY_TIMEOUT = 30.0  # importing neonize takes ~0.5 s; a worker not ready after this is broken
STOP_GRACE = 5.0  # ask, then SIGKILL after this many seconds

EventHandler = Callable[["WorkerProcess", str, dict[str, Any]], None]


class WorkerError(Exception):
    """A command could not be carried out; `permanent` says whether retrying can ever help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class WorkerGone(WorkerError):
    """The worker exited or stopped answering before it replied."""


class WorkerProcess:
    """One worker child. Events (including READY) go to `on_event`, in order, from the reader task."""

    _generations = itertools.count(1)

    def __init__(self, process: asyncio.subprocess.Process, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 on_event: EventHandler) -> None:  # fmt: skip
        self.generation = next(self._generations)
        self.process = process
        self.pid = process.pid
        self.started_at = time.monotonic()
        self._writer = writer
        self._on_event = on_event
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.ready = asyncio.Event()
        self._reader_task = asyncio.create_task(self._read(reader), name=f"worker-{self.generation}-reader")

    @classmethod
    async def spawn(cls, backend: str, database_url: str, on_event: EventHandler, env: dict[str, str] | None = None
                    ) -> WorkerProcess:  # fmt: skip
        parent_end, child_end = socket.socketpair()
        environment = {**os.environ, **(env or {}), "DATABASE_URL": database_url}
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "app.whatsapp.worker", "--fd", str(child_end.fileno()), "--backend", backend,
                pass_fds=(child_end.fileno(),),
                cwd=PROJECT_ROOT,
                env=environment,
                stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            child_end.close()  # the child holds its own copy; ours would keep the channel open after it dies
        reader, writer = await asyncio.open_unix_connection(sock=parent_end)
        worker = cls(process, reader, writer, on_event)
        log.info("worker %d started (pid %d, %s backend)", worker.generation, worker.pid, backend)
        return worker

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await protocol.read_frame(reader)
                if message.get("type") == "reply":
                    future = self._pending.pop(int(message["id"]), None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif message.get("type") == "event":
                    if message["name"] == protocol.READY:
                        self.ready.set()
                    self._on_event(self, str(message["name"]), message.get("data") or {})
        except protocol.ChannelClosed:
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(WorkerGone("the worker exited before replying"))
            self._pending.clear()

    async def request(self, name: str, args: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """Send a command and wait for its reply; WorkerGone if the worker dies or does not answer in time."""
        if self._reader_task.done():
            raise WorkerGone("the worker is not running")
        command_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        try:
            self._writer.write(protocol.encode({"type": "command", "id": command_id, "name": name, "args": args or {}}))
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise WorkerGone(f"the worker did not answer {name!r} within {timeout:g} s") from None
        except ConnectionError:
            raise WorkerGone("the worker's channel is closed") from None
        finally:
            self._pending.pop(command_id, None)
        if not reply.get("ok"):
            raise WorkerError(str(reply.get("error")), permanent=bool(reply.get("permanent")))
        result: dict[str, Any] = reply.get("result") or {}
        return result

    @property
    def running(self) -> bool:
        return self.process.returncode is None

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
            with contextlib.suppress(WorkerError):
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
