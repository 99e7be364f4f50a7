"""The webhook dispatcher: claims due deliveries from Postgres and POSTs them, signed, in order per chat.

One dispatcher is active across all processes: it holds a lease (app/db/lease.py) whose connection also LISTENs for
new events and claims deliveries (polling stays as the safety net); a second process waits in standby. At most
`concurrency` requests per endpoint are in flight, outside any transaction. The deliveries of one lane (a chat) go
out one after another, so a later message never overtakes an earlier one still being retried, while other chats go
on. Outcomes are written back in batches by a second task; a crash before that only means the same event, same id,
is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg

from app.backoff import Jitter, backoff
from app.db.database import UNAVAILABLE, Database, describe
from app.db.lease import Lease
from app.errors import DatabaseUnavailable
from app.observability import report
from app.tasks import LongTask, wait_any, watch
from app.times import utcnow
from app.webhooks import attempt, deliveries
from app.webhooks.deliveries import Claimed, Outcome
from app.webhooks.holding import EndpointWork, Holding, Lane
from app.webhooks.outbox import CHANNEL, display_url
from app.webhooks.outcome import OutcomeWriter
from app.webhooks.retry import DEFAULT, RetryPolicy

log = logging.getLogger(__name__)

LOCK_KEY = 0x77616761_77686B73  # "wagawhks": held by the one active dispatcher
CONCURRENCY = 8  # requests in flight per endpoint
TIMEOUT = 10.0  # seconds for a whole request, connecting included
POLL_INTERVAL = 5.0  # the safety net behind NOTIFY
MAX_HELD = 2000  # claimed deliveries held in memory at most
CLAIM_LIMIT = 500  # per endpoint and claim
LANE_TURN = 32  # deliveries a sender takes from one lane before letting other lanes have a turn
RECONNECT_MIN, RECONNECT_MAX = 0.5, 15.0
LOCK_RETRY = 2.0  # how often a standby dispatcher tries for the lock
MAINTENANCE_INTERVAL = 60.0
PRUNE_INTERVAL = 3600.0


class Dispatcher:
    def __init__(
        self,
        database: Database,
        database_url: str,
        secret: str,
        *,
        concurrency: int = CONCURRENCY,
        timeout: float = TIMEOUT,
        poll_interval: float = POLL_INTERVAL,
        policy: RetryPolicy = DEFAULT,
        max_held: int = MAX_HELD,
        rng: random.Random | None = None,
        on_delivered: Callable[[str, str], None] | None = None,
    ) -> None:
        self.database = database
        self.database_url = database_url
        self.secret = secret
        self.concurrency = concurrency
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.policy = policy
        self.max_held = max_held
        self.rng = rng or random.Random()
        self.on_delivered = on_delivered  # (event type, event data as JSON) of each delivery an endpoint took
        self.state = "starting"  # active | standby | unavailable | stopped
        self.last_error: str | None = None
        self.delivered = 0  # by this process, for the benchmark and the logs
        self._stopping = asyncio.Event()
        self._stop_deadline = float("inf")
        self._wake = asyncio.Event()
        self._claiming = asyncio.Lock()  # a claim and its hand-out, or a batch of outcomes (see OutcomeWriter)
        self._outcomes = OutcomeWriter(database, self._claiming, on_written=self._wake.set, on_outage=self._note)
        self._http: aiohttp.ClientSession | None = None
        self.lease = Lease(database_url, LOCK_KEY, name="webhook", poll_interval=LOCK_RETRY)
        self._task: LongTask | None = None

    # ---- life cycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._http = attempt.http_session()
        self._outcomes.start()
        # Restarted if it dies (it starts over after any error it catches, too): the outbox is in Postgres.
        self._task = LongTask("webhook-dispatcher", self._run, restart=True).start()

    def wake(self) -> None:
        """Look for due deliveries now (an operator retried or resumed something)."""
        self._wake.set()

    async def stop(self, budget: float = 8.0) -> None:
        """Stop claiming, let requests in flight finish, store their outcomes, put back the rest; within `budget`."""
        loop = asyncio.get_running_loop()
        self._stop_deadline = loop.time() + budget
        self._stopping.set()
        self._wake.set()
        if self._task is not None and self._task.task is not None:
            ended, _ = await asyncio.wait({self._task.task}, timeout=budget)
            if not ended:
                log.error("the webhook dispatcher did not stop within %.0f s", budget)
            await self._task.stop()
        await self._outcomes.stop()
        if self._http is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._http.close(), 1.0)
        self.state = "stopped"

    def _left(self, reserve: float = 0.0) -> float:
        return max(0.0, self._stop_deadline - asyncio.get_running_loop().time() - reserve)

    async def _run(self) -> None:
        failures = 0  # in a row, for the backoff
        while not self._stopping.is_set():
            try:
                await self._hold()
                failures = 0
                if not self._stopping.is_set():
                    self._note("its connection to Postgres ended; reconnecting")
            except UNAVAILABLE as error:
                self._note(f"Postgres is unavailable: {describe(error)}")
            except asyncpg.InternalClientError as error:
                # asyncpg's protocol state error when the server goes away in the middle of an operation (seen on a
                # Postgres restart): the connection is gone, like any other outage; start over without a traceback.
                self._note(f"its Postgres connection broke mid-operation: {describe(error)}")
            except Exception as error:  # the dispatcher must outlive any one failure; it starts over
                log.exception("the webhook dispatcher failed; starting over")
                report(error)
                self._note(f"{type(error).__name__}: {error}")
            if self._stopping.is_set():
                break
            self.state = "unavailable"
            await self._pause(backoff(failures, base=RECONNECT_MIN, cap=RECONNECT_MAX, jitter=Jitter.NONE))
            failures += 1

    async def _hold(self) -> None:
        """Take the dispatch lease (or wait for it in standby), then claim and send until stopped or cut off."""
        lease = self.lease
        try:
            while not await lease.try_acquire():
                if lease.unreachable is not None:
                    raise DatabaseUnavailable(lease.unreachable)
                if self.state != "standby":
                    log.info("another process is dispatching webhooks; standing by")
                self.state = "standby"
                if await self._pause(lease.poll_interval):
                    return
            async with lease.use() as connection:
                # Claims are cheap to lose: an unrecorded claim just leaves the delivery pending.
                await connection.execute("SET synchronous_commit = off")
                await connection.add_listener(CHANNEL, self._on_notify)
            # Outcomes of an earlier tenure are stored before its claims are put back.
            while not self._outcomes.written.is_set() and not self._stopping.is_set():
                await self._pause(0.1)
            async with lease.use() as connection:
                recovered = await deliveries.recover(connection)
            holding = Holding(uuid.uuid4())
            holding.idle.set()
            self.state, self.last_error = "active", None
            log.info("dispatching webhooks%s", f" ({recovered} interrupted deliveries put back)" if recovered else "")
            lease_watch = self._side(holding, lease.watch(), "webhook-lease-watch")
            lease_watch.add_done_callback(lambda _: self._wake.set())
            maintenance = self._side(holding, self._maintain(), "webhook-maintenance")
            try:
                await self._claim_loop(holding)
            finally:
                maintenance.cancel()
                lease_watch.cancel()
                await self._end(holding)
        finally:
            await lease.release()

    async def _end(self, holding: Holding) -> None:
        """Let requests in flight finish (bounded), store outcomes, and put back what was claimed and not sent."""
        holding.over = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(holding.idle.wait(), min(self.timeout + 1, self._left(reserve=2.0)))
        for task in list(holding.tasks):
            task.cancel()
        await asyncio.gather(*holding.tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._outcomes.written.wait(), min(5.0, self._left(reserve=0.5)))
        if not self.lease.lost.is_set() and self._outcomes.written.is_set():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0), self.lease.use() as connection:
                    await deliveries.release_claims(connection, holding.token)

    async def _pause(self, seconds: float) -> bool:
        """Sleep up to `seconds`, less if stopping; True if stopping."""
        return await wait_any(self._stopping.wait(), timeout=seconds)

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    def _note(self, error: str) -> None:
        if error != self.last_error:
            log.warning("webhook dispatcher: %s", error)
        self.last_error = error

    # ---- claiming ---------------------------------------------------------------------------------------------

    async def _claim_loop(self, holding: Holding) -> None:
        lost = self.lease.lost
        while not (self._stopping.is_set() or lost.is_set() or holding.broken.is_set()):
            self._wake.clear()
            wait = self.poll_interval
            room = self.max_held - holding.held
            if room > 0:
                limit = min(room, CLAIM_LIMIT)
                async with self._claiming:
                    async with self.lease.use() as connection:
                        claimed = await deliveries.claim(connection, holding.token, limit)
                    self._accept(holding, claimed)
                if len(claimed) >= limit:
                    continue  # more may be due at once
                async with self.lease.use() as connection:
                    due = await deliveries.next_due(connection)
                if due is not None:
                    wait = min(wait, max(0.05, (due - utcnow()).total_seconds()))
            await wait_any(self._wake.wait(), self._stopping.wait(), lost.wait(), holding.broken.wait(), timeout=wait)

    def _accept(self, holding: Holding, claimed: list[Claimed]) -> None:
        for row in claimed:
            endpoint = holding.endpoints.get(row.endpoint_id)
            if endpoint is None:
                endpoint = holding.endpoints[row.endpoint_id] = EndpointWork(row.endpoint_id, row.url)
                for number in range(self.concurrency):
                    self._side(holding, self._sender(holding, endpoint), f"webhook-sender-{endpoint.id}-{number}")
            key = (row.endpoint_id, row.lane)
            lane = holding.lanes.get(key)
            if lane is not None and lane.blocked:
                self._record(self._untried(row, holding, "waiting"), holding)
                continue
            if endpoint.paused:
                self._record(self._untried(row, holding, "released"), holding)
                continue
            if lane is None:
                lane = holding.lanes[key] = Lane(key)
            lane.rows.append(row)
            holding.held += 1
            if not lane.queued and not lane.running:
                lane.queued = True
                endpoint.ready.put_nowait(lane)

    def _side(self, holding: Holding, coroutine: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        """A named task of this tenure; if it dies of an error, that is logged and the tenure starts over."""
        task = watch(asyncio.ensure_future(coroutine), name, lambda _: holding.broken.set())
        holding.tasks.add(task)
        task.add_done_callback(holding.tasks.discard)
        return task

    # ---- sending ----------------------------------------------------------------------------------------------

    async def _sender(self, holding: Holding, endpoint: EndpointWork) -> None:
        while True:
            lane = await endpoint.ready.get()
            lane.queued, lane.running = False, True
            try:
                await self._send_lane(holding, endpoint, lane)
            finally:
                lane.running = False
                if lane.rows and not lane.blocked and not holding.over:
                    lane.queued = True
                    endpoint.ready.put_nowait(lane)
                elif not lane.rows and not lane.blocked and holding.lanes.get(lane.key) is lane:
                    del holding.lanes[lane.key]
                self._wake.set()  # there is room to claim more

    async def _send_lane(self, holding: Holding, endpoint: EndpointWork, lane: Lane) -> None:
        for _ in range(LANE_TURN):
            if not lane.rows or holding.over or lane.blocked:
                return
            if endpoint.paused:
                self._give_back(holding, lane, "released")
                return
            row = lane.rows[0]
            outcome = await self._attempt(holding, row)
            lane.rows.popleft()
            holding.held -= 1
            self._record(outcome, holding, lane, endpoint)
            if outcome.kind in ("failed", "paused"):
                lane.blocked = True
                endpoint.paused = endpoint.paused or outcome.kind == "paused"
                self._give_back(holding, lane, "waiting")
                return

    def _give_back(self, holding: Holding, lane: Lane, kind: str) -> None:
        while lane.rows:
            self._record(self._untried(lane.rows.popleft(), holding, kind), holding)
            holding.held -= 1

    async def _attempt(self, holding: Holding, row: Claimed) -> Outcome:
        assert self._http is not None
        holding.in_flight += 1
        holding.idle.clear()
        try:
            code, error = await attempt.post(self._http, self.secret, row, self.timeout)
        finally:
            holding.in_flight -= 1
            if not holding.in_flight:
                holding.idle.set()
        at = utcnow()
        if error is None:
            self.delivered += 1
            kind, next_at = "delivered", None
            if self.on_delivered is not None:
                self.on_delivered(row.event_type, row.data_json)
        elif code == 410:
            error = "410 Gone: the receiver asked to stop; delivery to this URL is paused until an operator resumes it"
            kind, next_at = "paused", at
        else:
            next_at = self.policy.next_attempt(row.attempts + 1, row.window_start, at, self.rng)
            kind = "dead" if next_at is None else "failed"
        return Outcome(kind, row.id, row.endpoint_id, row.lane, holding.token, at, code, error, next_at)

    def _untried(self, row: Claimed, holding: Holding, kind: str) -> Outcome:
        return Outcome(kind, row.id, row.endpoint_id, row.lane, holding.token, utcnow())

    # ---- outcomes ---------------------------------------------------------------------------------------------

    def _record(
        self, outcome: Outcome, holding: Holding, lane: Lane | None = None, endpoint: EndpointWork | None = None
    ) -> None:
        if endpoint is not None and outcome.kind != "released":
            failing = outcome.kind != "delivered"
            if failing and not endpoint.failing:
                log.warning("webhook %s failing: %s", display_url(endpoint.url), outcome.error)
            elif endpoint.failing and not failing:
                log.info("webhook %s delivering again", display_url(endpoint.url))
            endpoint.failing = failing
            if outcome.kind == "dead":
                log.error("webhook delivery %d to %s is dead: %s", outcome.id, display_url(endpoint.url), outcome.error)
        self._outcomes.add(outcome, holding, lane, endpoint)

    # ---- maintenance ------------------------------------------------------------------------------------------

    async def _maintain(self) -> None:
        """Every minute the safety net for held-back deliveries; every hour, prune old delivered events."""
        last_prune = time.monotonic() - PRUNE_INTERVAL + MAINTENANCE_INTERVAL
        while True:
            await asyncio.sleep(MAINTENANCE_INTERVAL)
            try:
                async with self.database.connection() as connection:
                    if released := await deliveries.unstick_waiting(connection):
                        log.warning("released %d held-back webhook deliveries that nothing held up", released)
                        self._wake.set()
                    if time.monotonic() - last_prune >= PRUNE_INTERVAL:
                        last_prune = time.monotonic()
                        if pruned := await deliveries.prune(connection, utcnow()):
                            log.info("pruned %d delivered webhook events older than %s", pruned, deliveries.RETENTION)
            except DatabaseUnavailable as error:
                self._note(str(error))
