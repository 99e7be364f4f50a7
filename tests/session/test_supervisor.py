"""The supervisor through real worker processes with the simulator backend."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from app.db.database import Database
from app.errors import DatabaseUnavailable
from app.session import audit
from app.session.lease import LEASE_KEY
from app.session.states import State
from app.session.supervisor import SessionError, Supervisor
from app.status import as_json, session_status
from app.tasks import TaskState, task_statuses
from app.whatsapp.protocol import WorkerSettings
from tests.session.conftest import FAST, MakeSupervisor, paired, wait_qr_rotation, wait_state


async def transitions(database: Database) -> list[tuple[str | None, str, str]]:
    async with database.connection() as connection:
        rows = await connection.fetch("SELECT from_state, to_state, reason FROM session_transitions ORDER BY id")
    return [(row["from_state"], row["to_state"], row["reason"]) for row in rows]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_boot_without_device_offers_pairing_then_pair_connects(
    make_supervisor: MakeSupervisor, database: Database
) -> None:
    supervisor = await paired(make_supervisor)
    assert supervisor.account == {"jid": "6281234567890@s.whatsapp.net", "push_name": "Toko Maju"}
    assert [row[1] for row in await transitions(database)] == ["connecting", "pairing", "connected"]
    status = as_json(await session_status(supervisor, database))
    assert status["account"]["phone"] == "+6281234567890"
    assert status["auth_store"] == {
        "kind": "postgres",
        "backend": "simulator",
        "devices": 1,
        "import": {"at_start": None, "last": None},  # no file-based login was imported (issue 5)
    }


async def test_restart_with_stored_device_connects_without_pairing(
    make_supervisor: MakeSupervisor, database: Database
) -> None:
    first = await paired(make_supervisor)
    await first.stop()
    assert first.state is State.STOPPED
    second = make_supervisor()
    await wait_state(second, State.CONNECTED)
    after_restart = (await transitions(database))[4:]
    assert [row[1] for row in after_restart] == ["connecting", "connected"]
    assert after_restart[-1][2] == "logged_in"
    assert second.account is not None and second.account["jid"] == "6281234567890@s.whatsapp.net"


async def test_logged_out_from_the_phone_offers_pairing(make_supervisor: MakeSupervisor, database: Database) -> None:
    supervisor = await paired(make_supervisor)
    await supervisor.simulate("disconnect", {"reason": "logged_out"})
    await wait_state(supervisor, State.PAIRING)
    states = [row[1] for row in await transitions(database)]
    assert states[-3:] == ["logged_out", "connecting", "pairing"]
    assert supervisor.qr is not None and supervisor.qr["payload"].startswith("2@")


async def test_replaced_three_times_in_ten_minutes_stops_until_the_operator_acts(
    make_supervisor: MakeSupervisor, database: Database
) -> None:
    supervisor = await paired(make_supervisor)
    for _ in range(2):
        await supervisor.simulate("disconnect", {"reason": "replaced"})
        await wait_state(supervisor, State.REPLACED)
        assert supervisor.retry_at is not None
        await wait_state(supervisor, State.CONNECTED)
    await supervisor.simulate("disconnect", {"reason": "replaced"})
    await wait_state(supervisor, State.STOPPED)
    assert supervisor.retry_at is None and supervisor.worker is None
    assert "replaced 3 times" in (supervisor.detail or "")
    with pytest.raises(TimeoutError):  # it stays stopped: no retry is scheduled
        await wait_state(supervisor, State.CONNECTING, timeout=1.0)
    await supervisor.reconnect()  # the operator acts
    await wait_state(supervisor, State.CONNECTED)


async def test_crash_is_respawned_and_reconnected(make_supervisor: MakeSupervisor, database: Database) -> None:
    supervisor = await paired(make_supervisor)
    assert supervisor.worker is not None
    crashed_pid = supervisor.worker.pid
    await supervisor.simulate("crash", {})
    await wait_state(supervisor, State.RECONNECTING)
    assert supervisor.reason == "worker_crashed"
    await wait_state(supervisor, State.CONNECTED)
    assert supervisor.worker is not None and supervisor.worker.pid != crashed_pid
    assert not pid_alive(crashed_pid)


async def test_hung_worker_is_killed_and_respawned(make_supervisor: MakeSupervisor, database: Database) -> None:
    supervisor = await paired(make_supervisor, heartbeat=0.5)  # ping timeout = min(10 s, 2 intervals) = 1 s
    assert supervisor.worker is not None
    hung_pid = supervisor.worker.pid
    await supervisor.simulate("hang", {})
    await wait_state(supervisor, State.RECONNECTING, timeout=10)
    assert supervisor.reason == "worker_hung"
    assert not pid_alive(hung_pid)
    await wait_state(supervisor, State.CONNECTED)


async def test_dead_link_behind_connected_is_found_within_two_heartbeats(
    make_supervisor: MakeSupervisor, database: Database
) -> None:
    interval = 0.5
    supervisor = await paired(make_supervisor, heartbeat=interval)
    loop = asyncio.get_running_loop()
    await supervisor.simulate("disconnect", {"reason": "silent"})
    dropped = loop.time()
    await wait_state(supervisor, State.RECONNECTING, timeout=5)
    assert loop.time() - dropped <= 2 * interval + 0.5  # 0.5 s of slack for the ping round trip on a busy machine
    assert supervisor.reason == "heartbeat_lost"
    await wait_state(supervisor, State.CONNECTED)


async def test_unscanned_qr_round_ends_cleanly(make_supervisor: MakeSupervisor, database: Database) -> None:
    supervisor = make_supervisor(qr_seconds="0.3,0.3")
    await wait_state(supervisor, State.PAIRING)
    await wait_qr_rotation(supervisor, 2)
    assert supervisor.worker is not None
    worker_pid = supervisor.worker.pid
    await wait_state(supervisor, State.LOGGED_OUT)
    assert supervisor.reason == "pairing_expired" and "start a new one" in (supervisor.detail or "")
    assert supervisor.worker is None and not pid_alive(worker_pid)  # the worker was recycled
    await supervisor.pair()  # a new round is offered on request
    await wait_state(supervisor, State.PAIRING)
    await wait_state(supervisor, State.LOGGED_OUT)
    await supervisor.pair()
    await wait_state(supervisor, State.PAIRING)
    await wait_state(supervisor, State.LOGGED_OUT)
    with pytest.raises(SessionError) as caught:  # at most three rounds per two minutes
        await supervisor.pair()
    assert caught.value.status == 429


async def test_operator_logout_and_refusals(make_supervisor: MakeSupervisor, database: Database) -> None:
    supervisor = await paired(make_supervisor)
    with pytest.raises(SessionError, match="needs a logged-out session"):
        await supervisor.pair()
    with pytest.raises(SessionError, match="no pairing round"):
        await supervisor.pair_code("6281234567890")
    await supervisor.logout()
    await wait_state(supervisor, State.PAIRING)
    async with database.connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM simulator_devices") == 0
    code = await supervisor.pair_code("6281234567890")
    assert len(code) == 8 and code.isalnum()
    with pytest.raises(SessionError, match="not logged in"):
        await supervisor.logout()


async def test_second_supervisor_stands_by_and_takes_over(make_supervisor: MakeSupervisor, database: Database) -> None:
    holder = await paired(make_supervisor)
    standby = make_supervisor()
    await wait_state(standby, State.STANDBY)
    assert standby.worker is None
    with pytest.raises(SessionError, match="standby"):
        await standby.reconnect()
    status = await session_status(standby, database)
    assert status.state is State.STANDBY and status.holder is not None and status.holder.state is State.CONNECTED
    await holder.stop()
    await wait_state(standby, State.CONNECTED, timeout=10)
    assert standby.reason == "logged_in"


async def test_losing_the_lease_connection_stops_the_worker_at_once(
    make_supervisor: MakeSupervisor, database: Database
) -> None:
    supervisor = await paired(make_supervisor)
    assert supervisor.worker is not None and supervisor.lease.connection is not None
    worker_pid = supervisor.worker.pid
    lease_backend = supervisor.lease.connection.get_server_pid()
    async with database.connection() as connection:
        assert await connection.fetchval("SELECT pg_terminate_backend($1)", lease_backend)
    await wait_state(supervisor, State.STANDBY, timeout=10)
    assert not pid_alive(worker_pid)
    await wait_state(supervisor, State.CONNECTED, timeout=10)  # the lock is free again: it takes the lease back


async def test_a_dropped_connection_is_whatsmeows_to_mend_in_the_same_worker(make_supervisor: MakeSupervisor) -> None:
    supervisor = await paired(make_supervisor)
    assert supervisor.worker is not None
    generation = supervisor.worker.generation
    await supervisor.simulate("disconnect", {"reason": "connection_lost"})
    await wait_state(supervisor, State.RECONNECTING)
    assert supervisor.reason == "connection_lost" and supervisor.retry_at is not None
    await wait_state(supervisor, State.CONNECTED)
    assert supervisor.reason == "reconnected"
    assert supervisor.worker is not None and supervisor.worker.generation == generation


async def test_a_new_worker_when_whatsmeow_does_not_reconnect_within_the_grace(make_supervisor: MakeSupervisor) -> None:
    supervisor = await paired(make_supervisor)
    assert supervisor.worker is not None
    generation = supervisor.worker.generation
    await supervisor.simulate("disconnect", {"reason": "connection_lost", "reconnect": False})
    await wait_state(supervisor, State.RECONNECTING)
    await wait_state(supervisor, State.CONNECTING, timeout=FAST.reconnect_grace + 10)
    await wait_state(supervisor, State.CONNECTED)
    assert supervisor.worker is not None and supervisor.worker.generation > generation


async def test_every_transition_is_stored_with_its_webhook_event(
    make_supervisor: MakeSupervisor, database: Database
) -> None:
    supervisor = await paired(make_supervisor, heartbeat=0.2)
    await supervisor.simulate("disconnect", {"reason": "connection_lost"})
    await wait_state(supervisor, State.RECONNECTING)
    await wait_state(supervisor, State.CONNECTED)
    await supervisor.heartbeat()
    async with database.connection() as connection:
        stored = await connection.fetch("SELECT * FROM session_transitions ORDER BY id")
        events = await connection.fetch(
            "SELECT data FROM outbox_events WHERE type = 'session.state_changed' ORDER BY created_at"
        )
        figures = await audit.stability(connection)
        status_row = await audit.stored_status(connection)
    # connecting, pairing, connected, reconnecting, connected (whatsmeow reconnected in the same worker)
    assert len(stored) == len(events) >= 5
    for row, event in zip(stored, events, strict=True):
        data = json.loads(event["data"])
        assert (data["from"], data["to"], data["reason"]) == (row["from_state"], row["to_state"], row["reason"])
    assert figures.disconnects == 1 and figures.reconnects == 1
    assert figures.uptime_percent is not None and 0 < figures.uptime_percent < 100
    assert figures.seconds_since_connected is not None and figures.seconds_since_connected < 5
    assert status_row is not None and status_row["state"] == "connected" and status_row["heartbeat_ok"] is True
    last_heartbeat = status_row["last_heartbeat_at"]
    assert dt.datetime.now(dt.UTC) - last_heartbeat < dt.timedelta(seconds=5)


async def test_transitions_during_a_database_outage_are_stored_once_it_ends(
    make_supervisor: MakeSupervisor, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool cannot reach Postgres while the lease (its own connection) holds: the session goes on, and what it
    went through is written, in order and with its webhook events, as soon as Postgres answers again."""
    supervisor = await paired(make_supervisor)

    @contextlib.asynccontextmanager
    async def unavailable() -> AsyncIterator[Any]:
        raise DatabaseUnavailable("Postgres is unavailable: ConnectionRefusedError")
        yield

    with monkeypatch.context() as outage:
        outage.setattr(database, "transaction", unavailable)
        outage.setattr(database, "connection", unavailable)
        await supervisor.simulate("disconnect", {"reason": "connection_lost"})
        await wait_state(supervisor, State.RECONNECTING)
        await wait_state(supervisor, State.CONNECTED)
        await supervisor.heartbeat()  # still down: nothing is lost by trying
    assert [row[1] for row in await transitions(database)] == ["connecting", "pairing", "connected"]

    await supervisor.heartbeat()
    assert [row[1] for row in await transitions(database)] == [
        "connecting",
        "pairing",
        "connected",
        "reconnecting",
        "connected",
    ]
    async with database.connection() as connection:
        events = await connection.fetch(
            "SELECT data FROM outbox_events WHERE type = 'session.state_changed' ORDER BY (data->>'at')::timestamptz"
        )
        status_row = await audit.stored_status(connection)
    assert [json.loads(event["data"])["to"] for event in events][-3:] == ["connected", "reconnecting", "connected"]
    assert status_row is not None and status_row["state"] == "connected"


async def test_shutdown_within_budget_even_with_a_hung_worker(
    make_supervisor: MakeSupervisor, database: Database
) -> None:
    supervisor = await paired(make_supervisor)
    assert supervisor.worker is not None
    worker_pid = supervisor.worker.pid
    await supervisor.simulate("hang", {})
    loop = asyncio.get_running_loop()
    started = loop.time()
    await supervisor.stop(budget=9.0)
    assert loop.time() - started < 9.0
    assert not pid_alive(worker_pid)
    assert supervisor.state is State.STOPPED
    async with database.connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM simulator_devices") == 1  # stopped, not logged out
        assert await connection.fetchval("SELECT pg_try_advisory_lock($1)", LEASE_KEY) is True  # lease released
        await connection.execute("SELECT pg_advisory_unlock($1)", LEASE_KEY)


async def test_uptime_figures_from_a_known_history(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    now = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
    hour = dt.timedelta(hours=1)
    history = [
        (now - 30 * hour, None, State.CONNECTING, "boot"),
        (now - 29 * hour, State.CONNECTING, State.CONNECTED, "logged_in"),  # connected across the window's start
        (now - 12 * hour, State.CONNECTED, State.RECONNECTING, "connection_lost"),
        (now - 11 * hour, State.RECONNECTING, State.CONNECTING, "connecting"),
        (now - 10 * hour, State.CONNECTING, State.CONNECTED, "logged_in"),
        (now - 6 * hour, State.CONNECTED, State.STOPPED, "shutdown"),
        (now - 5 * hour, State.STOPPED, State.CONNECTING, "connecting"),
        (now - 4 * hour, State.CONNECTING, State.CONNECTED, "logged_in"),
    ]
    try:
        for at, before, after, reason in history:
            await audit.record_transition(connection, audit.Transition(at, before, after, reason), "test:1")
        figures = await audit.stability(connection, now=now)
    finally:
        await connection.close()
    # connected: 12 h (until the loss) + 4 h + 4 h = 20 h of 24 h
    assert figures.uptime_percent == pytest.approx(100 * 20 / 24, abs=0.01)
    assert figures.disconnects == 2 and figures.reconnects == 2


async def test_the_retry_count_starts_again_after_a_stable_connection_and_reads_once(
    make_supervisor: MakeSupervisor, database: Database
) -> None:
    stable_after = 3.0
    supervisor = await paired(make_supervisor, heartbeat=0.3, policy=dataclasses.replace(FAST, stable_after=3.0))

    async def silent_drop() -> str:
        await supervisor.simulate("disconnect", {"reason": "silent"})
        await wait_state(supervisor, State.RECONNECTING, timeout=5)
        assert supervisor.reason == "heartbeat_lost"
        detail = supervisor.detail or ""
        await wait_state(supervisor, State.CONNECTED)
        return detail

    first = await silent_drop()
    second = await silent_drop()  # right after the reconnect: the outage goes on, the count with it
    await asyncio.sleep(stable_after + 0.2)  # stability is a matter of time connected
    after_stable = await silent_drop()
    assert first.startswith("the worker reports no connection behind 'connected'; retry 1 in ")
    assert second.startswith("the worker reports no connection behind 'connected'; retry 2 in ")
    assert after_stable.startswith("the worker reports no connection behind 'connected'; retry 1 in ")
    assert "heartbeat_lost" not in first  # the reason is a field of its own, not repeated in the sentence


async def test_a_reconnect_records_a_good_heartbeat_at_once(
    make_supervisor: MakeSupervisor, database: Database
) -> None:
    supervisor = await paired(make_supervisor, heartbeat=30.0)  # no beat of its own during the test
    await supervisor.simulate("disconnect", {"reason": "silent"})
    await supervisor.heartbeat()  # finds the dead link: heartbeat_ok false, and the session reconnects
    async with database.connection() as connection:
        assert (await audit.stored_status(connection) or {})["heartbeat_ok"] is False
    await wait_state(supervisor, State.RECONNECTING, State.CONNECTING)
    await wait_state(supervisor, State.CONNECTED)
    async with database.connection() as connection:
        status_row = await audit.stored_status(connection)
    assert status_row is not None and status_row["state"] == "connected"
    assert status_row["heartbeat_ok"] is True  # not false until the next beat, 30 s from now


async def test_a_supervisor_that_dies_stops_the_session_shows_it_and_frees_the_lease(empty_database_url: str) -> None:
    """A database without the app's tables makes its first write fail with an error no loop expects: the supervisor
    task dies. It is not restarted (its worker, lease and timers are in whatever state the error left them): the
    session says so, the task shows as died, and the lease is free for another process."""
    database = await Database.open(empty_database_url)
    supervisor = Supervisor(
        database=database, worker=WorkerSettings("simulator", empty_database_url), heartbeat_interval=30.0
    )
    supervisor.start()
    try:
        await wait_state(supervisor, State.STOPPED)
        assert supervisor.reason == "supervisor_failed" and "UndefinedTableError" in (supervisor.detail or "")
        [status] = [status for status in task_statuses() if status.name == "session-supervisor"]
        assert status.state is TaskState.DIED and status.last_error is not None and status.restarts == 0
        connection = await asyncpg.connect(empty_database_url)
        try:
            assert await connection.fetchval("SELECT pg_try_advisory_lock($1)", LEASE_KEY) is True
        finally:
            await connection.close()
    finally:
        await supervisor.stop(5.0)
        await database.close()
