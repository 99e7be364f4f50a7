"""The outcomes of delivery attempts, written back to Postgres in batches by one task, in the order they came.

Writing them late is safe: until an outcome is stored its delivery stays claimed, and the worst a crash does is send
that event again, with the same id. A failure that is not stored yet keeps its chat's lane blocked in memory. The
batching, the wait through a Postgres outage and the item-by-item fallback are the shared BatchWriter's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from app.db.batch import BatchWriter
from app.db.database import Database
from app.webhooks import deliveries
from app.webhooks.deliveries import Outcome
from app.webhooks.holding import EndpointWork, Holding, Lane

BATCH = 2000

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
        self.on_written = on_written
        # The guard is the dispatcher's claim lock, held while a batch is written and its lanes are released in
        # memory: so a claim never runs beside the transaction that promotes a chat's waiting deliveries (it could
        # hold back a new one that the promotion then misses), a claim whose snapshot predates a stored failure still
        # finds that lane blocked in memory, and a claim after it finds the lane released. An outcome that cannot be
        # stored even alone is dropped: its claim stays open, and the next holder of the lock sends that event again
        # (same id).
        self.writer: BatchWriter[Entry] = BatchWriter(
            "webhook-outcomes",
            self._write,
            max_batch=BATCH,
            on_written=self._settle,
            on_outage=lambda message: on_outage(f"cannot store delivery outcomes: {message}"),
            guard=claiming,
        )

    @property
    def written(self) -> asyncio.Event:
        """Set whenever nothing is waiting to be written."""
        return self.writer.written

    def add(self, outcome: Outcome, holding: Holding, lane: Lane | None, endpoint: EndpointWork | None) -> None:
        self.writer.add((outcome, holding, lane, endpoint))

    def start(self) -> None:
        self.writer.start()

    async def stop(self) -> None:
        await self.writer.stop()

    async def _write(self, batch: list[Entry]) -> None:
        async with self.database.transaction() as connection:
            # A lost outcome only means a second delivery with the same id; no need to wait for the disk.
            await connection.execute("SET LOCAL synchronous_commit = off")
            await deliveries.complete(connection, [entry[0] for entry in batch])

    def _settle(self, batch: list[Entry]) -> None:
        settle(batch)
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
