"""The dispatcher against real Postgres and a real receiver: signature, retries, order per chat, outages, 410, dead."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import time
import uuid

from app.db.database import Database
from app.webhooks import deliveries, operator
from app.webhooks.dispatcher import Dispatcher
from app.webhooks.retry import RetryPolicy
from tests.webhooks.conftest import SECRET, MakeDispatcher, enqueue, signed_correctly, use_endpoints
from tests.webhooks.receiver import Received, Receiver, Reply


async def statuses(database: Database) -> dict[str, int]:
    async with database.connection() as connection:
        rows = await connection.fetch("SELECT status, count(*) FROM webhook_deliveries GROUP BY status")
    return {row["status"]: row["count"] for row in rows}


async def wait_statuses(database: Database, expected: dict[str, int], timeout: float = 20.0) -> None:
    """Poll the table (outcomes are written by a background task; there is no event to await from outside)."""
    deadline = time.monotonic() + timeout
    while (seen := await statuses(database)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries {seen}, expected {expected}")
        await asyncio.sleep(0.05)


def ids(received: list[Received]) -> list[str]:
    return [item.event_id for item in received]


async def test_delivers_a_signed_envelope_with_the_headers(
    database: Database, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    await use_endpoints(database, receiver.url)
    make_dispatcher()
    before = time.time()
    event_id = await enqueue(database, "6281111111111@s.whatsapp.net", text="halo")
    [request] = await receiver.until(lambda got: len(got) == 1)
    assert request.method == "POST" and request.path == "/hook"
    assert signed_correctly(request)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-webhook-id"] == event_id
    assert before - 1 <= int(request.headers["x-webhook-timestamp"]) <= time.time() + 1
    assert request.headers["x-webhook-attempt"] == "1"
    envelope = request.json()
    assert set(envelope) == {"id", "type", "created_at", "data"}
    assert envelope["id"] == event_id and envelope["type"] == "message.received"
    assert dt.datetime.fromisoformat(envelope["created_at"]).tzinfo is not None
    assert envelope["data"] == {"chat": "6281111111111@s.whatsapp.net", "text": "halo"}
    await wait_statuses(database, {"delivered": 1})
    assert not signed_correctly(request, SECRET + "x")


async def test_every_retry_carries_the_same_id_body_and_signature(
    database: Database, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    receiver.respond = lambda request: Reply(500 if int(request.headers["x-webhook-attempt"]) < 3 else 200)
    await use_endpoints(database, receiver.url)
    make_dispatcher()
    event_id = await enqueue(database, "c1@s.whatsapp.net", text="again")
    got = await receiver.until(lambda got: len(got) == 3)
    assert {item.event_id for item in got} == {event_id}
    assert {item.headers["x-webhook-id"] for item in got} == {event_id}
    assert len({item.body for item in got}) == 1
    assert len({item.headers["x-hub-signature-256"] for item in got}) == 1 and signed_correctly(got[0])
    assert [item.headers["x-webhook-attempt"] for item in got] == ["1", "2", "3"]
    await wait_statuses(database, {"delivered": 1})
    async with database.connection() as connection:
        [shown] = await operator.list_deliveries(connection, "delivered")
    assert shown["attempts"] == 3 and shown["last_status"] == 200
    assert shown["last_error"] == "HTTP 500: Internal Server Error"  # kept from the last failure


async def test_order_per_chat_under_retries_and_other_chats_go_on(
    database: Database, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    failures: dict[str, int] = {}

    def respond(request: Received) -> Reply:
        # The first message of chat A fails three times; everything else succeeds at once.
        if request.data["chat"] == "A" and request.data["n"] == 0 and failures.setdefault("A0", 0) < 3:
            failures["A0"] += 1
            return Reply(503)
        return Reply(200)

    receiver.respond = respond
    await use_endpoints(database, receiver.url)
    for n in range(6):
        await enqueue(database, "A", n=n)
        await enqueue(database, "B", n=n)
    make_dispatcher(policy=RetryPolicy(base=0.3, cap=0.3))
    got = await receiver.until(lambda got: len({item.event_id for item in got}) == 12)
    a_order = [item.data["n"] for item in got if item.data["chat"] == "A"]
    assert a_order == [0, 0, 0, 0, 1, 2, 3, 4, 5]  # three failures of 0, then 0..5: nothing of A overtook 0
    first_a_success = max(index for index, item in enumerate(got) if item.data == {"chat": "A", "n": 0})
    b_positions = [index for index, item in enumerate(got) if item.data["chat"] == "B"]
    assert max(b_positions) < first_a_success  # B was not held up by A's retries
    assert [got[index].data["n"] for index in b_positions] == list(range(6))
    await wait_statuses(database, {"delivered": 12})


async def test_receiver_down_for_a_while_then_up_gets_everything(
    database: Database, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    await use_endpoints(database, receiver.url)
    receiver.stop()
    make_dispatcher()
    sent = [await enqueue(database, f"chat{n % 4}", n=n) for n in range(20)]
    deadline = time.monotonic() + 20
    while (await statuses(database)).get("failed", 0) < 4:  # every chat's first event has failed at least once
        assert time.monotonic() < deadline, await statuses(database)
        await asyncio.sleep(0.05)
    receiver.start()
    got = await receiver.until(lambda got: {item.event_id for item in got} >= set(sent))
    for chat in range(4):
        order = [item.data["n"] for item in got if item.data["chat"] == f"chat{chat}"]
        assert order == sorted(order), order
    await wait_statuses(database, {"delivered": 20})


async def test_a_slow_receiver_for_one_chat_does_not_hold_up_the_others(
    database: Database, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    receiver.respond = lambda request: Reply(200, delay=3.0 if request.data["chat"] == "slow" else 0.0)
    await use_endpoints(database, receiver.url)
    make_dispatcher()
    await enqueue(database, "slow", n=0)
    await enqueue(database, "slow", n=1)
    others = [await enqueue(database, f"fast{n % 3}", n=n) for n in range(15)]
    got = await receiver.until(lambda got: set(others) <= set(ids(got)), timeout=10)
    slow = [item for item in got if item.data["chat"] == "slow"]
    assert [item.data["n"] for item in slow] == [0]  # the second waits for the first, still being answered
    assert got[-1].at - slow[0].at < 2.5  # the other chats all arrived while the slow one was still open
    got = await receiver.until(lambda got: len(got) == 17)
    assert [item.data["n"] for item in got if item.data["chat"] == "slow"] == [0, 1]


async def test_410_pauses_the_endpoint_until_resumed(
    database: Database, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    receiver.respond = lambda request: Reply(410)
    await use_endpoints(database, receiver.url)
    dispatcher = make_dispatcher()
    first = await enqueue(database, "c", n=0)
    await receiver.until(lambda got: len(got) == 1)
    deadline = time.monotonic() + 10
    while True:
        async with database.connection() as connection:
            figures = await operator.figures(connection, "active")
        if figures.paused:
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert figures.paused == [receiver.url]
    assert figures.last_error is not None and "410 Gone" in (figures.last_error.error or "")
    assert figures.pending == 1
    receiver.respond = lambda request: Reply(200)
    second = await enqueue(database, "d", n=1)
    dispatcher.wake()
    await asyncio.sleep(1.0)  # nothing may arrive while paused; there is no event to await for "nothing"
    assert len(receiver.received) == 1
    async with database.connection() as connection:
        [endpoint] = await operator.endpoints(connection)
        assert endpoint["paused"] and endpoint["pending"] == 2
        assert await operator.resume_endpoint(connection, endpoint["id"])
    dispatcher.wake()
    got = await receiver.until(lambda got: {first, second} <= set(ids(got)))
    assert ids(got)[0] == first
    await wait_statuses(database, {"delivered": 2})


async def test_dead_after_the_retry_window_then_replayed(
    database: Database, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    receiver.respond = lambda request: Reply(500)
    await use_endpoints(database, receiver.url)
    make_dispatcher(policy=RetryPolicy(base=0.1, cap=0.2, give_up_after=dt.timedelta(seconds=1)))
    event_id = await enqueue(database, "c", n=0)
    later = await enqueue(database, "c", n=1)
    await wait_statuses(database, {"dead": 2})  # the first went dead, then the second (it waited) had its turn
    sent = ids(receiver.received)
    assert max(i for i, item in enumerate(sent) if item == event_id) < sent.index(later)  # in order, even dying
    receiver.respond = lambda request: Reply(200)
    async with database.connection() as connection:
        assert await operator.retry_all(connection, "dead") == 2
    await wait_statuses(database, {"delivered": 2})
    async with database.connection() as connection:
        replayed = (await operator.list_deliveries(connection, "delivered"))[-1]
        assert await operator.retry_delivery(connection, replayed["id"])
    await wait_statuses(database, {"delivered": 2})
    count = len(receiver.received)
    got = await receiver.until(lambda got: len(got) >= count and ids(got).count(event_id) >= 3)
    assert all(signed_correctly(item) for item in got)


async def test_each_url_gets_every_event_independently(
    database: Database, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    broken = Receiver(lambda request: Reply(500)).start()
    try:
        await use_endpoints(database, receiver.url, broken.url)
        make_dispatcher()
        sent = [await enqueue(database, f"chat{n % 2}", n=n) for n in range(10)]
        got = await receiver.until(lambda got: set(ids(got)) == set(sent))
        assert len(got) == 10
        failed = await broken.until(lambda got: len(set(ids(got))) == 2)  # one head per chat, retried
        assert {item.data["n"] for item in failed} == {0, 1}
        deadline = time.monotonic() + 10
        while (counts := await statuses(database)).get("delivered") != 10:
            assert time.monotonic() < deadline, counts
            await asyncio.sleep(0.05)
        assert sum(counts.values()) == 20  # the broken URL's ten are all still to be delivered
    finally:
        broken.close()


async def test_notify_wakes_the_dispatcher_without_waiting_for_the_poll(
    database: Database, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    await use_endpoints(database, receiver.url)
    make_dispatcher(poll_interval=300.0)
    await receiver.until(lambda got: True)
    await asyncio.sleep(0.5)  # let it finish its first (empty) claim and go to sleep for 300 s
    event_id = await enqueue(database, "c", n=0)
    await receiver.until(lambda got: event_id in ids(got), timeout=10)


async def active_and_standby(
    database: Database, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> tuple[Dispatcher, Dispatcher]:
    """A dispatcher that has delivered one event, and a second one standing by."""
    await use_endpoints(database, receiver.url)
    first = make_dispatcher()
    await enqueue(database, "c", n=0)
    await receiver.until(lambda got: len(got) == 1)
    second = make_dispatcher()
    deadline = time.monotonic() + 10
    while second.state != "standby":
        assert time.monotonic() < deadline, second.state
        await asyncio.sleep(0.05)
    return first, second


async def test_one_dispatcher_is_active_the_other_takes_over(
    database: Database, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    first, second = await active_and_standby(database, receiver, make_dispatcher)
    assert first.state == "active"
    await first.stop(5.0)
    event_id = await enqueue(database, "c", n=1)
    await receiver.until(lambda got: event_id in ids(got), timeout=15)
    assert second.state == "active"


async def test_losing_the_lease_connection_ends_that_tenure_and_one_dispatcher_takes_the_lock_again(
    database: Database, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    first, second = await active_and_standby(database, receiver, make_dispatcher)
    assert first.lease.connection is not None
    lost_backend = first.lease.connection.get_server_pid()
    async with database.connection() as connection:
        assert await connection.fetchval("SELECT pg_terminate_backend($1)", lost_backend)

    def holder_backend() -> int | None:
        active = [item for item in (first, second) if item.state == "active"]
        assert len(active) <= 1, "two dispatchers active at once"
        connection = active[0].lease.connection if active else None
        return connection.get_server_pid() if connection is not None else None

    # Whichever comes first takes the lock again: the first one reconnecting, or the standby at its next poll.
    deadline = time.monotonic() + 10
    while holder_backend() in (None, lost_backend):
        assert time.monotonic() < deadline, (first.state, second.state)
        await asyncio.sleep(0.05)
    event_id = await enqueue(database, "c", n=1)
    await receiver.until(lambda got: event_id in ids(got), timeout=15)
    assert holder_backend() not in (None, lost_backend)


async def test_claims_of_a_vanished_dispatcher_are_sent_again(
    database: Database, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    await use_endpoints(database, receiver.url)
    event_id = await enqueue(database, "c", n=0)
    async with database.connection() as connection:  # as if a dispatcher had claimed it and then been killed
        claimed = await deliveries.claim(connection, uuid.uuid4(), 10)
    assert [row.event_id for row in claimed] == [uuid.UUID(event_id)]
    assert await statuses(database) == {"delivering": 1}
    make_dispatcher()
    [request] = await receiver.until(lambda got: len(got) == 1)
    assert request.event_id == event_id and json.loads(request.body)["data"]["n"] == 0


async def test_order_per_chat_holds_under_random_failures(
    database: Database, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    rng = random.Random(6)
    answered: list[tuple[str, str]] = []  # (chat, event id) of each 2xx, in the order they were given

    def respond(request: Received) -> Reply:
        if rng.random() < 0.3:
            return Reply(500)
        answered.append((request.data["chat"], request.event_id))
        return Reply(200)

    receiver.respond = respond
    await use_endpoints(database, receiver.url)
    make_dispatcher(policy=RetryPolicy(base=0.05, cap=0.1))
    sent: dict[str, list[str]] = {}
    for n in range(200):
        chat = f"chat{n % 8}"
        sent.setdefault(chat, []).append(await enqueue(database, chat, n=n))
        if n % 50 == 0:
            await asyncio.sleep(0.05)  # some arrive while earlier ones of their chat are being retried
    await wait_statuses(database, {"delivered": 200}, timeout=60)
    for chat, event_ids in sent.items():
        assert [event_id for answered_chat, event_id in answered if answered_chat == chat] == event_ids
