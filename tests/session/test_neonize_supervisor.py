"""The supervisor with the real neonize backend, offline: dial failures back off and leak no Postgres connections."""

from __future__ import annotations

import asyncio

from app.db.database import Database
from app.session.policy import Policy
from app.session.states import State
from app.session.supervisor import Supervisor

ATTEMPTS = 20
QUICK = Policy(base_delay=0.05, min_delay=0.05, max_delay=0.1)  # the backoff itself is tested in test_policy.py

COUNT_CONNECTIONS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


async def test_dial_failures_back_off_and_do_not_grow_connections(database: Database, database_url: str) -> None:
    supervisor = Supervisor(
        database=database, database_url=database_url, backend="neonize", heartbeat_interval=30.0, policy=QUICK
    )
    samples: list[int] = []
    supervisor.start()
    try:
        for _ in range(ATTEMPTS):
            async with supervisor.state_changed:
                await asyncio.wait_for(
                    supervisor.state_changed.wait_for(lambda: supervisor.state is State.RECONNECTING), 60
                )
            assert supervisor.reason == "dial_failed"
            assert supervisor.retry_at is not None  # a backoff, not a crash and not a tight loop
            async with database.connection() as connection:
                samples.append(await connection.fetchval(COUNT_CONNECTIONS))
            async with supervisor.state_changed:
                await asyncio.wait_for(
                    supervisor.state_changed.wait_for(lambda: supervisor.state is State.CONNECTING), 60
                )
        async with database.connection() as connection:
            tables = await connection.fetchval("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'whatsmeow_%'")
    finally:
        await supervisor.stop()
    assert tables >= 15  # whatsmeow created its store in the app's own database
    assert supervisor.attempt >= ATTEMPTS
    # Each attempt is a fresh worker process, so neonize's per-connect() leak dies with it.
    assert max(samples[2:]) <= max(samples[:2]), samples
