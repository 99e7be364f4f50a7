"""One contract, two doubles of WhatsApp: the simulator backend and the replay backend (the real neonize backend fed
neonize's own protobuf events) behave alike as the parent sees them, through the real worker process and its channel.

Each test plays one scenario on both: the simulator through its `simulate` commands, the replay backend through a
file of the events whatsmeow would hand over for the same thing. What comes out of the worker (session events and
incoming items, in arrival order) and what a command answers must be the same.

Where only one double models something, the difference is named here and not faked in either:
- `raw`: a replayed message carries WhatsApp's serialized message (base64); the simulator has none (None).
- `timestamp`: a replayed event keeps the time WhatsApp stamped on it; the simulator stamps an item when it makes it
  (both ISO-8601 with a zone).
- LOGGED_OUT's `reason`: WhatsApp's reason name from a replayed event (e.g. "main_device_gone"); a sentence of the
  simulator's own. After the LOGOUT command the neonize backend, and so replay, also emits LOGGED_OUT
  ("user_initiated"); the simulator does not (the supervisor does not wait for it).
- DISCONNECTED's `detail`: None from neonize, "simulated" from the simulator. After a drop the simulator reconnects
  by itself (0.2 s later); in replay the reconnection is the next Connected event of the file.
- Sends: the neonize backend refuses a recipient that is not a phone number or a known JID kind; the simulator
  sends to anything. Only the simulator fails sends on demand, crashes, hangs and runs a QR round (tests/session);
  only replay maps every kind of neonize event (test_replay.py, test_neonize_mapping.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app.whatsapp import backend as events
from app.whatsapp import protocol
from app.whatsapp.process import WorkerProcess
from app.whatsapp.protocol import WorkerSettings
from tests.whatsapp import corpus
from tests.whatsapp.corpus import replay_line

ACCOUNT = {"jid": "15550001111@s.whatsapp.net", "push_name": "Toko Maju"}
ACCOUNT_HEADER = {"me": "15550001111:3@s.whatsapp.net", "push_name": ACCOUNT["push_name"]}  # replay's get_me: a device
CONTACT = "+6281234567890"  # corpus.PHONE, the sender of the corpus' messages and receipts
CONTACT_JID = "6281234567890@s.whatsapp.net"
RECEIPT_IDS = [corpus.TARGET_ID, "3EB0BBBB33334444"]  # corpus.receipt()'s
MESSAGE_FIELDS = {"message_id", "chat", "from", "sender_jid", "push_name", "timestamp", "is_group", "is_from_me",
                  "raw", "type", "text", "media", "poll"}  # fmt: skip

# The steps of a scenario, as each double is told them.
SIMULATED: dict[str, list[dict[str, Any]]] = {
    "text": [
        {
            "action": "incoming",
            "from": CONTACT,
            "text": "hello",
            "message_id": corpus.MESSAGE_ID,
            "push_name": corpus.PUSH_NAME,
        }
    ],
    "receipt": [{"action": "receipt", "from": CONTACT, "message_ids": RECEIPT_IDS, "status": "delivered"}],
    "drop": [{"action": "disconnect", "reason": "connection_lost"}],
    "logged_out": [{"action": "disconnect", "reason": "logged_out"}],
}
REPLAYED: dict[str, list[Callable[[], Any]]] = {
    "text": [corpus.text],
    "receipt": [corpus.delivered_receipt],
    "drop": [corpus.disconnected, corpus.connected],  # whatsmeow reconnects by itself and says so
    "logged_out": [corpus.logged_out],
}

Seen = list[tuple[str, dict[str, Any]]]


class Channel:
    """What one worker sent up its channel, in order (READY left out); incoming items are acknowledged at once."""

    def __init__(self) -> None:
        self.seen: Seen = []
        self._changed = asyncio.Event()

    def on_event(self, _worker: WorkerProcess, name: str, data: dict[str, Any]) -> None:
        if name != protocol.READY:
            self.seen.append((name, data))
            self._changed.set()

    def on_incoming(self, worker: WorkerProcess, seq: int, name: str, data: dict[str, Any]) -> None:
        self.seen.append((name, data))
        worker.acknowledge(seq)
        self._changed.set()

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]

    async def until(self, done: Callable[[Seen], bool], timeout: float = 30.0) -> Seen:
        async with asyncio.timeout(timeout):
            while not done(self.seen):
                self._changed.clear()
                await self._changed.wait()
        return list(self.seen)


@dataclasses.dataclass
class Session:
    worker: WorkerProcess
    channel: Channel


Start = Callable[[list[str]], Awaitable[Session]]


@pytest.fixture(params=["simulator", "replay"])
async def start(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> AsyncIterator[Start]:
    """Start a worker of the double under test with a linked account, wait until it is connected, then play the
    scenario's steps on it."""
    kind: str = request.param
    workers: list[WorkerProcess] = []

    async def begin(steps: list[str]) -> Session:
        channel = Channel()
        settings = WorkerSettings(kind, database_url)
        if kind == "simulator":
            connection = await asyncpg.connect(database_url)
            try:
                insert = "INSERT INTO simulator_devices (jid, push_name) VALUES ($1, $2)"
                await connection.execute(insert, ACCOUNT["jid"], ACCOUNT["push_name"])
            finally:
                await connection.close()
        else:
            path = tmp_path / f"replay-{len(workers)}.jsonl"
            lines = [replay_line(corpus.connected())]
            lines += [replay_line(build()) for step in steps for build in REPLAYED[step]]
            path.write_text("\n".join(json.dumps(line) for line in [ACCOUNT_HEADER, *lines]) + "\n")
            settings = WorkerSettings(kind, database_url, replay_file=str(path))
        worker = await WorkerProcess.spawn(settings, channel.on_event, channel.on_incoming)
        workers.append(worker)
        await channel.until(lambda seen: events.CONNECTED in [name for name, _ in seen])
        if kind == "simulator":
            for step in steps:
                for args in SIMULATED[step]:
                    await worker.request(protocol.SIMULATE, args)
        return Session(worker, channel)

    yield begin
    for worker in workers:
        await worker.stop()


def is_iso_time(value: Any) -> bool:
    return isinstance(value, str) and dt.datetime.fromisoformat(value).tzinfo is not None


async def test_a_linked_account_connects_as_itself(start: Start) -> None:
    session = await start([])
    assert session.channel.seen == [(events.CONNECTED, ACCOUNT)]
    status = await session.worker.request(protocol.PING)
    assert status["connected"] is True and status["logged_in"] is True


async def test_an_incoming_text_is_a_message_with_the_normalised_fields(start: Start) -> None:
    session = await start(["text"])
    seen = await session.channel.until(lambda seen: len(seen) == 2)
    assert [name for name, _ in seen] == [events.CONNECTED, events.MESSAGE]
    message = seen[1][1]
    assert set(message) == MESSAGE_FIELDS
    assert is_iso_time(message["timestamp"])
    assert message["raw"] is None or isinstance(message["raw"], str)  # only replay carries WhatsApp's bytes
    assert {name: value for name, value in message.items() if name not in ("timestamp", "raw")} == {
        "message_id": corpus.MESSAGE_ID,
        "chat": CONTACT_JID,
        "from": CONTACT,
        "sender_jid": CONTACT_JID,
        "push_name": corpus.PUSH_NAME,
        "is_group": False,
        "is_from_me": False,
        "type": "text",
        "text": "hello",
        "media": None,
        "poll": None,
    }


async def test_a_delivery_receipt_is_a_receipt(start: Start) -> None:
    session = await start(["receipt"])
    seen = await session.channel.until(lambda seen: len(seen) == 2)
    assert [name for name, _ in seen] == [events.CONNECTED, events.RECEIPT]
    receipt = seen[1][1]
    assert is_iso_time(receipt.pop("timestamp"))
    assert receipt == {"chat": CONTACT_JID, "message_ids": RECEIPT_IDS, "status": "delivered"}


async def test_a_send_answers_whatsapps_id_and_time(start: Start) -> None:
    session = await start([])
    sent = await session.worker.request(protocol.SEND_TEXT, {"to": CONTACT, "text": "halo"})
    assert set(sent) == {"message_id", "timestamp"}
    assert sent["message_id"].startswith("3EB0") and len(sent["message_id"]) == 20  # WhatsApp Web's id shape
    assert is_iso_time(sent["timestamp"])
    again = await session.worker.request(protocol.SEND_TEXT, {"to": CONTACT, "text": "halo"})
    assert again["message_id"] != sent["message_id"]


async def test_a_logged_out_event_is_logged_out(start: Start) -> None:
    session = await start(["logged_out"])
    seen = await session.channel.until(lambda seen: len(seen) == 2)
    assert [name for name, _ in seen] == [events.CONNECTED, events.LOGGED_OUT]
    assert set(seen[1][1]) == {"reason"} and seen[1][1]["reason"]


async def test_a_drop_is_disconnected_then_connected_and_what_came_meanwhile_follows(start: Start) -> None:
    session = await start(["drop", "text"])
    seen = await session.channel.until(lambda seen: len(seen) == 4)
    assert [name for name, _ in seen] == [events.CONNECTED, events.DISCONNECTED, events.CONNECTED, events.MESSAGE]
    assert seen[1][1]["reason"] == "connection_lost" and set(seen[1][1]) == {"reason", "detail"}
    assert seen[2][1] == ACCOUNT
    assert seen[3][1]["message_id"] == corpus.MESSAGE_ID
