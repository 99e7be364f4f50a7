"""Supervisors running real simulator workers against this test's database, and ways to await their states."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from app.db.database import Database
from app.session.policy import Policy
from app.session.states import State
from app.session.supervisor import Incoming, Supervisor, log_only
from app.whatsapp.protocol import WorkerSettings

# Short delays so that tests run in seconds; the decisions themselves are the production ones (test_policy.py).
FAST = Policy(base_delay=0.2, min_delay=0.05, max_delay=1.0, replaced_delay=0.2, reconnect_grace=1.0)

MakeSupervisor = Callable[..., Supervisor]


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url)
    yield database
    await database.close()


def simulator_supervisor(
    database: Database,
    database_url: str,
    *,
    incoming: Incoming = log_only,
    heartbeat: float = 30.0,
    qr_seconds: str = "60,20",
    policy: Policy = FAST,
    media_dir: str | None = None,
    media_max_bytes: int = 16 * 1024 * 1024,
) -> Supervisor:
    """A started supervisor whose workers run the simulator; `incoming` is where their messages go (a store), and
    downloaded media is handed over in `media_dir`."""
    supervisor = Supervisor(
        database=database,
        worker=WorkerSettings(
            "simulator",
            database_url,
            simulator_qr_seconds=tuple(float(part) for part in qr_seconds.split(",")),
            media_dir=media_dir,
            media_max_bytes=media_max_bytes,
        ),
        heartbeat_interval=heartbeat,
        incoming=incoming,
        policy=policy,
    )
    supervisor.start()
    return supervisor


@contextlib.asynccontextmanager
async def linked_supervisor(database: Database, database_url: str, **options: Any) -> AsyncIterator[Supervisor]:
    """A simulator supervisor (`options` as `simulator_supervisor` takes them) whose account is linked, until the
    block ends."""
    supervisor = simulator_supervisor(database, database_url, **options)
    try:
        await wait_state(supervisor, State.PAIRING)
        await supervisor.simulate("pair", {"phone": "+6281234567890", "push_name": "Toko Maju"})
        await wait_state(supervisor, State.CONNECTED)
        yield supervisor
    finally:
        await supervisor.stop()


@pytest.fixture
async def make_supervisor(database: Database, database_url: str) -> AsyncIterator[MakeSupervisor]:
    started: list[Supervisor] = []

    def make(
        heartbeat: float = 30.0, qr_seconds: str = "60,20", policy: Policy = FAST, incoming: Incoming = log_only
    ) -> Supervisor:
        supervisor = simulator_supervisor(
            database, database_url, incoming=incoming, heartbeat=heartbeat, qr_seconds=qr_seconds, policy=policy
        )
        started.append(supervisor)
        return supervisor

    yield make
    for supervisor in started:
        await supervisor.stop()


async def wait_state(supervisor: Supervisor, *states: State, timeout: float = 15.0) -> State:
    """Await the supervisor reaching one of `states` (it notifies on every transition), and that state's record."""
    async with supervisor.state_changed:
        await asyncio.wait_for(supervisor.state_changed.wait_for(lambda: supervisor.state in states), timeout)
    reached = supervisor.state
    await asyncio.wait_for(supervisor.recorded(), timeout)
    return reached


async def wait_qr_rotation(supervisor: Supervisor, rotation: int, timeout: float = 15.0) -> None:
    def rotated() -> bool:
        return supervisor.qr is not None and supervisor.qr["rotation"] >= rotation

    async with supervisor.state_changed:
        await asyncio.wait_for(supervisor.state_changed.wait_for(rotated), timeout)


async def paired(make: MakeSupervisor, **options: object) -> Supervisor:
    """A supervisor whose simulated account has just been linked."""
    supervisor = make(**options)
    await wait_state(supervisor, State.PAIRING)
    await supervisor.simulate("pair", {"phone": "+6281234567890", "push_name": "Toko Maju"})
    await wait_state(supervisor, State.CONNECTED)
    return supervisor


Trail = list[tuple[str, str, str | None, dt.datetime]]


async def wait_trail(
    supervisor: Supervisor, database: Database, done: Callable[[Trail], bool], timeout: float = 30.0
) -> Trail:
    """Wait (on the supervisor's transitions) until the stored session trail satisfies `done`; return it."""

    async def read() -> Trail:
        await supervisor.recorded()
        async with database.connection() as connection:
            rows = await connection.fetch("SELECT to_state, reason, detail, at FROM session_transitions ORDER BY id")
        return [(row["to_state"], row["reason"], row["detail"], row["at"]) for row in rows]

    async def until_done() -> Trail:
        while not done(trail := await read()):
            # A transition may land between the read and the wait: look again after a while in any case.
            async with supervisor.state_changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(supervisor.state_changed.wait(), 0.5)
        return trail

    return await asyncio.wait_for(until_done(), timeout)
