"""AUTO_READ: an incoming message is marked read at WhatsApp (the sender sees blue ticks) once a webhook endpoint took
its `message.received` event, so a message nobody has received yet never shows as read.

The dispatcher reports each successful delivery here (`delivered`, cheap and synchronous); one task sends the read
receipts, one per chat and sender, a moment later so that a burst goes out in few receipts. Receipts are held in
memory only: should the session be down or the process stop before they go, those messages stay unread on the
sender's phone, which costs nothing but the ticks (a read receipt is never worth a retry queue or a reconnect).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from app.errors import AppError
from app.tasks import LongTask

log = logging.getLogger(__name__)

BATCH_DELAY = 0.5  # seconds: deliveries in this window share their receipts
MAX_PENDING = 5000  # receipts waiting at most; past this, the newest are dropped (the link is down, most likely)
REMEMBERED = 10000  # ids already handed over, so that a second endpoint's delivery marks nothing twice

MarkRead = Callable[[str, str, list[str]], Awaitable[Any]]  # (chat, sender, message ids)


class AutoReader:
    def __init__(self, mark_read: MarkRead, *, batch_delay: float = BATCH_DELAY) -> None:
        self.mark_read = mark_read
        self.batch_delay = batch_delay
        self.marked = 0  # message ids WhatsApp took read receipts for
        self.dropped = 0  # ... and those it did not (session down, refused, too many waiting)
        self._pending: dict[tuple[str, str], list[str]] = {}
        self._count = 0
        self._seen: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._wake = asyncio.Event()
        self._task: LongTask | None = None

    def start(self) -> None:
        self._task = LongTask("auto-read", self._run, restart=True).start()

    async def stop(self) -> None:
        if self._task is not None:
            await self._task.stop()

    def delivered(self, event_type: str, data_json: str) -> None:
        """A webhook endpoint took this event (called by the dispatcher for every successful delivery)."""
        if event_type != "message.received":
            return
        data = json.loads(data_json)
        chat, message_id = str(data.get("chat") or ""), str(data.get("message_id") or "")
        sender = data.get("sender_jid") or (None if data.get("is_group") else chat)
        if not (chat and message_id and sender) or data.get("is_from_me"):
            return
        key = (chat, message_id)
        if key in self._seen:
            return
        self._seen[key] = None
        if len(self._seen) > REMEMBERED:
            self._seen.popitem(last=False)
        if self._count >= MAX_PENDING:
            self.dropped += 1
            return
        self._pending.setdefault((chat, str(sender)), []).append(message_id)
        self._count += 1
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.batch_delay)
            self._wake.clear()
            pending, self._pending, self._count = self._pending, {}, 0
            for (chat, sender), ids in pending.items():
                try:
                    await self.mark_read(chat, sender, ids)
                    self.marked += len(ids)
                except AppError as error:  # the session is down or WhatsApp refused: the ticks are lost, no more
                    self.dropped += len(ids)
                    log.warning("could not mark %d message(s) in %s read: %s", len(ids), chat, error)
