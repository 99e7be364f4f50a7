"""A webhook receiver in a process of its own, for the benchmarks: it answers 200 to everything and keeps (arrival
time, text, media) of each `message.received`, so that its work does not share the benchmark's interpreter."""

from __future__ import annotations

import multiprocessing
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tests.processes import AppProcess
from tests.session.test_app_processes import pair
from tests.webhooks.receiver import Received, Receiver

SECRET = "bench-webhook-secret"

Seen = tuple[float, str, dict[str, Any]]  # arrival time, the message's text, its media ({} when it has none)


def receiver_process(pipe: Connection) -> None:
    """The child: serve, and answer each `take` over `pipe` with the events since the last one."""
    seen: list[Seen] = []
    lock = threading.Lock()
    receiver = Receiver(record=False)

    def note(request: Received) -> None:
        if b'"message.received"' in request.body[:120]:
            with lock:
                seen.append((request.at, str(request.data.get("text")), dict(request.data.get("media") or {})))

    receiver.on_request = note
    receiver.start()
    pipe.send(receiver.url)
    while True:
        command = pipe.recv()
        if command == "stop":
            receiver.close()
            return
        with lock:
            taken = list(seen)
            seen.clear()
        pipe.send(taken)


class ReceiverProcess:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=receiver_process, args=(child,), daemon=True)
        self.process.start()
        self.url: str = self.pipe.recv()

    def take(self) -> list[Seen]:
        """The message events seen since the last call."""
        self.pipe.send("take")
        seen: list[Seen] = self.pipe.recv()
        return seen

    def wait_messages(self, count: int, timeout: float) -> list[Seen]:
        deadline = time.monotonic() + timeout
        seen: list[Seen] = []
        while len(seen) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(seen)} of {count} events arrived within {timeout:.0f} s")
            time.sleep(0.05)  # another process's progress: polled
            seen += self.take()
        return seen

    def stop(self) -> None:
        self.pipe.send("stop")
        self.process.join(10)


@contextmanager
def paired_app(database_url: str, receiver: ReceiverProcess) -> Iterator[AppProcess]:
    """The real app (hypercorn, the simulator worker), posting its webhooks to `receiver`, its account linked; it
    must stop cleanly (exit 0) after the benchmark's body."""
    env = {"WEBHOOK_URL": receiver.url, "WEBHOOK_SECRET": SECRET, "LOG_LEVEL": "WARNING"}
    app = AppProcess(database_url, Path(tempfile.mkdtemp()) / "app.log", env=env).start()
    try:
        pair(app)
        yield app
        assert app.terminate() == 0, app.output()
    finally:
        app.ensure_stopped()
