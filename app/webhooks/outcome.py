"""The outcomes of delivery attempts, written back to Postgres in batches by one task, in the order they came.

Writing them late is safe: until an outcome is stored its delivery stays claimed, and the worst a crash does is send
that event again, with the same id. A failure that is not stored yet keeps its chat's lane blocked in memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from app.db.database import Database, describe
from app.observability import report
from app.webhooks import deliveries
from app.webhooks.deliveries import UNAVAILABLE, Outcome
from app.webhooks.holding import EndpointWork, Holding, Lane

log = logging.getLogger(__name__)

BATCH = 2000
TRIES = 3  # a batch that fails this often for a reason other than an outage is dropped

Entry = tuple[Outcome, Holding, Lane | None, EndpointWork | None]


class OutcomeWriter:
    def __init__(
        self,
        database: Database,
        claiming: asyncio.Lock,
        *,
        on_written: Callable[[], None],
        on_outage: Callable[[str], None],
    ) -> None:
        self.database = database
        # The dispatcher's claim lock, held while a batch is written and its lanes are released in memory: so a
        # claim never runs beside the transaction that promotes a chat's waiting deliveries (it could hold back a
        # new one that the promotion then misses), a claim whose snapshot predates a stored failure still finds
        # that lane blocked in memory, and a claim after it finds the lane released.
        self.claiming = claiming
        self.on_written = on_written
        self.on_outage = on_outage
        self.written = asyncio.Event()  # set whenever nothing is waiting to be written
        self.written.set()
        self._entries: list[Entry] = []
        self._arrived = asyncio.Event()

    def add(self, outcome: Outcome, holding: Holding, lane: Lane | None, endpoint: EndpointWork | None) -> None:
        self._entries.append((outcome, holding, lane, endpoint))
        self.written.clear()
        self._arrived.set()

    async def run(self) -> None:
        delay, tries = 0.1, 0
        while True:
            if not self._entries:
                self.written.set()
                self._arrived.clear()
                await self._arrived.wait()
                continue
            batch = self._entries[:BATCH]
            async with self.claiming:
                try:
                    async with self.database.transaction() as connection:
                        # A lost outcome only means a second delivery with the same id; no need to wait for the disk.
                        await connection.execute("SET LOCAL synchronous_commit = off")
                        await deliveries.complete(connection, [entry[0] for entry in batch])
                    error: Exception | None = None
                except Exception as failure:  # handled below, once the lock is released
                    error = failure
                if error is None or (tries + 1 >= TRIES and not isinstance(error, UNAVAILABLE)):
                    del self._entries[: len(batch)]
                    settle(batch)
            if error is None:
                delay, tries = 0.1, 0
            elif isinstance(error, UNAVAILABLE):
                self.on_outage(f"cannot store delivery outcomes, Postgres is unavailable: {describe(error)}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            else:  # a driver hiccup while Postgres goes away, or a bug: try again, then give up
                tries += 1
                if tries < TRIES:
                    log.warning("storing %d delivery outcomes failed (%s); trying again", len(batch), describe(error))
                    await asyncio.sleep(delay)
                    continue
                # The claims stay open; the next holder of the lock sends those events again (same ids).
                log.error("storing %d delivery outcomes failed %d times; dropped", len(batch), tries, exc_info=error)
                report(error)
                delay, tries = 0.1, 0
            self.on_written()


def settle(batch: list[Entry]) -> None:
    """Once failures are stored, claims hold their lanes back by themselves: release the lanes in memory."""
    for outcome, holding, lane, endpoint in batch:
        if lane is not None and outcome.kind in ("failed", "paused") and lane.blocked:
            lane.blocked = False
            if not (lane.rows or lane.running or lane.queued) and holding.lanes.get(lane.key) is lane:
                del holding.lanes[lane.key]
        if endpoint is not None and outcome.kind == "paused":
            endpoint.paused = False  # likewise, claims now skip the paused endpoint
