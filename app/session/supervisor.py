"""The session supervisor: holds the lease, runs one worker at a time, applies the reconnect policy, beats the heart.

Everything that changes the session (worker events, worker exits, heartbeat findings, retry timers, operator actions,
losing the lease) goes through one queue and is handled by one task, in order. That is what rules out two connection
attempts at once: a new worker is started only after the previous one is gone.

No message passes through here: each worker's incoming frames go from its channel straight to the message store
(`incoming`), whichever generation it is and whatever the session is doing, so a backlog never delays a reconnect or
an operator action, and retiring a worker never drops what it still hands over.

A dropped connection is whatsmeow's to mend first. After a connection that had succeeded, whatsmeow reconnects by
itself at once (its error count was reset) and receives WhatsApp's offline backlog in that same client; recycling the
worker instead would cost a new connect() (neonize leaks one Postgres connection per call), a second of startup, and
would put the backlog into a worker being retired. So the worker is kept for RECONNECT_GRACE; only if Connected does
not come back within it is the worker retired and the reconnect policy (backoff with jitter, one attempt at a time)
takes over.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import functools
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from app.db.database import Database
from app.errors import AppError, DatabaseUnavailable, NoReply, WhatsAppError
from app.observability import process_name, report
from app.session import audit
from app.session.lease import session_lease
from app.session.policy import DEFAULT, TRANSIENT, Policy, decide
from app.session.states import Reason, State
from app.session.status import Live
from app.tasks import LongTask, wait_any, watch
from app.times import utcnow
from app.whatsapp import backend as events
from app.whatsapp import protocol
from app.whatsapp.process import READY_TIMEOUT, WorkerProcess
from app.whatsapp.protocol import WorkerSettings

log = logging.getLogger(__name__)

PING_TIMEOUT = 10.0  # a worker that does not answer a ping within this (or two heartbeat intervals) is hung
PAIRING_ROUNDS = 3  # at most this many QR rounds ...
PAIRING_ROUNDS_WINDOW = 120.0  # ... per this many seconds
COMMAND_TIMEOUT = 30.0
RATE_LIMITED = re.compile(r"\b429\b|rate-overlimit")  # whatsmeow's IQ error for too many queries
UNRECORDED_MAX = 100  # session state changes kept in memory while Postgres cannot take them
LEASE_LOST_GRACE = 1.0  # a worker whose lease is gone gets this long to hand over what it holds, then SIGKILL

# Where a worker's incoming items go (MessageStore.take): name, data, and what to call once it is stored.
Incoming = Callable[[str, dict[str, Any], Callable[[], None] | None], None]


class SessionError(AppError):
    """An operator action that the session cannot carry out now; `status` is the HTTP status that fits."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def log_only(name: str, data: dict[str, Any], stored: Callable[[], None] | None) -> None:
    log.info("%s from WhatsApp (no store attached)", name)
    if stored is not None:
        stored()


class Supervisor:
    def __init__(
        self,
        *,
        database: Database,
        worker: WorkerSettings,
        heartbeat_interval: float,
        incoming: Incoming = log_only,
        worker_env: dict[str, str] | None = None,
        rng: random.Random | None = None,
        policy: Policy = DEFAULT,
        worker_max_rss_mb: float | None = None,
    ) -> None:
        self.database = database
        self.worker_settings = worker  # what each worker is told in its first frame
        self.database_url = worker.database_url
        self.backend = worker.backend
        self.heartbeat_interval = heartbeat_interval
        self.ping_timeout = min(PING_TIMEOUT, 2 * heartbeat_interval)
        self.send_timeout = events.SEND_TIMEOUT
        self.worker_max_rss_mb = worker_max_rss_mb  # the memory watchdog's limit (None: no watchdog)
        self.incoming = incoming
        self.worker_env = worker_env  # the worker's environment (None: this process's); its libraries read it
        self.rng = rng or random.Random()
        self.policy = policy
        self.process = process_name()
        self.lease = session_lease(self.database_url)

        self.state = State.STARTING
        self.since = utcnow()
        self.reason = "process starting"
        self.detail: str | None = None
        self.retry_at: dt.datetime | None = None
        self.account: dict[str, Any] | None = None
        self.qr: dict[str, Any] | None = None
        self.worker: WorkerProcess | None = None
        self.attempt = 0  # failures since the session was last stable
        self.connected_at: float | None = None
        self.replaced_at: list[dt.datetime] = []
        self.pairing_rounds: collections.deque[float] = collections.deque()
        self.last_heartbeat: dt.datetime | None = None
        self.state_changed = asyncio.Condition()  # notified on every transition and QR rotation (live page)

        self._inputs: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._retry: asyncio.TimerHandle | None = None
        self._grace: asyncio.TimerHandle | None = None  # whatsmeow is reconnecting by itself until this fires
        self._stopping = asyncio.Event()
        self._task: LongTask | None = None
        self._side_tasks: set[asyncio.Task[Any]] = set()
        # Transitions Postgres could not take yet (an outage of the pool while the lease holds), oldest first; written
        # before the next one, or by the next heartbeat. Bounded: a crash loop through a long outage keeps the newest.
        self._unrecorded: collections.deque[audit.Transition] = collections.deque(maxlen=UNRECORDED_MAX)
        self._recording = asyncio.Lock()  # the loop and the heartbeat both write them

    # ---- life cycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        # Not restarted: its worker, lease and timers would be in whatever state the bug left them. It stops the
        # session instead, visibly, and gives the lease up so that a standby process can take over.
        self._task = LongTask("session-supervisor", self._run, restart=False, on_death=self._died).start()

    def _died(self, error: BaseException) -> None:
        self.state, self.since, self.reason = State.STOPPED, utcnow(), "supervisor_failed"
        self.detail = f"the session supervisor failed ({type(error).__name__}: {error}); restart the app"
        self._side_task(self._abandon(), "session-abandon")

    async def _abandon(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            await worker.kill()
        await self.lease.release()
        await self._notify()

    async def stop(self, budget: float = 9.0) -> None:
        """Stop taking work, stop the worker without logging out, release the lease; all within `budget` seconds."""
        self._stopping.set()
        self._inputs.put_nowait(("shutdown",))
        if self._task is None or self._task.task is None:
            return
        # (A supervisor that died earlier is done already: its death was logged, and _abandon cleaned up.)
        ended, _ = await asyncio.wait({self._task.task}, timeout=budget)
        await self._task.stop()  # cancels it if it is still running, and takes it off the status
        if not ended:
            log.error("the supervisor did not stop within %.0f s; killed its worker", budget)
            if self.worker is not None:
                await self.worker.kill()
            await self.lease.release()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            if not await self._acquire_lease():
                break
            log.info("this process now holds the session lease")
            await self._write(lambda c: audit.close_unfinished(c, self.process, self.heartbeat_interval))
            lease_watch = self._side_task(self._watch_lease(), "session-lease-watch")
            heartbeat = self._side_task(self._heartbeat_loop(), "session-heartbeat")
            try:
                lost = await self._hold()
            finally:
                heartbeat.cancel()
                lease_watch.cancel()
                self._cancel_retry()
                self._cancel_grace()
            if lost:
                # Another process may be connecting already: the worker goes now, with a moment to hand over what
                # whatsmeow already acknowledged (the store keeps it until Postgres takes it).
                if self.worker is not None:
                    worker, self.worker = self.worker, None
                    await worker.stop(LEASE_LOST_GRACE)
                self._forget_unrecorded("the lease was lost")
                await self._transition(State.STANDBY, "lease_lost", "lost the lease connection; worker stopped")
                continue
            break
        await self._retire_worker()
        if self.lease.held:
            await self._transition(State.STOPPED, "shutdown", "the process is shutting down")
        self._forget_unrecorded("the process stopped while Postgres was unavailable")
        await self.lease.release()

    async def _acquire_lease(self) -> bool:
        """Poll for the lease until held (True) or until the process stops (False), saying why it waits."""
        while not self._stopping.is_set():
            if await self.lease.try_acquire():
                return True
            if self.lease.unreachable is not None:
                reason, detail = "database_unavailable", f"Postgres is unavailable: {self.lease.unreachable}"
            else:
                reason, detail = "lease_held_elsewhere", "another process holds the session"
            if (self.state, self.reason, self.detail) != (State.STANDBY, reason, detail):
                await self._transition(State.STANDBY, reason, detail)
            await wait_any(self._stopping.wait(), timeout=self.lease.poll_interval)  # the standby rhythm
        return False

    def _side_task(self, coroutine: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        """A named task of this lease tenure (a death is logged and reported); kept referenced until it ends."""
        task = watch(asyncio.ensure_future(coroutine), name)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)
        return task

    async def _watch_lease(self) -> None:
        await self.lease.watch()
        self._inputs.put_nowait(("lease_lost",))

    # ---- the one loop that changes the session ----------------------------------------------------------------

    async def _hold(self) -> bool:
        """Run the session while holding the lease; True if the lease was lost, False on shutdown."""
        await self._spawn("boot")
        while True:
            item = await self._inputs.get()
            kind = item[0]
            if kind == "shutdown":
                return False
            if kind == "lease_lost":
                return True
            try:
                await self._handle(item)
            except Exception as error:  # the loop must survive anything one input does
                log.exception("error while handling %s", kind)
                report(error)
                if len(item) > 1 and isinstance(item[-1], asyncio.Future) and not item[-1].done():
                    item[-1].set_exception(error)

    async def _handle(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "event":
            _, generation, name, data = item
            if self.worker is not None and generation == self.worker.generation:
                await self._on_event(name, data)
        elif kind == "exited":
            _, generation, returncode = item
            if self.worker is not None and generation == self.worker.generation:
                self.worker = None
                await self._fail(Reason.WORKER_CRASHED, f"the worker exited with status {returncode}")
        elif kind == "hung":
            if self.worker is not None and item[1] == self.worker.generation:
                worker, self.worker = self.worker, None
                await worker.kill()
                await self._fail(Reason.WORKER_HUNG, f"no reply to a ping within {self.ping_timeout:g} s; killed")
        elif kind == "too_big":
            if self.worker is not None and item[1] == self.worker.generation:
                limit = f"{self.worker_max_rss_mb:g}"
                await self._fail(Reason.WORKER_MEMORY, f"the worker used {item[2]:.0f} MB, more than {limit} MB")
        elif kind == "dead_link":
            if self.worker is not None and item[1] == self.worker.generation and self.state is State.CONNECTED:
                await self._fail(Reason.HEARTBEAT_LOST, "the worker reports no connection behind 'connected'")
        elif kind == "retry":
            if self._retry is not None and item[1] is self._retry:
                self._retry = None
                await self._spawn(item[2])
        elif kind == "grace_over":
            if self._grace is not None and item[1] is self._grace:
                self._grace = None
                await self._fail(
                    Reason.CONNECTION_LOST, f"whatsmeow did not reconnect within {self.policy.reconnect_grace:g} s"
                )
        elif kind == "operator":
            _, action, future = item
            try:
                result = await action()
            except Exception as error:
                if not future.done():
                    future.set_exception(error)
            else:
                if not future.done():
                    future.set_result(result)

    async def _on_event(self, name: str, data: dict[str, Any]) -> None:
        if name == events.QR:
            if self.state is not State.PAIRING:
                self.pairing_rounds.append(time.monotonic())
                self.qr = {"payload": data["payload"], "received_at": utcnow().isoformat(), "rotation": 1}
                await self._transition(State.PAIRING, "qr_offered", "scan the QR code with WhatsApp on the phone")
            else:
                rotation = (self.qr or {}).get("rotation", 0) + 1
                self.qr = {"payload": data["payload"], "received_at": utcnow().isoformat(), "rotation": rotation}
                await self._notify()
        elif name == events.CONNECTED:
            paired = self.state is State.PAIRING
            reconnected = self._grace is not None
            self._cancel_grace()
            self.account = {"jid": data.get("jid"), "push_name": data.get("push_name")}
            self.qr = None
            self.connected_at = time.monotonic()
            if paired:
                reason, detail = "paired", "linked by scanning the QR code"
            elif reconnected:
                reason, detail = "reconnected", "whatsmeow reconnected by itself"
            else:
                reason, detail = "logged_in", "connected with the stored device"
            # The worker just told us the link is up: a good heartbeat, stored with the transition (audit.py).
            self.last_heartbeat = utcnow()
            await self._transition(State.CONNECTED, reason, detail)
        elif name == events.DISCONNECTED:
            reason = str(data.get("reason") or "connection_lost")
            if reason == "connection_lost" and self.connected_at is not None:
                await self._await_reconnect()
                return
            if self._grace is not None and reason == "connection_lost":
                return  # whatsmeow's reconnect attempts are under way; the grace timer decides
            kind = (
                Reason.DIAL_FAILED
                if reason == "dial_failed"
                else Reason.CONNECT_FAILURE
                if reason.startswith("connect_failure")
                else Reason.CONNECTION_LOST
            )
            await self._fail(kind, data.get("detail") or reason)
        elif name == events.LOGGED_OUT:
            self.account = None  # unlinked from the phone: the account is no longer this gateway's
            await self._fail(Reason.LOGGED_OUT, str(data.get("reason") or "logged out"))
        elif name == events.REPLACED:
            await self._fail(Reason.REPLACED, "another client connected with this session")
        elif name == events.BANNED:
            until = dt.datetime.fromisoformat(data["until"]) if data.get("until") else None
            detail = data.get("detail") or f"ban code {data.get('code')}"
            await self._fail(Reason.BANNED, detail, banned_until=until)
        elif name == events.OUTDATED:
            await self._fail(Reason.OUTDATED, data.get("detail"))
        elif name == events.STOPPED:
            await self._fail(Reason.BAD_USER_AGENT, data.get("detail"))
        elif name == events.PUMP_ENDED:
            await self._fail(Reason.PUMP_ENDED, data.get("detail"))
        elif name == events.PAIRING_EXPIRED:
            await self._fail(Reason.PAIRING_EXPIRED, None)
        elif name == events.PAIRING_FAILED:
            outdated = data.get("error") == "err-client-outdated"
            await self._fail(Reason.OUTDATED if outdated else Reason.PAIRING_FAILED, data.get("detail"))
        elif name != protocol.READY:
            log.warning("unknown event %r from the worker", name)

    async def _await_reconnect(self) -> None:
        """The link dropped after a good connection: whatsmeow is reconnecting by itself; give it the grace period."""
        if self._grace is not None:
            return
        if self.connected_at is not None and time.monotonic() - self.connected_at >= self.policy.stable_after:
            self.attempt = 0
        self.connected_at = None
        grace = self.policy.reconnect_grace
        self._grace = self._timer(grace, "grace_over")
        await self._transition(
            State.RECONNECTING,
            Reason.CONNECTION_LOST.value,
            f"WhatsApp dropped the connection; whatsmeow is reconnecting (a new worker if not back within {grace:g} s)",
            retry_at=utcnow() + dt.timedelta(seconds=grace),
        )

    def _cancel_grace(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

    async def _fail(self, reason: Reason, detail: str | None, *, banned_until: dt.datetime | None = None) -> None:
        """The worker's one connection is over: retire it and let the policy decide what comes next."""
        self._cancel_grace()
        await self._retire_worker()
        now = utcnow()
        if self.connected_at is not None and time.monotonic() - self.connected_at >= self.policy.stable_after:
            self.attempt = 0
        self.connected_at = None
        self.qr = None
        decision = decide(
            reason,
            attempt=self.attempt,
            now=now,
            replaced_at=tuple(self.replaced_at),
            banned_until=banned_until,
            rng=self.rng,
            policy=self.policy,
        )
        if reason in TRANSIENT:
            self.attempt += 1
        if reason is Reason.REPLACED:
            self.replaced_at = [at for at in self.replaced_at if now - at <= self.policy.replaced_window] + [now]
        retry_at = now + dt.timedelta(seconds=decision.delay) if decision.delay is not None else None
        if reason in TRANSIENT:
            # "failed to dial ...; retry 1 in 2.3 s": what went wrong, then what happens next, each said once (the
            # reason code is a field of its own).
            text = f"{detail or reason.value.replace('_', ' ')}; {decision.explanation}"
        else:
            text = f"{decision.explanation} ({detail})" if detail else decision.explanation
        await self._transition(decision.state, reason.value, text, retry_at=retry_at)
        if decision.delay is not None:
            self._schedule_retry(decision.delay, f"retry after {reason.value}")
        elif reason is Reason.LOGGED_OUT and self._pairing_round_allowed():
            await self._spawn("pairing offered after logout")

    async def _spawn(self, why: str) -> None:
        assert self.worker is None, "one worker at a time"
        self._cancel_retry()
        await self._transition(State.CONNECTING, "connecting", why)
        try:
            worker = await WorkerProcess.spawn(
                self.worker_settings, self._on_worker_event, self._on_worker_incoming, self.worker_env
            )
        except OSError as error:
            await self._fail(Reason.WORKER_CRASHED, f"could not start the worker: {error}")
            return
        self.worker = worker
        self._side_task(self._wait_for_exit(worker), f"worker-{worker.generation}-exit")

    async def _wait_for_exit(self, worker: WorkerProcess) -> None:
        returncode = await worker.wait()
        self._inputs.put_nowait(("exited", worker.generation, returncode))

    def _on_worker_event(self, worker: WorkerProcess, name: str, data: dict[str, Any]) -> None:
        self._inputs.put_nowait(("event", worker.generation, name, data))

    def _on_worker_incoming(self, worker: WorkerProcess, seq: int, name: str, data: dict[str, Any]) -> None:
        # Straight to the store, from any generation: whatsmeow acknowledged it to WhatsApp already.
        self.incoming(name, data, functools.partial(worker.acknowledge, seq))

    async def _retire_worker(self) -> None:
        """Stop the current worker without logging out (ask, then SIGKILL after 5 s). It drains as it stops: what it
        still hands over reaches the store through its channel, which stays open until it exits."""
        worker, self.worker = self.worker, None
        if worker is not None:
            returncode = await worker.stop()
            log.info("worker %d stopped (status %s)", worker.generation, returncode)

    def _timer(self, delay: float, kind: str, *details: Any) -> asyncio.TimerHandle:
        """After `delay`, put (kind, this timer's handle, *details) into the loop's inputs. The handle lets the loop
        tell a timer that was cancelled or replaced meanwhile from the current one."""
        handle: list[asyncio.TimerHandle] = []

        def fire() -> None:
            self._inputs.put_nowait((kind, handle[0], *details))

        handle.append(asyncio.get_running_loop().call_later(delay, fire))
        return handle[0]

    def _schedule_retry(self, delay: float, why: str) -> None:
        self._cancel_retry()
        self._retry = self._timer(delay, "retry", why)

    def _cancel_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def _pairing_round_allowed(self) -> bool:
        cutoff = time.monotonic() - PAIRING_ROUNDS_WINDOW
        while self.pairing_rounds and self.pairing_rounds[0] < cutoff:
            self.pairing_rounds.popleft()
        return len(self.pairing_rounds) < PAIRING_ROUNDS

    # ---- transitions, persistence, heartbeat ------------------------------------------------------------------

    async def _transition(
        self, state: State, reason: str, detail: str | None = None, *, retry_at: dt.datetime | None = None
    ) -> None:
        previous = self.state
        self.state, self.since, self.reason, self.detail, self.retry_at = state, utcnow(), reason, detail, retry_at
        log.info("session %s -> %s (%s%s)", previous.value, state.value, reason, f": {detail}" if detail else "")
        if self.lease.held and state is not State.STANDBY:
            # Only the lease holder writes the session's trail: a standby process would overwrite the holder's.
            transition = audit.Transition(
                self.since,
                previous,
                state,
                reason,
                detail,
                account_jid=(self.account or {}).get("jid"),
                push_name=(self.account or {}).get("push_name"),
                retry_at=retry_at,
            )
            self._unrecorded.append(transition)
            await self._record_transitions()
        await self._notify()

    async def _record_transitions(self) -> None:
        """Store every transition not stored yet, in order, in one transaction (trail, status row, webhook event);
        if Postgres is still unavailable they wait for the next try."""
        async with self._recording:
            pending = list(self._unrecorded)
            if not pending or not self.lease.held:
                return
            try:
                async with self.database.transaction() as connection:
                    for transition in pending:
                        await audit.record_transition(connection, transition, self.process)
            except DatabaseUnavailable as error:
                log.warning("could not record the session's state (%d change(s) waiting): %s", len(pending), error)
                return
            for _ in pending:
                self._unrecorded.popleft()

    async def recorded(self) -> None:
        """Return once the transitions made so far have been written (or have failed to be). The state changes in
        memory first and is stored a moment later; whoever reads the trail right after seeing a state waits here."""
        async with self._recording:
            pass

    def _forget_unrecorded(self, why: str) -> None:
        """Drop what could not be stored: the trail and status row belong to whoever holds the lease next."""
        if self._unrecorded:
            log.warning("%d session state change(s) were never stored: %s", len(self._unrecorded), why)
            self._unrecorded.clear()

    async def _notify(self) -> None:
        async with self.state_changed:
            self.state_changed.notify_all()

    async def _write(self, operation: Callable[[Any], Awaitable[None]]) -> None:
        """Run a write in a transaction; if Postgres is down, log it and carry on (the session matters more)."""
        try:
            async with self.database.transaction() as connection:
                await operation(connection)
        except DatabaseUnavailable as error:
            log.warning("could not record the session's state: %s", error)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            await self.heartbeat()

    async def heartbeat(self) -> None:
        """Ping the worker, record state and time; a hung worker or a dead link goes to the loop as an input."""
        worker, ok = self.worker, None
        if worker is not None and not worker.ready.is_set():
            if time.monotonic() - worker.started_at > READY_TIMEOUT:
                ok = False
                self._inputs.put_nowait(("hung", worker.generation))
        elif worker is not None:
            try:
                reply = await worker.request(protocol.PING, timeout=self.ping_timeout)
                ok = bool(reply.get("connected")) if self.state is State.CONNECTED else True
                if self.state is State.CONNECTED and not reply.get("connected"):
                    self._inputs.put_nowait(("dead_link", worker.generation))
            except NoReply:
                ok = False
                if worker.running:
                    self._inputs.put_nowait(("hung", worker.generation))
            except WhatsAppError:
                ok = False
            self._watch_memory(worker)
        now = utcnow()
        self.last_heartbeat = now
        await self._record_transitions()  # any left over from an outage go first: the status row ends up current
        try:
            async with self.database.connection() as connection:
                await audit.record_heartbeat(connection, now, ok, self.process)
        except DatabaseUnavailable as error:
            log.warning("could not record the heartbeat: %s", error)

    def _watch_memory(self, worker: WorkerProcess) -> None:
        """A worker grown past WORKER_MAX_RSS_MB (a leak in the library, most likely) is replaced before the dyno runs
        out of memory; retiring drains it, so nothing it holds is lost."""
        rss = worker.rss_mb()
        if self.worker_max_rss_mb is not None and rss is not None and rss > self.worker_max_rss_mb:
            self._inputs.put_nowait(("too_big", worker.generation, rss))

    # ---- operator actions -------------------------------------------------------------------------------------

    async def _through_loop(self, action: Callable[[], Awaitable[Any]]) -> Any:
        """Run `action` inside the supervisor's loop, in order with everything else, and return its result."""
        if not self.lease.held:
            raise SessionError("another process holds the session; this one is in standby")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inputs.put_nowait(("operator", action, future))
        return await asyncio.wait_for(future, COMMAND_TIMEOUT)

    async def reconnect(self) -> dict[str, Any]:
        async def action() -> dict[str, Any]:
            self.attempt, self.replaced_at = 0, []  # the operator acted: start counting afresh
            await self._retire_worker()
            await self._spawn("reconnect requested by the operator")
            return {"state": self.state.value}

        result: dict[str, Any] = await self._through_loop(action)
        return result

    async def logout(self) -> dict[str, Any]:
        async def action() -> dict[str, Any]:
            if self.worker is None or self.state is not State.CONNECTED:
                raise SessionError(f"not logged in (the session is {self.state.value})")
            try:
                await self.worker.request(protocol.LOGOUT, timeout=COMMAND_TIMEOUT)
            except WhatsAppError as error:
                raise SessionError(f"logout failed: {error}", 502) from error
            await self._retire_worker()
            self.account = None
            await self._fail(Reason.LOGGED_OUT, "logged out by the operator")
            return {"state": self.state.value}

        result: dict[str, Any] = await self._through_loop(action)
        return result

    async def pair(self) -> dict[str, Any]:
        """Start a new QR pairing round (after logout or after a round expired unscanned)."""

        async def action() -> dict[str, Any]:
            if self.state in (State.CONNECTED, State.PAIRING, State.CONNECTING):
                raise SessionError(f"a pairing round needs a logged-out session; it is {self.state.value}")
            if not self._pairing_round_allowed():
                raise SessionError(f"at most {PAIRING_ROUNDS} QR rounds per 2 minutes; try again shortly", 429)
            await self._retire_worker()
            await self._spawn("pairing requested by the operator")
            return {"state": self.state.value}

        result: dict[str, Any] = await self._through_loop(action)
        return result

    async def pair_code(self, phone: str) -> str:
        if self.state is not State.PAIRING or self.worker is None:
            raise SessionError(f"no pairing round is open (the session is {self.state.value})")
        try:
            reply = await self.worker.request(protocol.PAIR_CODE, {"phone": phone}, timeout=COMMAND_TIMEOUT)
        except WhatsAppError as error:
            raise SessionError(f"WhatsApp did not give a pair code: {error}", 502) from error
        return str(reply["code"])

    @property
    def connected(self) -> bool:
        return self.state is State.CONNECTED

    async def until_connected(self) -> None:
        """Return once the session is connected (at once if it is)."""
        async with self.state_changed:
            await self.state_changed.wait_for(lambda: self.state is State.CONNECTED)

    async def send_text(
        self,
        to: str,
        text: str,
        late: Callable[[dict[str, Any]], None] | None = None,
        mentions: list[str] | None = None,
    ) -> dict[str, Any]:
        """Send through the worker; whatsmeow may take 75 s to answer. `late` gets an answer that comes after the
        timeout anyway (WhatsApp's id of a message the caller already counted as interrupted)."""
        if self.state is not State.CONNECTED or self.worker is None:
            raise WhatsAppError(f"not connected (the session is {self.state.value})")
        args: dict[str, Any] = {"to": to, "text": text}
        if mentions:
            args["mentions"] = mentions
        return await self.worker.request(protocol.SEND_TEXT, args, timeout=self.send_timeout, late=late)

    async def command(self, name: str, args: dict[str, Any], timeout: float = COMMAND_TIMEOUT) -> dict[str, Any]:
        """One action at WhatsApp that needs no queue (a read receipt, a presence, a look-up), answered now. Every
        failure is a SessionError with a 4xx: 409 while the session cannot act or WhatsApp did not answer (try
        again), 422 when WhatsApp refused the action for good (the reason is WhatsApp's)."""
        worker = self.worker
        if self.state is not State.CONNECTED or worker is None:
            raise SessionError(f"WhatsApp is not connected (the session is {self.state.value}); try again later")
        try:
            return await worker.request(name, args, timeout=timeout)
        except NoReply as error:
            raise SessionError(f"WhatsApp did not answer: {error}") from error
        except WhatsAppError as error:
            if error.permanent:
                raise SessionError(f"WhatsApp refused it: {error}", 422) from error
            if RATE_LIMITED.search(str(error)):
                raise SessionError(f"WhatsApp limits how often this is done; try again later: {error}", 429) from error
            raise SessionError(f"WhatsApp could not do it now: {error}") from error

    async def send_action(
        self, name: str, args: dict[str, Any], late: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        """A queued reaction, edit or delete, or a message other than a plain text (protocol.SEND_MESSAGE), through
        the worker, answered (and timed) as send_text is."""
        if self.state is not State.CONNECTED or self.worker is None:
            raise WhatsAppError(f"not connected (the session is {self.state.value})")
        return await self.worker.request(name, args, timeout=self.send_timeout, late=late)

    async def send_presence(self, chat: str, state: str) -> None:
        """Show "typing", "recording" or "paused" in a chat (the sender's typing before a message); SessionError."""
        await self.command(protocol.SEND_PRESENCE, {"chat": chat, "state": state})

    async def simulate(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        if self.backend != "simulator":
            raise SessionError("the simulator is not in use", 404)
        worker = self.worker
        if worker is None:
            raise SessionError(f"no worker is running (the session is {self.state.value})")
        if action in ("crash", "hang"):
            # No reply will come: the worker dies or stops answering. Send, and let the supervisor notice.
            with contextlib.suppress(NoReply):
                await worker.request(protocol.SIMULATE, {"action": action}, timeout=0.5)
            return {"action": action, "worker_pid": worker.pid}
        try:
            return await worker.request(protocol.SIMULATE, {**args, "action": action}, timeout=COMMAND_TIMEOUT)
        except WhatsAppError as error:
            raise SessionError(str(error), 409 if error.permanent else 503) from error

    # ---- what the status function reads -----------------------------------------------------------------------

    def snapshot(self) -> Live:
        self._pairing_round_allowed()  # drops rounds older than the window
        return Live(
            state=self.state,
            since=self.since,
            reason=self.reason,
            detail=self.detail,
            retry_at=self.retry_at,
            account=self.account,
            qr=self.qr,
            rounds_left=PAIRING_ROUNDS - len(self.pairing_rounds),
            process=self.process,
        )
