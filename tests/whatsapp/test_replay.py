"""The live path, offline: neonize's own protobuf events fed to the real worker (neonize backend, its handlers, its
mapping, its intake) through the replay backend, then the real supervisor, message store, dispatcher and a real
webhook receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from app.db.database import Database
from app.errors import WhatsAppError
from app.incoming import lookup
from app.incoming.media_retry import MediaRetrier
from app.incoming.store import IncomingOptions, MessageStore
from app.media import store as media_store
from app.phone import parse_recipient
from app.sending import queue
from app.sending.sender import Sender
from app.session.policy import Policy
from app.session.states import State
from app.session.supervisor import SessionError, Supervisor
from app.webhooks.dispatcher import Dispatcher
from app.whatsapp import protocol, samples
from app.whatsapp.media import NO_REUPLOAD
from app.whatsapp.protocol import WorkerSettings
from tests.session.conftest import wait_state, wait_trail
from tests.webhooks.conftest import FAST as DELIVERY
from tests.webhooks.conftest import SECRET, signed_correctly, use_endpoints
from tests.webhooks.receiver import Received, Receiver
from tests.whatsapp import corpus
from tests.whatsapp.corpus import EVENT_TO_INT, replay_line

QUICK = Policy(base_delay=0.2, min_delay=0.05, max_delay=1.0, replaced_delay=0.2, reconnect_grace=1.0)
ME = {"me": "15550001111:3@s.whatsapp.net", "push_name": "Toko Maju"}
LID_PHONE = "+6289876543210"


def line(event: Any, message_id: str | None = None) -> dict[str, Any]:
    if message_id is not None:
        event.Info.ID = message_id
    return replay_line(event)


def unencodable(event: Any) -> dict[str, Any]:
    """An event with a required field unset, as neonize leaves Receipt.Type for a receipt type it cannot map."""
    return {"event": EVENT_TO_INT[type(event)], "data": base64.b64encode(event.SerializePartialToString()).decode()}


@dataclasses.dataclass
class Gateway:
    database: Database
    database_url: str
    receiver: Receiver
    store: MessageStore
    directory: Path
    supervisors: list[Supervisor] = dataclasses.field(default_factory=list)

    @property
    def media_dir(self) -> Path:
        return self.directory / "media"

    @property
    def calls_file(self) -> Path:
        return self.directory / "calls.jsonl"

    def start(
        self,
        lines: list[dict[str, Any]],
        header: dict[str, Any] | None = None,
        reject_calls: bool = False,
        media_max_bytes: int = 16 * 1024 * 1024,
    ) -> Supervisor:
        path = self.directory / f"replay-{len(self.supervisors)}.jsonl"
        with path.open("w") as file:
            for item in [header if header is not None else ME, *lines]:
                file.write(json.dumps(item) + "\n")
        supervisor = Supervisor(
            database=self.database,
            worker=WorkerSettings(
                "replay",
                self.database_url,
                replay_file=str(path),
                replay_calls=str(self.calls_file),
                reject_calls=reject_calls,
                media_dir=str(self.media_dir),
                media_max_bytes=media_max_bytes,
            ),
            heartbeat_interval=30.0,
            incoming=self.store.take,
            policy=QUICK,
        )
        supervisor.start()
        self.supervisors.append(supervisor)
        return supervisor

    def calls(self) -> list[dict[str, Any]]:
        if not self.calls_file.exists():
            return []
        return [json.loads(text) for text in self.calls_file.read_text().splitlines()]

    async def until(self, done: Callable[[list[Received]], bool]) -> list[Received]:
        return await self.receiver.until(done, timeout=30)


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    database = await Database.open(database_url, max_size=10)
    receiver = Receiver().start()
    await use_endpoints(database, receiver.url)
    (tmp_path / "media").mkdir(mode=0o700)
    options = IncomingOptions(media_dir=str(tmp_path / "media"), media_retry_after=0.05)
    store = MessageStore(database, receipt_hook=queue.receipt_hook, options=options)
    store.start()
    dispatcher = Dispatcher(database, database_url, SECRET, policy=DELIVERY, poll_interval=1.0, timeout=5.0)
    dispatcher.start()
    gateway = Gateway(database, database_url, receiver, store, tmp_path)
    try:
        yield gateway
    finally:
        for supervisor in gateway.supervisors:
            await supervisor.stop()
        await store.close(5.0)
        await dispatcher.stop(5.0)
        receiver.close()
        await database.close()


def by_id(received: list[Received]) -> dict[tuple[str, str], dict[str, Any]]:
    """(event type, message_id or call_id) -> data of what the receiver got."""
    return {(item.type, str(item.data.get("message_id") or item.data.get("call_id"))): item.data for item in received}


async def test_every_kind_of_event_reaches_the_webhook_as_whatsapp_sent_it(gateway: Gateway) -> None:
    poll = corpus.poll_creation()
    poll.Info.ID = corpus.TARGET_ID  # the poll the vote below is about
    header = {
        **ME,
        "lid_map": {f"{corpus.LID.User}@lid": LID_PHONE.removeprefix("+") + "@s.whatsapp.net"},
        "poll_votes": {"VOTE1": ["Wednesday"]},
    }
    lines = [
        replay_line(corpus.connected()),
        line(corpus.text(), "TEXT1"),
        line(corpus.image(), "IMAGE1"),
        line(corpus.document_with_caption(), "DOC1"),
        line(corpus.view_once_image(), "VIEWONCE1"),
        line(corpus.ephemeral_text(), "EPHEMERAL1"),
        replay_line(poll),
        line(corpus.poll_update(), "VOTE1"),
        line(corpus.edit(), "EDIT1"),
        line(corpus.revoke(), "REVOKE1"),
        line(corpus.reaction(), "REACT1"),
        line(corpus.reaction_removed(), "REACT2"),
        line(corpus.status_post(), "STATUS1"),
        line(corpus.newsletter_post(), "NEWS1"),
        line(corpus.group_lid_with_alt(), "GROUPLID1"),
        line(corpus.lid_without_alt(), "LID1"),
        line(corpus.sender_key_only(), "KEYS1"),
        replay_line(corpus.own_device_read_receipt()),
        line(corpus.undecryptable(), "UNDECRYPTABLE1"),
        replay_line(corpus.call_offer_video()),
        line(corpus.text(), "LAST"),
    ]
    supervisor = gateway.start(lines, header)
    await wait_state(supervisor, State.CONNECTED)
    got = by_id(await gateway.until(lambda got: ("message.received", "LAST") in by_id(got)))
    assert all(signed_correctly(item) for item in gateway.receiver.received)

    assert got["message.received", "TEXT1"]["type"] == "text"
    image = got["message.received", "IMAGE1"]
    assert image["type"] == "image" and image["media"]["mimetype"] == "image/jpeg"
    assert "media_key" not in json.dumps(image) and "raw" not in image  # keys stay in Postgres, never in a webhook
    document = got["message.received", "DOC1"]
    assert document["type"] == "document" and document["text"]
    assert got["message.received", "VIEWONCE1"]["type"] == "image"
    assert got["message.received", "EPHEMERAL1"]["type"] == "text"
    assert got["message.received", corpus.TARGET_ID]["poll"]["options"] == list(corpus.POLL_OPTIONS)
    vote = got["message.poll_vote", "VOTE1"]
    assert vote["target_id"] == corpus.TARGET_ID and vote["selected"] == ["Wednesday"]
    edit = got["message.edited", "EDIT1"]
    assert edit["target_id"] == corpus.TARGET_ID and edit["text"]
    assert got["message.deleted", "REVOKE1"]["target_id"] == corpus.TARGET_ID
    assert got["message.reaction", "REACT1"]["emoji"] and got["message.reaction", "REACT2"]["emoji"] == ""
    assert got["message.received", "GROUPLID1"]["from"] == "+6281234567890"  # from SenderAlt
    assert got["message.received", "LID1"]["from"] == LID_PHONE  # from whatsmeow's LID map
    assert got["message.received", "LID1"]["sender_jid"].endswith("@lid")
    assert got["message.undecryptable", "UNDECRYPTABLE1"]["chat"].endswith("@g.us")
    call = next(data for (kind, _), data in got.items() if kind == "call.received")
    assert call["video"] is True and call["from"] == "+6281234567890"

    # An edit, delete or reaction is never also a message; status and newsletter posts need an opt-in; protocol
    # plumbing and the owner reading a chat on the phone are nothing for the receiver.
    ids = {message_id for (_, message_id) in got}
    for message_id in ("EDIT1", "REVOKE1", "REACT1", "REACT2", "VOTE1"):
        assert ("message.received", message_id) not in got
    assert not ids & {"STATUS1", "NEWS1", "KEYS1"}
    assert not any(kind == "message.status" for kind, _ in got)
    calls = gateway.calls()
    assert {"call": "get_pn_from_lid", "lid": f"{corpus.LID.User}@lid"} in calls
    assert {"call": "decrypt_poll_vote", "message_id": "VOTE1"} in calls


async def test_an_event_neonize_cannot_encode_ends_the_pump_and_the_worker_goes_at_once(gateway: Gateway) -> None:
    lines = [
        replay_line(corpus.connected()),
        line(corpus.text(), "BEFORE"),
        unencodable(corpus.receipt_without_type()),
        line(corpus.text(), "BEHIND"),  # Go acknowledged it, but it never reaches Python
    ]
    supervisor = gateway.start(lines)
    trail = await wait_trail(
        supervisor, gateway.database, lambda trail: [row[0] for row in trail].count("connected") >= 2
    )
    pump = next(index for index, row in enumerate(trail) if row[1] == "pump_ended")
    assert [row[0] for row in trail[pump - 1 : pump + 3]] == ["connected", "reconnecting", "connecting", "connected"]
    assert "neonize.Receipt.Type" in (trail[pump][2] or "")
    assert trail[pump + 1][3] - trail[pump][3] < dt.timedelta(seconds=1)  # a new worker at once, not after backoff
    got = await gateway.until(lambda got: any(item.data.get("message_id") == "BEFORE" for item in got))
    assert not any(item.data.get("message_id") == "BEHIND" for item in got)


async def test_a_ban_neonize_cannot_encode_still_waits_until_it_ends(gateway: Gateway) -> None:
    ban = corpus.temporary_ban()
    ban.ClearField("Code")  # whatsmeow's code 105: neonize maps only 101-104 and 106
    lines = [
        replay_line(corpus.connected()),
        {"log": "You've been temporarily banned: your account was banned for sending spam. The ban expires in 2h0m0s"},
        unencodable(ban),
    ]
    supervisor = gateway.start(lines)
    await wait_state(supervisor, State.BANNED)
    assert supervisor.retry_at is not None
    hours = (supervisor.retry_at - supervisor.since) / dt.timedelta(hours=1)
    assert 1.95 < hours < 2.1
    assert "spam" in (supervisor.detail or "")


async def test_a_409_stops_the_session_with_a_reason_an_operator_understands(gateway: Gateway) -> None:
    supervisor = gateway.start([replay_line(corpus.connect_failure_409())], header={})
    await wait_state(supervisor, State.STOPPED)
    assert supervisor.reason == "bad_user_agent"
    assert "409" in (supervisor.detail or "") and supervisor.worker is None


@pytest.mark.parametrize(
    ("status", "state", "reason", "words"),
    [
        ("err-client-outdated", State.STOPPED, "outdated", "upgrade"),
        ("err-scanned-without-multidevice", State.LOGGED_OUT, "pairing_failed", "phone"),
    ],
)
async def test_pairing_errors_say_what_happened_at_once(
    gateway: Gateway, status: str, state: State, reason: str, words: str
) -> None:
    supervisor = gateway.start([{"qr": "2@ref,noise,identity,adv"}, {"sleep": 0.3}, {"login_status": status}], {})
    await wait_state(supervisor, State.PAIRING)
    await wait_state(supervisor, state, timeout=10)  # not 75 s later as an unscanned round
    assert supervisor.reason == reason
    assert words in (supervisor.detail or "").lower()
    assert supervisor.worker is None  # neonize would stay in FetchMe: the worker is gone


async def test_sends_to_groups_and_lids_and_a_permanent_group_error(gateway: Gateway) -> None:
    header = {**ME, "send_errors": ["you're not participating in that group"]}
    supervisor = gateway.start([replay_line(corpus.connected())], header)
    await wait_state(supervisor, State.CONNECTED)
    group = f"{corpus.GROUP.User}@g.us"
    with pytest.raises(WhatsAppError) as raised:
        await supervisor.send_text(group, "halo")
    assert raised.value.permanent
    sent = await supervisor.send_text(f"{corpus.LID.User}@lid", "halo")
    assert sent["message_id"].startswith("3EB0")
    sends = [call for call in gateway.calls() if call["call"] == "send_message"]
    assert [call["to"] for call in sends] == [group, f"{corpus.LID.User}@lid"]


async def test_read_receipts_go_to_neonizes_mark_read_with_its_own_types(gateway: Gateway) -> None:
    header = {**ME, "call_errors": {"mark_read": ["info query returned status 403: forbidden"]}}
    supervisor = gateway.start([replay_line(corpus.connected())], header)
    await wait_state(supervisor, State.CONNECTED)
    group = f"{corpus.GROUP.User}@g.us"
    member = "6281234567890@s.whatsapp.net"
    with pytest.raises(SessionError) as refused:  # the first call fails as the header says, for good
        await supervisor.command(protocol.MARK_READ, {"chat": group, "sender": member, "message_ids": ["A1"]})
    assert refused.value.status == 422 and "403" in str(refused.value)
    answer = await supervisor.command(
        protocol.MARK_READ, {"chat": group, "sender": member, "message_ids": ["A1", "A2"]}
    )
    assert answer == {"chat": group, "message_ids": ["A1", "A2"]}
    marks = [call for call in gateway.calls() if call["call"] == "mark_read"]
    expected = {"call": "mark_read", "message_ids": ["A1", "A2"], "chat": group, "sender": member, "receipt": "READ"}
    assert marks[-1] == expected and len(marks) == 2


async def test_presence_goes_to_neonizes_send_chat_presence_with_its_enums(gateway: Gateway) -> None:
    supervisor = gateway.start([replay_line(corpus.connected())])
    await wait_state(supervisor, State.CONNECTED)
    contact = "6281234567890@s.whatsapp.net"
    for state in ("typing", "recording", "paused"):
        await supervisor.send_presence(contact, state)
    calls = [call for call in gateway.calls() if call["call"] == "send_chat_presence"]
    assert [(call["jid"], call["state"], call["media"]) for call in calls] == [
        (contact, "CHAT_PRESENCE_COMPOSING", "CHAT_PRESENCE_MEDIA_TEXT"),
        (contact, "CHAT_PRESENCE_COMPOSING", "CHAT_PRESENCE_MEDIA_AUDIO"),
        (contact, "CHAT_PRESENCE_PAUSED", "CHAT_PRESENCE_MEDIA_TEXT"),
    ]


async def test_number_checks_go_to_neonizes_is_on_whatsapp(gateway: Gateway) -> None:
    header = {
        **ME,
        "on_whatsapp": {"+6281234567890": "6281234567890@s.whatsapp.net"},
        "call_errors": {"is_on_whatsapp": ["info query returned status 429: rate-overlimit"]},
    }
    supervisor = gateway.start([replay_line(corpus.connected())], header)
    await wait_state(supervisor, State.CONNECTED)
    phones = ["+6281234567890", "+6289999999999"]
    with pytest.raises(SessionError) as limited:
        await supervisor.command(protocol.CHECK_NUMBERS, {"phones": phones})
    assert limited.value.status == 429
    answer = await supervisor.command(protocol.CHECK_NUMBERS, {"phones": phones})
    assert answer["results"] == [
        {"phone": "+6281234567890", "on_whatsapp": True, "jid": "6281234567890@s.whatsapp.net"},
        {"phone": "+6289999999999", "on_whatsapp": False, "jid": None},
    ]
    calls = [call for call in gateway.calls() if call["call"] == "is_on_whatsapp"]
    assert calls == [{"call": "is_on_whatsapp", "numbers": phones}] * 2  # whatsmeow's form: '+' and digits


async def test_reactions_edits_and_revokes_are_neonizes_own_messages(gateway: Gateway) -> None:
    supervisor = gateway.start([replay_line(corpus.connected())])
    await wait_state(supervisor, State.CONNECTED)
    contact = "6281234567890@s.whatsapp.net"
    group = f"{corpus.GROUP.User}@g.us"
    member = "6289876543210@s.whatsapp.net"
    actions: list[tuple[str, dict[str, Any]]] = [
        (protocol.SEND_REACTION, {"chat": contact, "target_id": "OURS1", "sender": None, "emoji": "👍"}),
        (protocol.SEND_REACTION, {"chat": group, "target_id": "THEIRS1", "sender": member, "emoji": ""}),
        (protocol.EDIT_MESSAGE, {"chat": contact, "target_id": "OURS1", "text": "fixed"}),
        (protocol.REVOKE_MESSAGE, {"chat": contact, "target_id": "OURS1", "sender": None}),
    ]
    for name, args in actions:
        assert (await supervisor.send_action(name, args))["message_id"].startswith("3EB0")
    sends = [call for call in gateway.calls() if call["call"] == "send_message"]
    assert [call.get("reaction") or call.get("protocol") for call in sends] == [
        {"text": "👍", "id": "OURS1", "chat": contact, "from_me": True, "participant": None},
        {"text": "", "id": "THEIRS1", "chat": group, "from_me": False, "participant": member},
        {"type": "MESSAGE_EDIT", "text": "fixed", "id": "OURS1", "chat": contact, "from_me": True, "participant": None},
        {"type": "REVOKE", "text": None, "id": "OURS1", "chat": contact, "from_me": True, "participant": None},
    ]
    assert [call["to"] for call in sends] == [contact, group, contact, contact]
    reactions = [call for call in gateway.calls() if call["call"] == "build_reaction"]
    assert reactions[0]["sender"] == "15550001111@s.whatsapp.net"  # our own JID, without the device


async def test_groups_come_from_neonizes_group_info(gateway: Gateway) -> None:
    group = f"{corpus.GROUP.User}@g.us"
    header = {
        **ME,
        "groups": [
            {
                "jid": group,
                "name": "Toko Maju staff",
                "created": 1700000000,
                "participants": [
                    {"jid": "15550001111@s.whatsapp.net", "admin": True},
                    {"jid": "123456789012345@lid", "phone": "+6281234567890"},
                ],
            }
        ],
    }
    supervisor = gateway.start([replay_line(corpus.connected())], header)
    await wait_state(supervisor, State.CONNECTED)
    [listed] = (await supervisor.command(protocol.JOINED_GROUPS, {}))["groups"]
    assert (listed["jid"], listed["name"], listed["participant_count"]) == (group, "Toko Maju staff", 2)
    assert listed["created_at"].startswith("2023-11-14T22:13:20")
    one = await supervisor.command(protocol.GROUP_INFO, {"jid": group})
    assert [(m["jid"], m["phone"], m["is_admin"]) for m in one["participants"]] == [
        ("15550001111@s.whatsapp.net", "+15550001111", True),
        ("123456789012345@lid", "+6281234567890", False),  # a LID member: the phone from whatsmeow's PhoneNumber
    ]
    with pytest.raises(SessionError) as refused:
        await supervisor.command(protocol.GROUP_INFO, {"jid": "120363029999999999@g.us"})
    assert refused.value.status == 422 and "not participating" in str(refused.value)
    calls = [call for call in gateway.calls() if call["call"].startswith("get_")]
    assert calls[-1] == {"call": "get_group_info", "jid": "120363029999999999@g.us"}


async def test_mentions_go_as_whatsapps_mentioned_jids(gateway: Gateway) -> None:
    supervisor = gateway.start([replay_line(corpus.connected())])
    await wait_state(supervisor, State.CONNECTED)
    group = f"{corpus.GROUP.User}@g.us"
    member = "6289876543210@s.whatsapp.net"
    await supervisor.send_text(group, "@6289876543210 halo", mentions=[member])
    await supervisor.send_text(group, "@6289876543210 no mention")
    sends = [call for call in gateway.calls() if call["call"] == "send_message"]
    assert [(call["text"], call["mentions"]) for call in sends] == [
        ("@6289876543210 halo", [member]),  # an extendedTextMessage with contextInfo.mentionedJID
        ("@6289876543210 no mention", None),  # a plain conversation: nobody mentioned
    ]


async def test_reject_calls_declines_through_neonizes_reject_call(gateway: Gateway) -> None:
    voice = corpus.call_offer_voice()
    voice.basicCallMeta.callID = "CALLVOICE"
    header = {**ME, "call_errors": {"reject_call": ["rejecting call: server returned error 500"]}}
    lines = [replay_line(corpus.connected()), replay_line(voice), replay_line(corpus.call_offer_video())]
    supervisor = gateway.start(lines, header, reject_calls=True)
    await wait_state(supervisor, State.CONNECTED)
    got = await gateway.until(lambda got: len([item for item in got if item.type == "call.received"]) == 2)
    calls = {item.data["call_id"]: item.data for item in got if item.type == "call.received"}
    assert calls["CALLVOICE"]["rejected"] is False  # neonize raised: the call rings on, and the event says so
    assert calls["CALL0123456789ABCDEF"]["rejected"] is True
    declined = [call for call in gateway.calls() if call["call"] == "reject_call"]
    assert declined == [
        {"call": "reject_call", "call_from": f"{corpus.LID.User}@lid", "call_id": "CALLVOICE"},  # the creator as sent
        {"call": "reject_call", "call_from": "6281234567890@s.whatsapp.net", "call_id": "CALL0123456789ABCDEF"},
    ]


def with_media(event: Any, field: str, direct_path: str, data: bytes | None = None, size: int | None = None) -> Any:
    """A corpus media message whose CDN path and SHA-256 (of `data`) name a file of the replay's `downloads`."""
    body = getattr(corpus.unwrap_content(event.Message), field)
    body.directPath = direct_path
    if data is not None:
        body.fileSHA256 = hashlib.sha256(data).digest()
        body.fileLength = len(data)
    if size is not None:
        body.fileLength = size
    return event


async def test_media_is_downloaded_with_neonizes_download_any_and_checked(gateway: Gateway) -> None:
    png, pdf = samples.png(), samples.pdf()
    (gateway.directory / "cat.png").write_bytes(png)
    (gateway.directory / "tampered.pdf").write_bytes(pdf + b"tampered")
    header = {
        **ME,
        "downloads": {"/ok": str(gateway.directory / "cat.png"), "/bad": str(gateway.directory / "tampered.pdf")},
    }
    lines = [
        replay_line(corpus.connected()),
        line(with_media(corpus.image(), "imageMessage", "/ok", png), "IMG_OK"),
        line(with_media(corpus.document_with_caption(), "documentMessage", "/bad", pdf), "DOC_BAD"),
        line(with_media(corpus.voice_note(), "audioMessage", "/gone", size=3000), "VOICE_GONE"),
        line(with_media(corpus.video(), "videoMessage", "/big", size=5000), "VIDEO_BIG"),
        line(corpus.text(), "LAST"),
    ]
    supervisor = gateway.start(lines, header, media_max_bytes=4000)
    await wait_state(supervisor, State.CONNECTED)
    got = by_id(await gateway.until(lambda got: ("message.received", "LAST") in by_id(got)))
    image = got["message.received", "IMG_OK"]["media"]
    assert image["sha256"] == hashlib.sha256(png).hexdigest() and image["size"] == len(png)
    async with gateway.database.connection() as connection:
        assert await media_store.content(connection, uuid.UUID(image["id"])) == png
        assert await connection.fetchval("SELECT count(*) FROM media") == 1
    document = got["message.received", "DOC_BAD"]
    assert document["text"] == "the report" and document["media"]["error"].startswith("sha256 mismatch")
    voice = got["message.received", "VOICE_GONE"]["media"]
    assert voice["error"] == (
        "expired: the file is no longer on WhatsApp's servers (download failed with status code 404); " + NO_REUPLOAD
    )
    assert "id" not in voice
    video = got["message.received", "VIDEO_BIG"]["media"]
    assert "over MEDIA_MAX_BYTES (4000 bytes)" in video["error"]
    downloads = [call["direct_path"] for call in gateway.calls() if call["call"] == "download_any"]
    assert downloads == ["/ok", "/bad", "/gone"]  # the video was too large to ask for
    assert list(gateway.media_dir.iterdir()) == []


async def test_a_transient_download_failure_is_retried_and_announced_as_media_ready(gateway: Gateway) -> None:
    png = samples.png()
    (gateway.directory / "receipt.png").write_bytes(png)
    header = {
        **ME,
        "downloads": {"/flaky": str(gateway.directory / "receipt.png")},
        # whatsmeow's words for a CDN that timed out, then one that failed: both worth another try
        "call_errors": {
            "download_any": [
                "failed to download media from last host: context deadline exceeded",
                "download failed with status code 502",
            ]
        },
    }
    lines = [
        replay_line(corpus.connected()),
        line(with_media(corpus.image(), "imageMessage", "/flaky", png), "IMG_FLAKY"),
        line(corpus.text(), "LAST"),
    ]
    supervisor = gateway.start(lines, header)
    await wait_state(supervisor, State.CONNECTED)
    got = by_id(await gateway.until(lambda got: ("message.received", "LAST") in by_id(got)))
    first = got["message.received", "IMG_FLAKY"]["media"]
    assert first["error"].endswith("context deadline exceeded; it is tried again later") and "id" not in first

    async def download(args: dict[str, Any]) -> dict[str, Any]:
        return await supervisor.command(protocol.DOWNLOAD_MEDIA, args)

    retrier = MediaRetrier(gateway.database, download, gateway.store.options, poll=0.2)
    retrier.start()  # the loop of the web process, as the app runs it
    try:
        got = by_id(await gateway.until(lambda got: ("message.media_ready", "IMG_FLAKY") in by_id(got)))
    finally:
        await retrier.stop()
    ready = got["message.media_ready", "IMG_FLAKY"]
    assert ready["chat"] == got["message.received", "IMG_FLAKY"]["chat"]
    assert ready["media"]["sha256"] == hashlib.sha256(png).hexdigest() and ready["media"]["size"] == len(png)
    assert ready["media"]["mimetype"] == first["mimetype"] and retrier.ready == 1
    async with gateway.database.connection() as connection:
        assert await media_store.content(connection, uuid.UUID(ready["media"]["id"])) == png
        assert await connection.fetchval("SELECT count(*) FROM media_downloads") == 0
    downloads = [call["direct_path"] for call in gateway.calls() if call["call"] == "download_any"]
    assert downloads == ["/flaky", "/flaky", "/flaky"]  # on arrival, the 502, then the file
    assert list(gateway.media_dir.iterdir()) == []


def sent_messages(gateway: Gateway) -> list[Any]:
    """Every message the backend gave neonize's send_message, decoded with neonize's own class."""
    decode = corpus.E2E.Message.FromString
    return [decode(base64.b64decode(call["message"])) for call in gateway.calls() if call["call"] == "send_message"]


def hand_over(gateway: Gateway, data: bytes) -> str:
    """A file to send, where the web process puts it: directly in the worker's media folder."""
    gateway.media_dir.mkdir(mode=0o700, exist_ok=True)
    path = gateway.media_dir / f"{uuid.uuid4().hex}.send"
    path.write_bytes(data)
    return str(path)


async def test_every_kind_is_uploaded_and_sent_as_neonizes_own_message(gateway: Gateway) -> None:
    supervisor = gateway.start([replay_line(corpus.connected())])
    await wait_state(supervisor, State.CONNECTED)
    contact = "6281234567890@s.whatsapp.net"
    files = {kind: samples.sample(kind) for kind in ("image", "video", "audio", "document", "sticker")}
    contents: list[dict[str, Any]] = [
        {"type": "image", "mimetype": "image/png", "caption": "Your receipt"},
        {"type": "video", "mimetype": "video/mp4", "caption": "How to"},
        {"type": "audio", "mimetype": "audio/ogg", "ptt": True},
        {"type": "document", "mimetype": "application/pdf", "file_name": "invoice-1234.pdf", "caption": "Invoice"},
        {"type": "sticker", "mimetype": "image/webp"},
        {"type": "location", "latitude": -6.2, "longitude": 106.816666, "name": "Toko Maju", "address": "Jl. 1"},
        {"type": "contact", "name": "Budi", "vcard": "BEGIN:VCARD\nVERSION:3.0\nFN:Budi\nEND:VCARD"},
    ]
    for content in contents:
        found = files.get(content["type"])
        args = {"to": contact, "content": content, "reply": None}
        if found is not None:
            args["file"] = hand_over(gateway, found[0])
        assert (await supervisor.send_action(protocol.SEND_MESSAGE, args))["message_id"].startswith("3EB0")
    uploads = [call for call in gateway.calls() if call["call"] == "upload"]
    assert [call["media_type"] for call in uploads] == [
        "MediaImage", "MediaVideo", "MediaAudio", "MediaDocument", "MediaImage",  # whatsmeow's types; a sticker: image
    ]  # fmt: skip
    for call, kind in zip(uploads, ("image", "video", "audio", "document", "sticker"), strict=True):
        data = files[kind]
        assert data is not None and call["sha256"] == hashlib.sha256(data[0]).hexdigest()  # the file, whole
        assert call["length"] == len(data[0])
    image, video, audio, document, sticker, location, contact_card = sent_messages(gateway)

    def uploaded(body: Any, index: int) -> None:
        data = list(files.values())[index]
        assert data is not None
        assert body.fileSHA256 == hashlib.sha256(data[0]).digest() and body.fileLength == len(data[0])
        assert body.directPath == uploads[index]["direct_path"] and body.URL.endswith(body.directPath)
        assert len(body.mediaKey) == 32 and len(body.fileEncSHA256) == 32

    assert image.HasField("imageMessage")
    uploaded(image.imageMessage, 0)
    assert (image.imageMessage.mimetype, image.imageMessage.caption) == ("image/png", "Your receipt")
    assert (image.imageMessage.width, image.imageMessage.height) == (16, 16)
    assert image.imageMessage.JPEGThumbnail.startswith(b"\xff\xd8")  # a JPEG preview, made with Pillow
    uploaded(video.videoMessage, 1)
    assert (video.videoMessage.mimetype, video.videoMessage.caption) == ("video/mp4", "How to")
    uploaded(audio.audioMessage, 2)
    assert audio.audioMessage.PTT and audio.audioMessage.seconds == 1  # the sample is one second of Ogg Opus
    assert audio.audioMessage.mimetype == "audio/ogg; codecs=opus"
    uploaded(document.documentMessage, 3)
    assert (document.documentMessage.fileName, document.documentMessage.title) == ("invoice-1234.pdf",) * 2
    assert (document.documentMessage.mimetype, document.documentMessage.caption) == ("application/pdf", "Invoice")
    uploaded(sticker.stickerMessage, 4)
    assert (sticker.stickerMessage.mimetype, sticker.stickerMessage.isAnimated) == ("image/webp", False)
    place = location.locationMessage
    assert (place.degreesLatitude, place.degreesLongitude, place.name, place.address) == (
        -6.2, 106.816666, "Toko Maju", "Jl. 1",
    )  # fmt: skip
    assert (contact_card.contactMessage.displayName, contact_card.contactMessage.vcard) == (
        "Budi", "BEGIN:VCARD\nVERSION:3.0\nFN:Budi\nEND:VCARD",
    )  # fmt: skip
    assert not any(message.ListFields()[0][1].HasField("contextInfo") for message in sent_messages(gateway))

    gone = {"to": contact, "content": contents[0], "reply": None, "file": str(gateway.media_dir / "gone.send")}
    with pytest.raises(WhatsAppError, match="not in the media folder"):
        await supervisor.send_action(protocol.SEND_MESSAGE, gone)
    outside = gateway.directory / "outside.send"
    outside.write_bytes(b"secret")
    with pytest.raises(WhatsAppError, match="not in the media folder"):  # the worker reads only its folder
        await supervisor.send_action(protocol.SEND_MESSAGE, {**gone, "file": str(outside)})
    assert len(sent_messages(gateway)) == 7


async def test_a_reply_quotes_the_stored_message_with_its_sender(gateway: Gateway) -> None:
    group = f"{corpus.GROUP.User}@g.us"
    member = "6289876543210@s.whatsapp.net"
    question = corpus.message_event(
        corpus.E2E.Message(conversation="Do you have it in blue?"),
        corpus.source(corpus.GROUP, corpus.jid("6289876543210"), is_group=True),
    )
    supervisor = gateway.start([replay_line(corpus.connected()), line(question, "ASK1")])
    await wait_state(supervisor, State.CONNECTED)
    await gateway.until(lambda got: ("message.received", "ASK1") in by_id(got))
    async with gateway.database.connection() as connection:
        stored = await lookup.quoted(connection, group, "ASK1")
    assert stored is not None and stored["raw"] is not None and stored["sender_jid"] == member
    sender = Sender(gateway.database, supervisor, per_minute=600, min_interval=0.0, media_dir=str(gateway.media_dir))
    sender.start()
    try:
        data, mimetype, _ = samples.sample("image") or (b"", "", None)
        async with gateway.database.transaction() as connection:
            media_id = await media_store.save(
                connection, chat=group, message_id="IMG1", mimetype=mimetype,
                sha256=hashlib.sha256(data).hexdigest(), file_name=None, data=data,
            )  # fmt: skip
            reply = queue.Reply("ASK1", stored["sender_jid"], stored["raw"])
            image = await queue.enqueue(
                connection, parse_recipient(group), "", None, kind="image",
                content={"media_id": str(media_id), "mimetype": mimetype, "caption": "This one"}, reply=reply,
            )  # fmt: skip
            own = queue.Reply("OURS1", None, None)
            text = await queue.enqueue(
                connection, parse_recipient(group), "@6289876543210 yes", None,
                mentions=[member], reply=own,
            )  # fmt: skip
        sender.wake()
        for message in (image.message, text.message):
            await wait_sent(gateway.database, uuid.UUID(message["id"]))
    finally:
        await sender.stop()
    quoting, answering = sent_messages(gateway)
    context = quoting.imageMessage.contextInfo
    assert (context.stanzaID, context.participant) == ("ASK1", member)
    assert context.quotedMessage.conversation == "Do you have it in blue?"  # the message as it was stored
    assert quoting.imageMessage.caption == "This one"
    context = answering.extendedTextMessage.contextInfo
    assert (context.stanzaID, context.participant) == ("OURS1", "15550001111@s.whatsapp.net")  # ours: no device
    assert not context.HasField("quotedMessage") and list(context.mentionedJID) == [member]
    assert answering.extendedTextMessage.text == "@6289876543210 yes"
    assert [name for name in os.listdir(gateway.media_dir) if name.endswith(".send")] == []


async def wait_sent(database: Database, message_id: uuid.UUID) -> None:
    """Until the sender recorded the message sent (it works in its own task; the row is the signal)."""
    deadline = time.monotonic() + 20
    while True:
        async with database.connection() as connection:
            row = await queue.get(connection, message_id)
        assert row is not None and row["status"] not in ("failed", "cancelled"), row
        if row["status"] == "sent":
            return
        assert time.monotonic() < deadline, row
        await asyncio.sleep(0.02)
