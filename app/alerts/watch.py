"""The alert watch: reads the session's trail and the dead letters every few seconds (and at every transition), opens
and clears incidents in Postgres, and sends what is due. It runs in the process that holds the session lease.

Reading the stored trail, not the supervisor's memory, is what makes it survive a restart: the watch's place in the
trail is stored with the incidents it opened, in one transaction, so nothing is announced twice or skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import asyncpg

from app.alerts import incidents, send, texts
from app.alerts.incidents import Limits, Message
from app.backoff import Jitter, backoff
from app.db.database import UNAVAILABLE, Database, describe
from app.observability import report
from app.tasks import LongTask
from app.times import utcnow

if TYPE_CHECKING:
    from app.session.supervisor import Supervisor
    from app.settings import Settings

log = logging.getLogger(__name__)

INTERVAL = 5.0  # seconds between passes when no transition wakes the watch
LIMITS = Limits(per_kind=dt.timedelta(minutes=15), per_hour=10)
GIVE_UP_AFTER = 8  # failed sends of one message (each up to send.TRIES POSTs), 1, 2, 4 ... minutes apart
TRANSITIONS_PER_READ = 500
STOP_REASONS = frozenset({"replaced", "outdated", "bad_user_agent"})  # stopped for good until someone acts
# Not connected, and working on it by itself: an alert only once this lasts longer than ALERT_AFTER_SECONDS.
WAITING_STATES = frozenset({"connecting", "reconnecting", "replaced"})


class Alerts:
    def __init__(
        self,
        database: Database,
        *,
        webhook_url: str | None,
        after_seconds: float,
        holds_lease: Callable[[], bool] = lambda: True,
        changed: asyncio.Condition | None = None,
        interval: float = INTERVAL,
        limits: Limits = LIMITS,
        secrets: Iterable[str] = (),
        tries: int = send.TRIES,
        backoff: float = send.BACKOFF,
        give_up_after: int = GIVE_UP_AFTER,
    ) -> None:
        self.database = database
        self.webhook_url = webhook_url
        self.after = dt.timedelta(seconds=after_seconds)
        self.holds_lease = holds_lease
        self.changed = changed  # the supervisor's transitions wake the watch at once
        self.interval = interval
        self.limits = limits
        self.secrets = [secret for secret in secrets if secret]
        self.tries, self.backoff, self.give_up_after = tries, backoff, give_up_after
        # A start is a fresh attempt: the reconnecting clock does not count the time the app was down or starting.
        self.started_at = utcnow()
        self.sent = 0  # messages this process delivered
        self.passes = 0
        self.last_error: str | None = None
        self._passed = asyncio.Condition()
        self._task: LongTask | None = None
        self._stopping = False

    @classmethod
    def for_session(cls, database: Database, settings: Settings, supervisor: Supervisor) -> Alerts:
        """The app's watch: it looks only while `supervisor` holds the lease, and wakes at each of its transitions."""
        lease = supervisor.lease
        return cls(
            database,
            webhook_url=settings.alert_webhook_url,
            after_seconds=settings.alert_after_seconds,
            holds_lease=lambda: lease.held,
            changed=supervisor.state_changed,
            secrets=settings.secrets(),
        )

    def start(self) -> None:
        self._task = LongTask("alerts", self._run, restart=True).start()

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            await self._task.stop()
            self._task = None

    async def passed(self, passes: int) -> None:
        """Return once at least `passes` passes have finished (for tests)."""
        async with self._passed:
            await self._passed.wait_for(lambda: self.passes >= passes)

    async def check(self) -> None:
        """One pass: open and clear incidents from what happened since the last one, then send what is due."""
        now = utcnow()
        async with self.database.transaction() as connection:
            await incidents.lock(connection)
            await self._read_session(connection, now)
            await self._read_dead_letters(connection, now)
        await self._send_due()

    async def _run(self) -> None:
        while not self._stopping:
            if self.holds_lease():
                try:
                    await self.check()
                except UNAVAILABLE as error:
                    self.last_error = f"Postgres is unavailable: {describe(error)}"
                    log.warning("alerts: %s; looking again shortly", self.last_error)
                except Exception as error:  # a bug must not end the alerts for the life of the process
                    self.last_error = describe(error)
                    log.exception("alerts: a pass failed")
                    report(error)
                else:
                    self.last_error = None
            async with self._passed:
                self.passes += 1
                self._passed.notify_all()
            await self._wait()

    async def _wait(self) -> None:
        if self.changed is None:
            await asyncio.sleep(self.interval)
            return
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow the task's cancellation when the wait ends
        # at that moment (a transition notifies as the app stops), and the watch would then never stop.
        async with self.changed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self.changed.wait()

    # ---- what happened ----------------------------------------------------------------------------------------

    async def _read_session(self, connection: asyncpg.Connection, now: dt.datetime) -> None:
        cursor, disconnected_at = await incidents.read_watch(connection)
        status = await incidents.session_status(connection)
        while True:
            rows = await incidents.transitions_after(connection, cursor, TRANSITIONS_PER_READ)
            for row in rows:
                cursor = row["id"]
                disconnected_at = await self._apply(connection, row, status, disconnected_at)
            if len(rows) < TRANSITIONS_PER_READ:
                break
        await incidents.save_watch(connection, cursor, disconnected_at)
        if status is None or status["state"] not in WAITING_STATES:
            return
        if await incidents.open_incidents(connection, texts.NEEDS_A_PERSON):
            return  # someone was told already that the session needs them
        since = max(disconnected_at or self.started_at, self.started_at)
        if now - since >= self.after:
            detail = f"last: {str(status['reason'] or 'connecting').replace('_', ' ')}"
            await self._open(connection, texts.RECONNECTING, since, texts.reconnecting(since, now, detail))

    async def _apply(
        self,
        connection: asyncpg.Connection,
        row: asyncpg.Record,
        status: asyncpg.Record | None,
        disconnected_at: dt.datetime | None,
    ) -> dt.datetime | None:
        """Open or clear incidents for one transition; return when the session last left 'connected'."""
        to_state, reason, at, detail = row["to_state"], row["reason"], row["at"], row["detail"]
        if to_state == "connected":
            for incident in await incidents.open_incidents(connection, texts.SESSION_KINDS):
                recovery = self._scrub(texts.recovery(incident["kind"], incident["opened_at"], at))
                await incidents.clear_incident(connection, incident["id"], at, recovery)
            return None
        if row["from_state"] == "connected":
            disconnected_at = at
        if to_state == "logged_out" and reason == "logged_out":
            await self._open(connection, texts.LOGGED_OUT, at, texts.logged_out(at, detail))
        elif to_state == "banned":
            retry_at = status["retry_at"] if status is not None and status["state"] == "banned" else None
            await self._open(connection, texts.BANNED, at, texts.banned(at, detail, retry_at))
        elif to_state == "stopped" and reason in STOP_REASONS:
            await self._open(connection, texts.STOPPED, at, texts.stopped(at, reason, detail))
        if reason == "worker_memory":
            await self._open(connection, texts.WORKER_MEMORY, at, texts.worker_memory(at, detail))
        return disconnected_at

    async def _read_dead_letters(self, connection: asyncpg.Connection, now: dt.datetime) -> None:
        count, newest = await incidents.dead_letters(connection)
        opened = await incidents.open_incidents(connection, (texts.DEAD_LETTERS,))
        if count and not opened:
            await self._open(connection, texts.DEAD_LETTERS, now, texts.dead_letters(now, count, newest))
        elif not count and opened:
            recovery = texts.recovery(texts.DEAD_LETTERS, opened[0]["opened_at"], now)
            await incidents.clear_incident(connection, opened[0]["id"], now, recovery)

    async def _open(self, connection: asyncpg.Connection, kind: str, at: dt.datetime, text: str) -> None:
        if await incidents.open_incident(connection, kind, at, self._scrub(text)):
            log.info("alerts: %s incident opened", kind)

    def _scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "…")
        return text

    # ---- telling someone --------------------------------------------------------------------------------------

    async def _send_due(self) -> None:
        async with self.database.transaction() as connection:
            await incidents.lock(connection)
            messages = await incidents.claim_due(connection, utcnow(), self.limits)
        for message in messages:
            level = "info" if message.is_recovery else texts.LEVELS.get(message.kind, "warning")
            try:
                error = await send.deliver(
                    self.webhook_url,
                    message.text,
                    level,
                    first=message.attempts == 0,
                    tries=self.tries,
                    backoff=self.backoff,
                )
            except asyncio.CancelledError:
                await self._record(message, "interrupted by a shutdown")  # claimed but not sent: due again
                raise
            await self._record(message, error)

    async def _record(self, message: Message, error: str | None) -> None:
        async with self.database.transaction() as connection:
            if error is None:
                self.sent += 1
                await incidents.sent(connection, message)
                return
            give_up = message.attempts + 1 >= self.give_up_after
            retry_at = utcnow() + dt.timedelta(seconds=backoff(message.attempts, base=60, cap=3600, jitter=Jitter.NONE))
            await incidents.failed(connection, message, self._scrub(error), retry_at, give_up)
        if give_up:
            log.error(
                "alerts: gave up sending the %s %s after %d tries",
                message.kind,
                "recovery" if message.is_recovery else "alert",
                self.give_up_after,
            )
