"""The worker's intake window: the library's thread waits while too much is unstored, and nothing is dropped."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from app.whatsapp import protocol
from app.whatsapp.intake import Intake


class Frames:
    """The frames the intake writes, decoded; `count(n)` waits until there are n."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.written = asyncio.Condition()
        self.notifying: set[asyncio.Future[None]] = set()

    def write(self, frame: bytes) -> None:
        self.items.append(json.loads(frame[protocol.HEADER.size :]))
        self.notifying.add(notify := asyncio.ensure_future(self._notify()))
        notify.add_done_callback(self.notifying.discard)

    async def _notify(self) -> None:
        async with self.written:
            self.written.notify_all()

    async def count(self, number: int, timeout: float = 5.0) -> None:
        async with self.written:
            await asyncio.wait_for(self.written.wait_for(lambda: len(self.items) >= number), timeout)


def in_library_thread(intake: Intake, count: int, loop: asyncio.AbstractEventLoop) -> threading.Thread:
    """`count` events from a thread of its own, as Go hands them over: reserve (may block), then send on the loop."""

    def run() -> None:
        for number in range(count):
            intake.reserve()
            loop.call_soon_threadsafe(intake.send, "message", {"message_id": f"m{number}"})

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


async def test_the_library_waits_for_room_and_goes_on_as_the_parent_stores() -> None:
    frames = Frames()
    intake = Intake(frames.write, window=10)
    thread = in_library_thread(intake, 25, asyncio.get_running_loop())
    await frames.count(10)
    await asyncio.to_thread(thread.join, 0.3)
    assert thread.is_alive() and len(frames.items) == 10  # blocked: the window is full, nothing is dropped
    intake.stored(4)  # the parent committed the first four
    await frames.count(14)
    assert len(frames.items) == 14 and intake.unstored == 10
    intake.stored(14)
    await frames.count(24)
    intake.stored(24)
    await frames.count(25)
    await asyncio.to_thread(thread.join, 5)
    assert not thread.is_alive()
    assert [item["seq"] for item in frames.items] == list(range(1, 26))
    assert [item["data"]["message_id"] for item in frames.items] == [f"m{n}" for n in range(25)]
    assert {item["type"] for item in frames.items} == {protocol.INCOMING}


async def test_plumbing_gives_its_slot_back_and_a_stopping_worker_never_blocks() -> None:
    frames = Frames()
    loop = asyncio.get_running_loop()
    intake = Intake(frames.write, window=2)
    await intake.reserve_async()
    intake.cancel()  # the event was nothing for the parent
    await intake.deliver("message", {"message_id": "a"})
    await intake.deliver("message", {"message_id": "b"})
    assert intake.unstored == 2
    thread = in_library_thread(intake, 3, loop)
    await asyncio.to_thread(thread.join, 0.3)
    assert thread.is_alive()
    intake.release()  # stopping: what the library still hands over goes out
    await asyncio.to_thread(thread.join, 5)
    await frames.count(5)
    assert intake.unstored == 5
