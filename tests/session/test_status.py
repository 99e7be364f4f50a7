"""The session's typed status through a real worker: after a logout (from the phone or from the page) no account is
left, in memory or in the stored status row, and the status says who unlinked the device and when."""

from __future__ import annotations

from app.db.database import Database
from app.session.states import State
from app.session.status import read_session
from app.status import as_json, session_status
from tests.session.conftest import MakeSupervisor, paired, wait_state


async def test_a_logout_from_the_phone_leaves_no_account(make_supervisor: MakeSupervisor, database: Database) -> None:
    supervisor = await paired(make_supervisor)
    before = await session_status(supervisor, database)
    assert before.account is not None and before.account.phone == "+6281234567890" and before.unlinked is None

    await supervisor.simulate("disconnect", {"reason": "logged_out"})
    await wait_state(supervisor, State.PAIRING)
    assert supervisor.account is None
    live = as_json(await session_status(supervisor, database))
    assert live["account"] is None
    assert live["unlinked"]["by_operator"] is False and "logged out from the phone" in live["unlinked"]["detail"]
    async with database.connection() as connection:
        row = await connection.fetchrow("SELECT account_jid, push_name FROM session_status")
        stored = await read_session(connection, None, heartbeat_interval=30.0)
    assert row is not None and (row["account_jid"], row["push_name"]) == (None, None)
    assert stored.account is None and stored.state is State.PAIRING
    assert stored.unlinked is not None and stored.unlinked.at.isoformat() == live["unlinked"]["at"]


async def test_a_logout_from_the_page_says_so(make_supervisor: MakeSupervisor, database: Database) -> None:
    supervisor = await paired(make_supervisor)
    await supervisor.logout()
    await wait_state(supervisor, State.PAIRING)
    status = await session_status(supervisor, database)
    assert status.account is None and status.unlinked is not None and status.unlinked.by_operator is True
    # Linked again: the notice is history.
    await supervisor.simulate("pair", {"phone": "+6281234567890"})
    await wait_state(supervisor, State.CONNECTED)
    again = await session_status(supervisor, database)
    assert again.unlinked is None and again.account is not None
