"""The kill -9 window: how many messages whatsmeow has acknowledged to WhatsApp but Postgres has not committed yet.

whatsmeow acknowledges a message as soon as it reaches the library (neonize 0.5.2 leaves SynchronousAck off), so
WhatsApp never redelivers it; if the whole process is killed (-9, an out-of-memory kill, a host failure) before the
commit, those messages are gone. This measures that exposure with the real worker, supervisor and store: the
simulated server hands messages over at a fixed rate (the worker takes each through its intake window, as the neonize
backend does), and the worker's count of items handed to the parent but not yet reported stored is sampled every
10 ms. Each sample is the number a kill -9 at that instant would lose.

    python -m bench.ack_window      # embedded Postgres, or BENCH_DATABASE_URL=postgresql://... for a server
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from app.db.database import Database
from app.incoming.store import MessageStore
from app.session.policy import Policy
from app.session.states import State
from app.session.supervisor import Supervisor
from app.whatsapp import protocol
from bench.common import bench_database
from tests.session.conftest import simulator_supervisor

RATES = (200, 1000)  # messages/s
SECONDS = 10.0
TICK = 0.02  # the simulated server accepts a batch every 20 ms
SAMPLE = 0.01


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def wait_for(supervisor: Supervisor, state: State) -> None:
    async with supervisor.state_changed:
        await asyncio.wait_for(supervisor.state_changed.wait_for(lambda: supervisor.state is state), 30)


async def stored_count(database: Database) -> int:
    async with database.connection() as connection:
        count: int = await connection.fetchval("SELECT count(*) FROM incoming_messages")
    return count


async def run_rate(supervisor: Supervisor, database: Database, store: MessageStore, rate: int) -> dict[str, Any]:
    before = await stored_count(database)
    samples: list[float] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            worker = supervisor.worker
            if worker is not None:
                reply = await worker.request(protocol.PING, timeout=5)
                samples.append(float(reply["unstored"]))
            await asyncio.sleep(SAMPLE)

    sampler = asyncio.create_task(sample())
    per_tick = max(1, round(rate * TICK))
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < SECONDS:
        await supervisor.simulate("incoming", {"from": "+6281111111111", "text": "order", "count": per_tick})
        sent += per_tick
        next_tick = started + (sent / per_tick) * TICK
        await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
    offered = sent / (time.monotonic() - started)
    while await stored_count(database) - before < sent:  # noqa: ASYNC110 - Postgres is the only witness
        await asyncio.sleep(0.05)
    drained = time.monotonic() - started
    stop.set()
    await sampler
    return {
        "rate": rate,
        "offered": offered,
        "messages": sent,
        "drained_seconds": drained,
        "samples": len(samples),
        "p50": percentile(samples, 0.50),
        "p99": percentile(samples, 0.99),
        "max": max(samples),
        "mean": statistics.fmean(samples),
    }


async def main(url: str) -> None:
    database = await Database.open(url, max_size=5)
    store = MessageStore(database)
    store.start()
    supervisor = simulator_supervisor(database, url, incoming=store.take, qr_seconds="60", policy=Policy())
    try:
        await wait_for(supervisor, State.PAIRING)
        await supervisor.simulate("pair", {"phone": "+6281234567890", "push_name": "Bench"})
        await wait_for(supervisor, State.CONNECTED)
        print(f"{'rate/s':>7} {'offered/s':>10} {'messages':>9} {'p50':>5} {'p99':>5} {'max':>5} {'mean':>6}")
        for rate in RATES:
            result = await run_rate(supervisor, database, store, rate)
            print(
                f"{result['rate']:>7} {result['offered']:>10.0f} {result['messages']:>9} {result['p50']:>5.0f} "
                f"{result['p99']:>5.0f} {result['max']:>5.0f} {result['mean']:>6.1f}"
                f"   ({result['samples']} samples; all stored {result['drained_seconds']:.1f} s after the start)"
            )
    finally:
        await supervisor.stop()
        await store.close(5.0)
        await database.close()


if __name__ == "__main__":
    with bench_database() as database_url:
        asyncio.run(main(database_url))
