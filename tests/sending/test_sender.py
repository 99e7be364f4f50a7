"""The sender loop through a real simulator worker: pace, pause and resume, retries, failures, receipts, restarts."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from app.db.database import Database
from app.incoming.store import MessageStore
from app.phone import parse_recipient
from app.sending import queue
from app.sending.sender import MAX_ATTEMPTS, Sender
from app.session.states import State
from app.session.supervisor import Supervisor
from tests.session.conftest import MakeSupervisor, paired, wait_state

MakeSender = Callable[..., Sender]


@pytest.fixture
async def make_sender(database: Database) -> AsyncIterator[MakeSender]:
    senders: list[Sender] = []

    def make(
        supervisor: Supervisor, per_minute: int = 600, min_interval: float = 0.0, typing_cap: float = 0.0
    ) -> Sender:
        sender = Sender(
            database,
            supervisor,
            per_minute=per_minute,
            min_interval=min_interval,
            retry_base=0.05,
            typing_cap=typing_cap,
        )
        sender.start()
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        await sender.stop()


async def enqueue(
    database: Database, text: str, to: str = "+6281234567890", key: str | None = None, typing: bool | None = None
) -> uuid.UUID:
    async with database.transaction() as connection:
        result = await queue.enqueue(connection, parse_recipient(to), text, key, typing=typing)
    return uuid.UUID(result.message["id"])


async def wait_status(
    database: Database, message_id: uuid.UUID, *statuses: str, timeout: float = 20.0
) -> dict[str, Any]:
    """Poll the row until it reaches one of `statuses` (the sender runs in its own task; its writes are the signal)."""
    deadline = time.monotonic() + timeout
    while True:
        async with database.connection() as connection:
            message = await queue.get(connection, message_id)
        assert message is not None
        if message["status"] in statuses:
            return message
        assert time.monotonic() < deadline, f"still {message['status']}: {message}"
        await asyncio.sleep(0.02)


async def status_events(database: Database, message_id: uuid.UUID) -> list[str]:
    async with database.connection() as connection:
        rows = await connection.fetch(
            "SELECT data FROM outbox_events WHERE type = 'message.status' AND data->>'id' = $1 ORDER BY created_at",
            str(message_id),
        )
    return [json.loads(row["data"])["status"] for row in rows]


async def test_spacing_and_per_minute_cap(
    make_supervisor: MakeSupervisor, make_sender: MakeSender, database: Database
) -> None:
    supervisor = await paired(make_supervisor)
    sender = make_sender(supervisor, per_minute=4, min_interval=0.3)
    ids = [await enqueue(database, f"message {n}") for n in range(6)]
    sender.wake()
    sent = [await wait_status(database, message_id, "sent") for message_id in ids[:4]]
    times = [dt.datetime.fromisoformat(message["sent_at"]) for message in sent]  # the simulator's send timestamps
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 0.3, gaps
    # The cap: the fifth may only go a minute after the first. The sender is waiting for that, with 5 and 6 queued.
    assert sender.limiter.delay(time.time()) > 50
    for message_id in ids[4:]:
        assert (await wait_status(database, message_id, "queued", "sending", "sent"))["status"] == "queued"


async def test_paused_while_disconnected_and_resumed(
    make_supervisor: MakeSupervisor, make_sender: MakeSender, database: Database
) -> None:
    supervisor = await paired(make_supervisor)
    make_sender(supervisor)
    await supervisor.simulate("disconnect", {"reason": "replaced"})  # waits ~0.2 s (test policy) before reconnecting
    await wait_state(supervisor, State.REPLACED)
    message_id = await enqueue(database, "while away")
    assert (await wait_status(database, message_id, "queued"))["attempts"] == 0
    await wait_state(supervisor, State.CONNECTED)
    message = await wait_status(database, message_id, "sent")
    assert message["attempts"] == 1 and message["message_id"].startswith("3EB0")


async def test_transient_failures_are_retried_then_sent(
    make_supervisor: MakeSupervisor, make_sender: MakeSender, database: Database
) -> None:
    supervisor = await paired(make_supervisor)
    await supervisor.simulate("send_failures", {"count": 2, "permanent": False, "error": "timed out"})
    make_sender(supervisor)
    message_id = await enqueue(database, "third time lucky")
    message = await wait_status(database, message_id, "sent")
    assert message["attempts"] == 3 and message["error"] is None
    assert await status_events(database, message_id) == [
        "sending",
        "queued",
        "sending",
        "queued",
        "sending",
        "sent",
    ]


async def test_gives_up_after_five_transient_failures(
    make_supervisor: MakeSupervisor, make_sender: MakeSender, database: Database
) -> None:
    supervisor = await paired(make_supervisor)
    await supervisor.simulate("send_failures", {"count": MAX_ATTEMPTS, "permanent": False, "error": "server busy"})
    make_sender(supervisor)
    message_id = await enqueue(database, "never")
    message = await wait_status(database, message_id, "failed")
    assert message["attempts"] == MAX_ATTEMPTS
    assert message["error"] == f"gave up after {MAX_ATTEMPTS} attempts: server busy"


async def test_permanent_failure_is_not_retried(
    make_supervisor: MakeSupervisor, make_sender: MakeSender, database: Database
) -> None:
    supervisor = await paired(make_supervisor)
    await supervisor.simulate("send_failures", {"count": 1, "permanent": True, "error": "number not on WhatsApp"})
    make_sender(supervisor)
    failed = await enqueue(database, "to nobody")
    after = await enqueue(database, "to somebody")
    message = await wait_status(database, failed, "failed")
    assert (message["attempts"], message["error"]) == (1, "number not on WhatsApp")
    assert (await wait_status(database, after, "sent"))["attempts"] == 1  # the queue moved on


async def test_receipts_move_statuses_forward_and_emit_events(
    make_supervisor: MakeSupervisor, make_sender: MakeSender, database: Database
) -> None:
    store = MessageStore(database, receipt_hook=queue.receipt_hook)  # as the app wires it
    store.start()
    supervisor = await paired(make_supervisor, incoming=store.take)
    make_sender(supervisor)
    message_id = await enqueue(database, "hello")
    whatsapp_id = (await wait_status(database, message_id, "sent"))["message_id"]
    await supervisor.simulate(
        "receipt", {"from": "+6281234567890", "message_ids": [whatsapp_id], "status": "delivered"}
    )
    assert (await wait_status(database, message_id, "delivered"))["delivered_at"] is not None
    await supervisor.simulate("receipt", {"from": "+6281234567890", "message_ids": [whatsapp_id], "status": "read"})
    assert (await wait_status(database, message_id, "read"))["read_at"] is not None
    # a late "delivered" after "read" changes nothing
    await supervisor.simulate(
        "receipt", {"from": "+6281234567890", "message_ids": [whatsapp_id], "status": "delivered"}
    )
    await supervisor.simulate("receipt", {"from": "+6281234567890", "message_ids": ["other"], "status": "read"})
    async with database.connection() as connection:
        assert await connection.fetchval("SELECT status FROM outgoing_messages WHERE id = $1", message_id) == "read"
    await store.close(5.0)
    assert await status_events(database, message_id) == ["sending", "sent", "delivered", "read"]


async def test_interrupted_send_is_failed_not_resent(
    make_supervisor: MakeSupervisor, make_sender: MakeSender, database: Database
) -> None:
    message_id = await enqueue(database, "in flight when the process died")
    async with database.transaction() as connection:
        claimed = await queue.claim_next(connection)  # as the process that died had done
    assert claimed is not None and claimed["id"] == message_id
    waiting = await enqueue(database, "still queued")
    supervisor = await paired(make_supervisor)
    make_sender(supervisor)
    interrupted = await wait_status(database, message_id, "failed")
    assert interrupted["error"].startswith("interrupted") and interrupted["message_id"] is None
    assert (await wait_status(database, waiting, "sent"))["attempts"] == 1
    assert (await status_events(database, message_id))[-1] == "failed"


async def test_an_answer_after_the_timeout_still_records_whatsapps_id(
    make_supervisor: MakeSupervisor, make_sender: MakeSender, database: Database
) -> None:
    supervisor = await paired(make_supervisor)
    supervisor.send_timeout = 0.5  # stands for whatsmeow's 75 s
    await supervisor.simulate("send_failures", {"count": 1, "delay": 1.5})  # WhatsApp answers, but late
    make_sender(supervisor)
    message_id = await enqueue(database, "slow network")
    interrupted = await wait_status(database, message_id, "failed")
    assert interrupted["error"].startswith("interrupted") and interrupted["message_id"] is None
    message = await wait_status(database, message_id, "sent")
    assert message["message_id"].startswith("3EB0") and message["error"] is None
    assert await status_events(database, message_id) == ["sending", "failed", "sent"]


async def test_a_send_while_the_link_is_silently_down_uses_no_attempt(
    make_supervisor: MakeSupervisor, make_sender: MakeSender, database: Database
) -> None:
    # The link dies without a word: the session still says `connected` until a heartbeat finds out (30 s here, so
    # the sends below meet the dead link many times first).
    supervisor = await paired(make_supervisor)
    await supervisor.simulate("disconnect", {"reason": "silent"})
    make_sender(supervisor)
    message_id = await enqueue(database, "while the link is down")
    deadline = time.monotonic() + 15
    while (events := await status_events(database, message_id)).count("queued") < MAX_ATTEMPTS + 1:
        assert time.monotonic() < deadline, events
        await asyncio.sleep(0.05)
    message = await wait_status(database, message_id, "queued")
    assert supervisor.state is State.CONNECTED  # nobody noticed yet: only the send's error says the link is down
    assert message["attempts"] == 0, message  # more tries than MAX_ATTEMPTS, none of them counted
    assert "not connected" in message["error"]
    await supervisor.reconnect()  # the link is back
    message = await wait_status(database, message_id, "sent")
    assert message["attempts"] == 1 and message["error"] is None


async def presences(supervisor: Supervisor) -> list[dict[str, Any]]:
    actions = (await supervisor.simulate("actions", {}))["actions"]
    return [action for action in actions if action["action"] == "presence"]


async def test_typing_before_a_send_for_a_time_that_grows_with_the_text(
    make_supervisor: MakeSupervisor, make_sender: MakeSender, database: Database
) -> None:
    supervisor = await paired(make_supervisor)
    make_sender(supervisor, typing_cap=1.5)  # SEND_TYPING_SECONDS=1.5
    short = await enqueue(database, "ok")
    long = await enqueue(database, "x" * 400, to="+6282222222222")
    silent = await enqueue(database, "no typing for this one", typing=False)
    sent = [await wait_status(database, message_id, "sent") for message_id in (short, long, silent)]
    shown = await presences(supervisor)
    assert [(p["chat"], p["state"]) for p in shown] == [
        ("6281234567890@s.whatsapp.net", "typing"),
        ("6282222222222@s.whatsapp.net", "typing"),
    ]
    typed = [
        (dt.datetime.fromisoformat(message["sent_at"]) - dt.datetime.fromisoformat(presence["at"])).total_seconds()
        for message, presence in zip(sent, shown, strict=False)
    ]
    assert 1.0 <= typed[0] < 1.4  # a short text: the least that reads as typing
    assert 1.5 <= typed[1] < 1.9  # a long one: the cap
    assert sent[0]["typing"] is None and sent[2]["typing"] is False


async def test_a_message_may_ask_for_typing_and_a_refused_presence_holds_nothing_back(
    make_supervisor: MakeSupervisor, make_sender: MakeSender, database: Database
) -> None:
    supervisor = await paired(make_supervisor)
    await supervisor.simulate("action_failures", {"name": "presence", "error": "rate-overlimit", "count": 1})
    make_sender(supervisor)  # SEND_TYPING_SECONDS=0: typing only where asked
    refused = await enqueue(database, "asked, but WhatsApp refused the presence", typing=True)
    plain = await enqueue(database, "not asked")
    asked = await enqueue(database, "asked", typing=True)
    for message_id in (refused, plain, asked):
        assert (await wait_status(database, message_id, "sent"))["attempts"] == 1
    assert len(await presences(supervisor)) == 1  # only `asked`: `refused` went without, `plain` never asked


async def test_a_send_that_fails_after_typing_clears_it_and_a_stop_while_typing_sends_nothing(
    make_supervisor: MakeSupervisor, make_sender: MakeSender, database: Database
) -> None:
    supervisor = await paired(make_supervisor)
    await supervisor.simulate("send_failures", {"count": 1, "permanent": True, "error": "no LID found for x"})
    first = make_sender(supervisor, typing_cap=1.0)
    failed = await enqueue(database, "to nobody")
    assert (await wait_status(database, failed, "failed"))["error"] == "no LID found for x"
    assert [p["state"] for p in await presences(supervisor)] == ["typing", "paused"]
    await first.stop()

    sender = make_sender(supervisor, typing_cap=20.0)
    waiting = await enqueue(database, "y" * 1000)
    deadline = time.monotonic() + 10
    while len(await presences(supervisor)) < 3:  # the sender is typing (for 20 s)
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert (await wait_status(database, waiting, "sending"))["attempts"] == 1
    started = time.monotonic()
    await sender.stop()
    assert time.monotonic() - started < 1.0  # the typing pause ends at once
    message = await wait_status(database, waiting, "queued")
    assert message["attempts"] == 0 and message["message_id"] is None
    assert await status_events(database, waiting) == ["sending", "queued"]
