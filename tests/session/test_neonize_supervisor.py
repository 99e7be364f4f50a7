"""The supervisor with the real neonize backend, offline: dial failures back off and leak no Postgres connections.

The workers never reach WhatsApp, with or without internet: they dial through a proxy on 127.0.0.1 that refuses
(tests/whatsapp_stand_in.py), and the test checks that every dial went there.
"""

from __future__ import annotations

import asyncio
import os
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from app.db.database import Database
from app.session.policy import Policy
from app.session.states import State
from app.session.supervisor import Supervisor
from app.whatsapp.protocol import WorkerSettings
from tests.whatsapp_stand_in import WHATSAPP_CONNECT, RefusingProxy

ATTEMPTS = 20
QUICK = Policy(base_delay=0.05, min_delay=0.05, max_delay=0.1)  # the backoff itself is tested in test_policy.py
SESSION = "gateway-session-test"  # application_name of the supervisor's connections: its lease and its workers'

# The connections the workers opened (whatsmeow's store, which neonize never closes) and that are still there: the
# supervisor's URL names them, and its lease, which is the one connection the supervisor itself holds, is left out.
# The web process's pool and this query's connection carry no name.
WORKER_CONNECTIONS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = $1 AND pid <> $2
"""


def named(url: str, application_name: str) -> str:
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query), ("application_name", application_name)])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


async def worker_connections(database: Database, lease_pid: int, expected: int) -> int:
    """The count once it is `expected`, or whatever it is after 5 s: a Postgres backend ends just after its client
    (the worker is gone before the supervisor says `reconnecting`), not with it."""
    deadline = time.monotonic() + 5
    while True:
        async with database.connection() as connection:
            count: int = await connection.fetchval(WORKER_CONNECTIONS, SESSION, lease_pid)
        if count == expected or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.05)


async def wait_for_state(supervisor: Supervisor, state: State) -> None:
    async with supervisor.state_changed:
        await asyncio.wait_for(supervisor.state_changed.wait_for(lambda: supervisor.state is state), 60)


async def test_dial_failures_back_off_and_do_not_grow_connections(
    database: Database, database_url: str, whatsapp_proxy: RefusingProxy
) -> None:
    supervisor = Supervisor(
        database=database,
        worker=WorkerSettings("neonize", named(database_url, SESSION)),
        heartbeat_interval=30.0,
        policy=QUICK,
        worker_env={**os.environ, **whatsapp_proxy.env()},
    )
    left_behind: list[int] = []
    supervisor.start()
    try:
        await wait_for_state(supervisor, State.CONNECTING)
        assert supervisor.lease.connection is not None
        lease_pid = supervisor.lease.connection.get_server_pid()
        for attempt in range(1, ATTEMPTS + 1):
            await wait_for_state(supervisor, State.RECONNECTING)
            assert supervisor.reason == "dial_failed"
            # What failed, then what comes next, each once: "failed to dial whatsapp web websocket: ...; retry N in".
            detail = supervisor.detail or ""
            assert detail.startswith("failed to dial whatsapp web websocket: ") and "dial_failed" not in detail
            assert detail.count("; retry ") == 1 and detail.split("; retry ")[1].startswith(f"{attempt} in ")
            assert supervisor.retry_at is not None  # a backoff, not a crash and not a tight loop
            assert len(whatsapp_proxy.requests) == attempt  # this attempt's one dial went to the stand-in
            left_behind.append(await worker_connections(database, lease_pid, 0))
            await wait_for_state(supervisor, State.CONNECTING)
        # The measure does see whatsmeow's connections: a worker that is dialling holds its store's connection.
        whatsapp_proxy.answering.clear()
        await whatsapp_proxy.wait_for(ATTEMPTS + 1)
        while_dialling = await worker_connections(database, lease_pid, 1)
        whatsapp_proxy.answering.set()
        await wait_for_state(supervisor, State.RECONNECTING)
        async with database.connection() as connection:
            tables = await connection.fetchval("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'whatsmeow_%'")
    finally:
        await supervisor.stop()
    assert tables >= 15  # whatsmeow created its store in the app's own database
    assert supervisor.attempt >= ATTEMPTS
    assert set(whatsapp_proxy.requests) == {WHATSAPP_CONNECT}
    # Each attempt is a fresh worker process, so neonize's per-connect() leak dies with it: once a failed worker is
    # retired, none of the connections it opened is left.
    assert left_behind == [0] * ATTEMPTS
    assert while_dialling == 1
