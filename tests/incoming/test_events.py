"""Every kind of incoming event through store_messages into real Postgres: its row, its webhook event and `data`,
once; status posts only when opted in; poll votes named from the stored poll; LID senders named from whatsmeow's map."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from app.db.database import Database
from app.incoming.store import IncomingOptions, store_messages
from app.whatsapp import backend as events

CHAT = "6281111111111@s.whatsapp.net"
GROUP = "120363000000001@g.us"
SENDER = "+6281111111111"
RAW = b"\x0a\x05hello"  # a serialized waE2E.Message: bytes the row keeps and no webhook body carries
WHEN = "2026-12-01T08:00:00+00:00"
OPTED_IN = IncomingOptions(status_posts=True)
DEFAULT = IncomingOptions()


def sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def common(message_id: str, chat: str = CHAT, **extra: Any) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "chat": chat,
        "from": SENDER,
        "sender_jid": "6281111111111@s.whatsapp.net",
        "push_name": "Budi",
        "timestamp": WHEN,
        "is_group": chat.endswith("@g.us"),
        "is_from_me": False,
        "raw": base64.b64encode(RAW).decode(),
        **extra,
    }


POLL = {"question": "Lunch?", "options": ["Nasi goreng", "Soto", "Sate"], "selectable_count": 1}


async def store(database: Database, *items: Any, options: IncomingOptions = DEFAULT) -> int:
    async with database.transaction() as connection:
        return await store_messages(connection, list(items), options)


async def stored_events(database: Database) -> list[tuple[str, str, dict[str, Any]]]:
    async with database.connection() as connection:
        rows = await connection.fetch("SELECT type, chat, data::text FROM outbox_events ORDER BY seq")
    return [(row["type"], row["chat"], json.loads(row["data"])) for row in rows]


async def stored_rows(database: Database) -> list[dict[str, Any]]:
    async with database.connection() as connection:
        rows = await connection.fetch("SELECT *, poll::text AS poll_text FROM incoming_messages ORDER BY id")
    return [dict(row) for row in rows]


async def test_every_event_type_is_stored_with_its_event_and_data(database: Database) -> None:
    media = {"mimetype": "image/jpeg", "size": 1234, "file_name": None, "media_key": "c2VjcmV0", "direct_path": "/x"}
    items = [
        (events.MESSAGE, common("M1", type="text", text="Halo", media=None)),
        (events.MESSAGE, common("P1", chat=GROUP, type="poll", text=None, media=None, poll=POLL)),
        (events.EDITED, common("E1", target_id="M1", text="Halo!")),
        (events.DELETED, common("D1", target_id="M1")),
        (events.REACTION, common("R1", target_id="M1", emoji="👍")),
        (events.POLL_VOTE, common("V1", chat=GROUP, target_id="P1", selected_hashes=[sha("Soto")], selected=None)),
        (events.UNDECRYPTABLE, {**common("U1"), "raw": None}),
        (
            events.CALL,
            {"call_id": "C1", "chat": CHAT, "from": SENDER, "sender_jid": CHAT, "timestamp": WHEN, "video": True},
        ),
        (events.STATUS_POST, common("S1", chat="status@broadcast", type="image", text="Sunset", media=media)),
    ]
    assert await store(database, *items, options=OPTED_IN) == 9

    got = await stored_events(database)
    assert [(kind, chat) for kind, chat, _ in got] == [
        ("message.received", CHAT),
        ("message.received", GROUP),
        ("message.edited", CHAT),
        ("message.deleted", CHAT),
        ("message.reaction", CHAT),
        ("message.poll_vote", GROUP),
        ("message.undecryptable", CHAT),
        ("call.received", CHAT),
        ("status.posted", "status@broadcast"),
    ]
    data = [item for _, _, item in got]
    who = {"from": SENDER, "sender_jid": "6281111111111@s.whatsapp.net"}
    assert data[0] == {
        "message_id": "M1", "chat": CHAT, **who, "push_name": "Budi", "timestamp": WHEN, "type": "text",
        "text": "Halo", "is_group": False, "is_from_me": False, "media": None, "poll": None,
    }  # fmt: skip
    assert data[1]["type"] == "poll" and data[1]["poll"] == POLL and data[1]["is_group"] is True
    assert data[2] == {
        "message_id": "E1", "target_id": "M1", "chat": CHAT, **who, "push_name": "Budi", "text": "Halo!",
        "timestamp": WHEN,
    }  # fmt: skip
    assert data[3] == {"message_id": "D1", "target_id": "M1", "chat": CHAT, **who, "timestamp": WHEN}
    assert data[4] == {"message_id": "R1", "target_id": "M1", "chat": CHAT, **who, "emoji": "👍", "timestamp": WHEN}
    assert data[5] == {
        "message_id": "V1", "target_id": "P1", "chat": GROUP, **who, "selected": ["Soto"],
        "selected_hashes": [sha("Soto")], "timestamp": WHEN,
    }  # fmt: skip
    assert data[6] == {"message_id": "U1", "chat": CHAT, **who, "timestamp": WHEN}
    assert data[7] == {
        "call_id": "C1", "from": SENDER, "sender_jid": CHAT, "timestamp": WHEN, "video": True, "rejected": False,
    }  # fmt: skip
    assert data[8] == {
        "message_id": "S1", "chat": "status@broadcast", **who, "push_name": "Budi", "type": "image",
        "text": "Sunset", "media": {"mimetype": "image/jpeg", "size": 1234, "file_name": None}, "timestamp": WHEN,
    }  # fmt: skip
    bodies = json.dumps(data)
    assert "raw" not in bodies and "media_key" not in bodies and "direct_path" not in bodies

    rows = {(row["message_id"], row["event_type"]): row for row in await stored_rows(database)}
    assert len(rows) == 9
    assert rows[("M1", "message.received")]["raw"] == RAW and rows[("M1", "message.received")]["text"] == "Halo"
    assert json.loads(rows[("P1", "message.received")]["poll_text"]) == POLL
    assert rows[("P1", "message.received")]["type"] == "poll"
    edit = rows[("E1", "message.edited")]
    assert (edit["target_id"], edit["type"], edit["text"]) == ("M1", "edit", "Halo!")
    assert (rows[("R1", "message.reaction")]["type"], rows[("R1", "message.reaction")]["text"]) == ("reaction", "👍")
    vote = rows[("V1", "message.poll_vote")]
    assert json.loads(vote["poll_text"]) == {"selected": ["Soto"], "selected_hashes": [sha("Soto")]}
    assert rows[("U1", "message.undecryptable")]["raw"] is None
    call = rows[("C1", "call.received")]
    assert (call["chat"], call["type"], call["sent_at"].isoformat()) == (CHAT, "video_call", WHEN)
    assert json.loads(rows[("S1", "status.posted")]["media"]) == {
        "mimetype": "image/jpeg",
        "size": 1234,
        "file_name": None,
    }


async def test_messages_typed_on_the_phone_are_message_from_me(database: Database) -> None:
    await store(database, (events.MESSAGE, common("F1", type="text", text="mine", is_from_me=True)))
    [(kind, _, data)] = await stored_events(database)
    assert kind == "message.from_me" and data["is_from_me"] is True


async def test_redelivery_makes_no_second_event(database: Database) -> None:
    batch = [
        (events.MESSAGE, common("M1", type="text", text="once")),
        (events.REACTION, common("R1", target_id="M1", emoji="❤")),
        (events.REACTION, common("R1", target_id="M1", emoji="❤")),  # twice within one batch
        (events.CALL, {"call_id": "C1", "chat": CHAT, "from": SENDER, "sender_jid": CHAT, "timestamp": WHEN}),
    ]
    assert await store(database, *batch) == 3
    assert await store(database, *batch) == 0  # WhatsApp redelivering all of it later
    assert [kind for kind, _, _ in await stored_events(database)] == [
        "message.received",
        "message.reaction",
        "call.received",
    ]
    assert len(await stored_rows(database)) == 3


async def test_an_undecryptable_message_and_its_resent_content_are_both_kept(database: Database) -> None:
    assert await store(database, (events.UNDECRYPTABLE, {**common("3EB0X"), "raw": None})) == 1
    assert await store(database, (events.MESSAGE, common("3EB0X", type="text", text="now readable"))) == 1
    assert await store(database, (events.MESSAGE, common("3EB0X", type="text", text="now readable"))) == 0
    got = await stored_events(database)
    assert [(kind, data["message_id"]) for kind, _, data in got] == [
        ("message.undecryptable", "3EB0X"),
        ("message.received", "3EB0X"),
    ]
    assert got[1][2]["text"] == "now readable"
    assert [row["event_type"] for row in await stored_rows(database)] == ["message.undecryptable", "message.received"]


async def test_an_edit_delete_or_reaction_is_never_also_a_message(database: Database) -> None:
    await store(
        database,
        (events.EDITED, common("E1", target_id="M0", text="fixed")),
        (events.DELETED, common("D1", target_id="M0")),
        (events.REACTION, common("R1", target_id="M0", emoji="")),  # a removed reaction
    )
    got = await stored_events(database)
    assert [kind for kind, _, _ in got] == ["message.edited", "message.deleted", "message.reaction"]
    assert got[2][2]["emoji"] == ""


async def test_status_posts_are_dropped_unless_opted_in(database: Database) -> None:
    post = (events.STATUS_POST, common("S1", chat="status@broadcast", type="text", text="Hari ini..."))
    assert await store(database, post) == 0
    assert await stored_events(database) == [] and await stored_rows(database) == []
    assert await store(database, post, options=OPTED_IN) == 1
    [(kind, chat, data)] = await stored_events(database)
    assert (kind, chat, data["text"]) == ("status.posted", "status@broadcast", "Hari ini...")


async def test_poll_votes_are_named_from_the_stored_poll(database: Database) -> None:
    await store(database, (events.MESSAGE, common("P1", chat=GROUP, type="poll", poll={**POLL, "selectable_count": 2})))
    unknown = "ab" * 32
    await store(
        database,
        # a later batch: resolved from the stored poll; an unknown hash stays null, in its place
        (
            events.POLL_VOTE,
            common("V1", chat=GROUP, target_id="P1", selected_hashes=[sha("Sate"), unknown, sha("Soto")]),
        ),
        # a poll of the same id in another chat is not this vote's poll
        (events.POLL_VOTE, common("V2", target_id="P1", selected_hashes=[sha("Sate")])),
        # a poll and its vote in the same batch
        (events.MESSAGE, common("P2", type="poll", poll={"question": "Q", "options": ["Ya", "Tidak"]})),
        (events.POLL_VOTE, common("V3", target_id="P2", selected_hashes=[sha("Tidak").upper()])),
        # the worker named the options itself: kept, hashes added
        (events.POLL_VOTE, common("V4", chat=GROUP, target_id="P1", selected=["Soto"], selected_hashes=None)),
        # a vote withdrawn
        (events.POLL_VOTE, common("V5", chat=GROUP, target_id="P1", selected_hashes=[])),
    )
    votes = {data["message_id"]: data for kind, _, data in await stored_events(database) if kind == "message.poll_vote"}
    assert votes["V1"]["selected"] == ["Sate", None, "Soto"]
    assert votes["V1"]["selected_hashes"] == [sha("Sate"), unknown, sha("Soto")]
    assert votes["V2"]["selected"] == [None]
    assert votes["V3"]["selected"] == ["Tidak"] and votes["V3"]["selected_hashes"] == [sha("Tidak")]
    assert votes["V4"]["selected"] == ["Soto"] and votes["V4"]["selected_hashes"] == [sha("Soto")]
    assert votes["V5"]["selected"] == [] and votes["V5"]["selected_hashes"] == []


LID_SENDER = "200000000000001@lid"
WHATSMEOW_LID_MAP = "CREATE TABLE whatsmeow_lid_map (lid TEXT PRIMARY KEY, pn TEXT UNIQUE NOT NULL)"  # whatsmeow's v8


def from_lid(message_id: str, sender_jid: str = LID_SENDER, **extra: Any) -> dict[str, Any]:
    return common(message_id, **{"from": None, "sender_jid": sender_jid, "type": "text", "text": "hi", **extra})


async def test_without_whatsmeows_lid_map_from_stays_null_and_the_transaction_goes_on(database: Database) -> None:
    async with database.transaction() as connection:
        assert await store_messages(connection, [(events.MESSAGE, from_lid("L1"))]) == 1
        # had the lookup failed, the transaction would be aborted and this second batch refused
        assert await store_messages(connection, [(events.REACTION, from_lid("L2", target_id="L1", emoji="👍"))]) == 1
    got = await stored_events(database)
    assert [(data["from"], data["sender_jid"]) for _, _, data in got] == [(None, LID_SENDER), (None, LID_SENDER)]


async def test_whatsmeows_lid_map_fills_from(database: Database) -> None:
    async with database.connection() as connection:
        await connection.execute(WHATSMEOW_LID_MAP)
        await connection.execute("INSERT INTO whatsmeow_lid_map VALUES ('200000000000001', '6282222222222')")
    await store(
        database,
        (events.MESSAGE, from_lid("L1")),
        (events.MESSAGE, from_lid("L2", sender_jid="200000000000001:7@lid")),  # a device part
        (events.MESSAGE, from_lid("L3", sender_jid="299999999999999@lid")),  # not in the map
        (events.MESSAGE, from_lid("L4", **{"from": "+6283333333333"})),  # SenderAlt already gave it: kept
        (events.CALL, {"call_id": "C1", "chat": LID_SENDER, "from": None, "sender_jid": LID_SENDER, "video": False}),
    )
    got = {data.get("message_id") or data["call_id"]: data["from"] for _, _, data in await stored_events(database)}
    assert got == {
        "L1": "+6282222222222",
        "L2": "+6282222222222",
        "L3": None,
        "L4": "+6283333333333",
        "C1": "+6282222222222",
    }
    senders = {row["message_id"]: row["sender"] for row in await stored_rows(database)}
    assert senders["L1"] == "+6282222222222" and senders["L3"] is None


@pytest.mark.parametrize(
    "item",
    [
        (events.MESSAGE, {"chat": CHAT, "text": "no id"}),
        (events.REACTION, {"message_id": "R9", "emoji": "👍"}),  # no chat
        (events.CALL, {"chat": CHAT}),  # no call id
        (events.RECEIPT, {"chat": CHAT, "message_ids": ["X"], "status": "read"}),  # not this function's
        ("hologram", common("H1")),
    ],
)
async def test_items_that_cannot_be_stored_are_skipped_not_fatal(database: Database, item: Any) -> None:
    assert await store(database, item, (events.MESSAGE, common("OK", type="text", text="ok"))) == 1
    assert [data["message_id"] for _, _, data in await stored_events(database)] == ["OK"]
