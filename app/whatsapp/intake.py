"""The worker's end of the incoming path: what WhatsApp gave us goes to the parent as numbered frames, and at most
WINDOW of them are ever unstored.

whatsmeow acknowledges a message to WhatsApp's server as soon as it is decrypted (neonize 0.5.2 leaves whatsmeow's
SynchronousAck off and does not expose it), so WhatsApp will never redeliver it: from then on it is ours to keep.
The parent answers `{"type": "stored", "seq": N}` once everything up to N is committed in Postgres. While WINDOW
items are unstored (for example during a Postgres outage), the library's event thread blocks in `reserve()`;
whatsmeow handles its incoming nodes one at a time, so it stops taking (and acknowledging) messages, and WhatsApp
keeps them for this linked device until we read again. Memory stays bounded and nothing already acknowledged is dropped.

A slot is reserved before an event is decoded into our vocabulary (on the library's thread, where blocking is the
point), then either used by `send` or given back by `cancel` when the event turned out to be nothing for the
operator. `release` (the worker is stopping) stops all blocking: what the library still hands over is passed on.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from app.whatsapp import protocol

WINDOW = 2000  # unstored items at most: a few MB at worst, and ~2 s of a heavy offline backlog


class Intake:
    def __init__(self, write: Callable[[bytes], None], window: int = WINDOW) -> None:
        self._write = write  # runs on the loop only
        self.window = window
        self._lock = threading.Condition()
        self._sent = 0  # seq of the last frame sent
        self._stored = 0  # the parent's last "stored up to" seq
        self._reserved = 0  # slots taken by events being decoded
        self._released = False
        self._room = asyncio.Event()  # for reservations made on the loop (the simulator)
        self._room.set()

    # -- taking a slot ---------------------------------------------------------------------------------------------

    def _full(self) -> bool:
        return not self._released and (self._sent - self._stored) + self._reserved >= self.window

    def reserve(self) -> None:
        """From the library's own thread: wait for room, then hold one slot. Never call this on the event loop."""
        with self._lock:
            while self._full():
                self._lock.wait()
            self._reserved += 1

    async def reserve_async(self) -> None:
        """From the event loop (the simulated library): await room, then hold one slot."""
        while True:
            with self._lock:
                if not self._full():
                    self._reserved += 1
                    return
                self._room.clear()
            await self._room.wait()

    def cancel(self) -> None:
        """Give a reserved slot back: the event was nothing for the parent (protocol plumbing)."""
        with self._lock:
            self._reserved = max(0, self._reserved - 1)
            self._lock.notify_all()
        self._room.set()

    def send(self, name: str, data: dict[str, Any]) -> int:
        """On the loop: send one item using a reserved slot (or beyond the window once released); its seq."""
        with self._lock:
            self._reserved = max(0, self._reserved - 1)
            self._sent += 1
            seq = self._sent
        self._write(protocol.encode({"type": protocol.INCOMING, "seq": seq, "name": name, "data": data}))
        return seq

    async def deliver(self, name: str, data: dict[str, Any]) -> int:
        """reserve_async + send: how an event-loop producer hands over one item."""
        await self.reserve_async()
        return self.send(name, data)

    # -- the parent's answers and the end ----------------------------------------------------------------------------

    def stored(self, seq: int) -> None:
        """On the loop: the parent committed everything up to `seq`."""
        with self._lock:
            self._stored = max(self._stored, min(seq, self._sent))
            self._lock.notify_all()
        self._room.set()

    def release(self) -> None:
        """The worker is stopping: never block the library again; what it still hands over goes to the parent."""
        with self._lock:
            self._released = True
            self._lock.notify_all()
        self._room.set()

    @property
    def unstored(self) -> int:
        """Items sent to the parent and not yet reported stored (the ping reply shows it)."""
        return self._sent - self._stored
