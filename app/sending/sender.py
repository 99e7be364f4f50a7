"""The one sender loop: takes queued messages in order and hands them to WhatsApp, only while connected, never faster
than SEND_RATE_PER_MINUTE and never closer than SEND_MIN_INTERVAL (plus a small random extra) apart.

Sending too fast gets an account banned, so the pace is kept across restarts too: the limiter starts from the send
times stored in the last minute. A message may be preceded by "typing..." in its chat (a message's `typing`, or
SEND_TYPING_SECONDS), for a time that grows with its text: that time is spent after the message's turn came and
before it is sent, so it only ever slows the pace down.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import logging
import os
import random
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from app.backoff import Jitter, backoff
from app.db.database import Database
from app.errors import AppError, DatabaseUnavailable, MediaStoreUnavailable, NoReply, WhatsAppError
from app.media import store as media_store
from app.media.storage import POSTGRES, MediaStorage, open_stored
from app.observability import report
from app.sending import queue
from app.tasks import LongTask
from app.times import parse_time, utcnow
from app.whatsapp import protocol

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # transient failures are retried, up to this many attempts in all
RETRY_BASE = 5.0  # seconds; doubled per attempt, with jitter
RETRY_CAP = 300.0
POLL_INTERVAL = 1.0  # a safety net: an enqueue in this process wakes the sender at once
WINDOW = 60.0
STOP_BUDGET = 3.0  # on shutdown, a send in flight gets this long to finish and be recorded
TYPING_CHARS_PER_SECOND = 20.0  # a quick typist; long texts meet the cap anyway
TYPING_MIN = 1.0  # seconds: less than this reads as a flicker, not as someone typing
TYPING_DEFAULT_CAP = 3.0  # seconds, for a message that asks for typing while SEND_TYPING_SECONDS is 0
OUTGOING_SUFFIX = ".send"  # a file handed to the worker to send (incoming ones are ".media")


class RateLimiter:
    """At most `per_minute` sends in any 60 s window, and at least `min_interval` (+ jitter) between two sends."""

    def __init__(self, per_minute: int, min_interval: float, rng: random.Random | None = None) -> None:
        self.per_minute = per_minute
        self.min_interval = min_interval
        self.rng = rng or random.Random()
        self.jitter = min(0.5, 0.25 * min_interval)  # "a small random extra": never a metronome
        self.sent: collections.deque[float] = collections.deque()
        self.gap = self._next_gap()

    def _next_gap(self) -> float:
        return self.min_interval + self.rng.uniform(0, self.jitter)

    def seed(self, times: list[float]) -> None:
        """Start from sends that happened before (epoch seconds), e.g. stored ones after a restart."""
        self.sent.extend(sorted(times))

    def delay(self, now: float) -> float:
        """Seconds to wait before the next send may go out."""
        while self.sent and self.sent[0] <= now - WINDOW:
            self.sent.popleft()
        waits = [0.0]
        if self.sent:
            waits.append(self.sent[-1] + self.gap - now)
        if len(self.sent) >= self.per_minute:
            waits.append(self.sent[-self.per_minute] + WINDOW - now)
        return max(waits)

    def record(self, at: float) -> None:
        self.sent.append(at)
        self.gap = self._next_gap()


# In what whatsmeow says when a send finds no websocket ("websocket not connected") and what the neonize backend says
# before its connection is up ("not connected to WhatsApp yet"): the session is down, not the message wrong.
LINK_DOWN = "not connected"


def link_down(error: WhatsAppError) -> bool:
    return not error.permanent and LINK_DOWN in str(error).lower()


def typing_seconds(text: str, asked: bool | None, cap: float, rng: random.Random) -> float:
    """How long to show "typing..." before sending `text`: 0 when not asked for (`asked` False, or None with no
    SEND_TYPING_SECONDS), else by its length (with a little jitter) from TYPING_MIN up to the cap."""
    if asked is False or (asked is None and cap <= 0):
        return 0.0
    limit = cap if cap > 0 else TYPING_DEFAULT_CAP
    by_length = len(text) / TYPING_CHARS_PER_SECOND * rng.uniform(0.85, 1.15)
    return min(limit, max(TYPING_MIN, by_length))


def action_command(row: Any) -> tuple[str, dict[str, Any]]:
    """The worker command that carries out a queued action on a message."""
    chat, target = row["jid"], row["target_id"]
    if row["kind"] == "reaction":
        return protocol.SEND_REACTION, {"chat": chat, "target_id": target, "sender": row["target_sender"],
                                        "emoji": row["text"]}  # fmt: skip
    if row["kind"] == "edit":
        return protocol.EDIT_MESSAGE, {"chat": chat, "target_id": target, "text": row["text"]}
    if row["kind"] == "delete":
        return protocol.REVOKE_MESSAGE, {"chat": chat, "target_id": target, "sender": row["target_sender"]}
    raise ValueError(f"unknown kind {row['kind']!r}")


def message_args(row: Any) -> dict[str, Any]:
    """The protocol.SEND_MESSAGE arguments of a queued message other than a plain text (without its file's path)."""
    if row["kind"] == "text":  # a text that quotes another
        content: dict[str, Any] = {"type": "text", "text": row["text"], "mentions": row["mentions"]}
    else:
        content = {"type": row["kind"], **json.loads(row["content"])}
    reply = None
    if row["reply_to"] is not None:
        quoted = base64.b64encode(row["reply_quoted"]).decode() if row["reply_quoted"] else None
        reply = {"id": row["reply_to"], "sender": row["reply_sender"], "quoted": quoted}
    return {"to": row["jid"], "content": content, "reply": reply}


async def handed_file(folder: str, chunks: AsyncIterator[bytes]) -> str:
    """Write a file to send into the worker's media folder (private to this process), a piece at a time; its path.
    Removed again if the pieces stop coming (the store failed), so nothing half-written is left behind."""
    handle, path = tempfile.mkstemp(suffix=OUTGOING_SUFFIX, dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            async for chunk in chunks:
                file.write(chunk)  # a local disk takes a piece in well under a millisecond
    except BaseException:
        os.unlink(path)
        raise
    return path


def retry_delay(attempt: int, rng: random.Random, base: float = RETRY_BASE) -> float:
    """Seconds to wait after the `attempt`-th failed attempt: equal jitter, never much sooner than the schedule."""
    return backoff(attempt - 1, base=base, cap=RETRY_CAP, jitter=Jitter.EQUAL, rng=rng)


class Session(Protocol):
    """What the sender needs of the WhatsApp session (the session supervisor is one)."""

    @property
    def connected(self) -> bool: ...

    async def until_connected(self) -> None:
        """Return once the session is connected (at once if it is)."""

    async def send_text(
        self,
        to: str,
        text: str,
        late: Callable[[dict[str, Any]], None] | None = None,
        mentions: list[str] | None = None,
    ) -> dict[str, Any]:
        """WhatsApp's answer ({"message_id", "timestamp"}); WhatsAppError if it was not sent, NoReply if unknown."""

    async def send_presence(self, chat: str, state: str) -> None:
        """Show "typing" (or "paused") in a chat; AppError if WhatsApp did not take it."""

    async def send_action(
        self, name: str, args: dict[str, Any], late: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        """A reaction, edit or delete, or a message other than a plain text (protocol.SEND_MESSAGE): a worker
        command (app/whatsapp/protocol.py), answered as send_text is."""


class Sender:
    """The sender task. It is restarted if it dies (see `start`), and shows in /api/status as `message-sender`."""

    def __init__(
        self,
        database: Database,
        session: Session,
        *,
        per_minute: int,
        min_interval: float,
        rng: random.Random | None = None,
        retry_base: float = RETRY_BASE,
        typing_cap: float = 0.0,
        media_dir: str | None = None,
        media_storage: MediaStorage = POSTGRES,
    ) -> None:
        self.database = database
        self.media_storage = media_storage  # where the bytes of files to send are read from
        self.media_dir = media_dir  # the worker's media folder: files to send are handed over there
        self.typing_cap = typing_cap  # SEND_TYPING_SECONDS: 0 = typing only for messages that ask for it
        self.retry_base = retry_base
        self.session = session
        self.rng = rng or random.Random()
        self.limiter = RateLimiter(per_minute, min_interval, self.rng)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # clear while a message is in WhatsApp's hands
        self._idle.set()
        self._stopping = False
        self._stopped = asyncio.Event()  # set by stop(): a typing pause ends at once
        self._seeded = False  # the limiter knows the sends of the last minute before this process
        self._task: LongTask | None = None
        self._late_tasks: set[asyncio.Future[None]] = set()

    def wake(self) -> None:
        """Something was enqueued: look now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        # Restarted, not left dead: the queue is in Postgres and the sender's state (the pace) in this object, so a
        # new run carries on where the dead one stopped, and a 202 keeps its promise that the message goes out. A 503
        # instead would hand a fault this process can mend to every client.
        self._task = LongTask("message-sender", self._run, restart=True).start()

    async def stop(self, budget: float = STOP_BUDGET) -> None:
        """Stop taking messages; let a send in flight finish and be recorded, within `budget` seconds. Past that it
        is abandoned: its row stays `sending` and the next start settles it (see queue.fail_interrupted)."""
        self._stopping = True
        self._stopped.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), budget)
        if self._task is not None:
            await self._task.stop()

    async def _run(self) -> None:
        recovered = False  # per run: a run after a restart settles what the dead one left `sending`
        while True:
            try:
                await self.session.until_connected()
                if not recovered:
                    await self._recover()
                    recovered = True
                await self._send_one()
            except DatabaseUnavailable as error:
                log.warning("sender paused: %s", error)
                await asyncio.sleep(POLL_INTERVAL)
            except Exception as error:  # the loop must outlive any one message
                log.exception("sender error")
                report(error)
                await asyncio.sleep(POLL_INTERVAL)

    async def _recover(self) -> None:
        """Before a run sends for the first time: settle what a dead process (or run) left `sending`, and, once per
        process, start the rate limiter from the last minute's sends (this object keeps them after that)."""
        async with self.database.transaction() as connection:
            interrupted = await queue.fail_interrupted(connection)
            recent = await queue.recent_send_times(connection)
        if interrupted:
            log.warning("%d message(s) were being sent when a process stopped; marked failed (not resent)", interrupted)
        if not self._seeded:
            self.limiter.seed([at.timestamp() for at in recent])
            self._seeded = True

    async def _send_one(self) -> None:
        wait = self.limiter.delay(time.time())
        if wait > 0:
            await asyncio.sleep(wait)
            return  # look at the session again before sending
        if self._stopping:
            await asyncio.Event().wait()  # take nothing more; stop() cancels us
        self._idle.clear()
        try:
            async with self.database.transaction() as connection:
                row = await queue.claim_next(connection)
            if row is not None:
                await self._deliver(row)
        finally:
            self._idle.set()
        if row is None:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_INTERVAL)

    async def _show_typing(self, row: Any) -> bool | None:
        """Show "typing..." in the message's chat for its time: whether it was shown, or None if the sender is
        stopping meanwhile (then nothing is sent). A presence WhatsApp does not take holds no message back."""
        if row["kind"] != "text":
            return False  # typing goes before a text only: not before a file, a location, a contact or an action
        seconds = typing_seconds(row["text"], row["typing"], self.typing_cap, self.rng)
        if seconds <= 0:
            return False
        try:
            await self.session.send_presence(row["jid"], "typing")
        except AppError as error:
            log.warning("no typing indicator before message %s: %s", row["id"], error)
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)
        return None if self._stopped.is_set() else True

    async def _deliver(self, row: Any) -> None:
        message_id: uuid.UUID = row["id"]
        typed = await self._show_typing(row)
        if typed is None:
            # Stopping while "typing": the message never reached WhatsApp; it waits for the next start, unharmed.
            await self._settle(queue.requeue, message_id, 0.0, None, counts=False)
            return
        try:
            late = self._late_answer(message_id)
            if row["kind"] in queue.ACTIONS:
                result = await self.session.send_action(*action_command(row), late=late)
            elif row["kind"] == "text" and row["reply_to"] is None:
                result = await self.session.send_text(row["jid"], row["text"], late=late, mentions=row["mentions"])
            else:
                result = await self._send_message(row, late)
        except DatabaseUnavailable as error:
            # A file to send could not be read: nothing went out; it waits its turn again (settled once Postgres is
            # back), the attempt given back.
            await self._settle(queue.requeue, message_id, POLL_INTERVAL, str(error), counts=False)
            return
        except MediaStoreUnavailable as error:
            # Its bucket did not answer: nothing went out and the message is not at fault; it waits the usual
            # backoff, the attempt given back, for as long as the bucket is down.
            delay = retry_delay(row["attempts"], self.rng, self.retry_base)
            await self._settle(queue.requeue, message_id, delay, str(error), counts=False)
            return
        except NoReply as error:
            # No reply: the worker died or hung with the message in its hands. It may have gone out.
            self.limiter.record(time.time())
            await self._settle(queue.mark_failed, message_id, f"{queue.INTERRUPTED_ERROR} ({error})")
            return
        except WhatsAppError as error:
            if typed and self.session.connected:
                with contextlib.suppress(AppError):  # not sent: stop "typing..." now rather than in 25 s
                    await self.session.send_presence(row["jid"], "paused")
            if not self.session.connected:
                # The session dropped between claim and send: nothing went out; wait for the reconnect.
                await self._settle(queue.requeue, message_id, 0.0, str(error), counts=False)
            elif link_down(error):
                # The link died silently (the heartbeat has not found out yet): nothing went out and the message is
                # not at fault, so the attempt is given back; it waits the usual backoff, not counted, meanwhile.
                delay = retry_delay(row["attempts"], self.rng, self.retry_base)
                await self._settle(queue.requeue, message_id, delay, str(error), counts=False)
            elif error.permanent:
                self.limiter.record(time.time())
                await self._settle(queue.mark_failed, message_id, str(error))
            elif row["attempts"] >= MAX_ATTEMPTS:
                self.limiter.record(time.time())
                await self._settle(queue.mark_failed, message_id, f"gave up after {MAX_ATTEMPTS} attempts: {error}")
            else:
                self.limiter.record(time.time())
                delay = retry_delay(row["attempts"], self.rng, self.retry_base)
                await self._settle(queue.requeue, message_id, delay, str(error), counts=True)
            return
        sent_at = parse_time(result.get("timestamp")) or utcnow()
        self.limiter.record(time.time())
        await self._settle(queue.mark_sent, message_id, str(result["message_id"]), sent_at)
        log.info("sent message %s as %s", message_id, result["message_id"])

    async def _send_message(self, row: Any, late: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """A message other than a plain text. A file's bytes are read from the media table when its turn comes and
        handed to the worker as a file in its media folder (never in a frame); the file is deleted once the worker
        answered, failed or was given up on. A file no longer stored fails the message for good."""
        args = message_args(row)
        media_id = args["content"].get("media_id")
        path = None
        if media_id is not None:
            if self.media_dir is None:
                raise WhatsAppError("this process has no media folder to hand files to the worker", permanent=True)
            # The one read of a file to send, from its row or its bucket (MediaStoreUnavailable while that is down),
            # a piece at a time into the file the worker reads: this process never holds the whole file.
            async with self.database.connection() as connection:
                stored = await media_store.served(connection, uuid.UUID(media_id))
            chunks = await open_stored(self.database, self.media_storage, stored) if stored is not None else None
            if chunks is None:
                raise WhatsAppError(f"the file {media_id} is no longer stored (deleted or removed)", permanent=True)
            try:
                path = await handed_file(self.media_dir, chunks)
            except OSError as error:  # a full disk, say: nothing went out; tried again with the usual backoff
                raise WhatsAppError(f"could not hand the file to the worker: {error.strerror or error}") from error
            args["file"] = path
        try:
            return await self.session.send_action(protocol.SEND_MESSAGE, args, late=late)
        finally:
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def _late_answer(self, message_id: uuid.UUID) -> Any:
        """What to do with WhatsApp's answer if it comes after the send was counted as interrupted: record its id,
        so that receipts find the message and its status becomes `sent` after all."""

        def record(result: dict[str, Any]) -> None:
            sent_at = parse_time(result.get("timestamp")) or utcnow()
            log.warning("message %s was sent after all, as %s (a late answer)", message_id, result.get("message_id"))
            coroutine = self._settle(queue.mark_sent_late, message_id, str(result["message_id"]), sent_at)
            task = asyncio.ensure_future(coroutine)
            self._late_tasks.add(task)
            task.add_done_callback(self._late_tasks.discard)

        return record

    async def _settle(self, operation: Any, *args: Any, **kwargs: Any) -> None:
        """Record a send's outcome; if Postgres is down, keep trying: the outcome must not be lost."""
        while True:
            try:
                async with self.database.transaction() as connection:
                    await operation(connection, *args, **kwargs)
                return
            except DatabaseUnavailable as error:
                log.warning("cannot record a send's outcome yet: %s", error)
                await asyncio.sleep(POLL_INTERVAL)
