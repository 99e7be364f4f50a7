"""NeonizeBackend: event mapping on real neonize protobuf objects, and real connection attempts against Postgres.

A neonize client never runs in the pytest process (Go panics kill it, stop() may block): connection attempts run
in tests/whatsapp/neonize_probe.py, a process of their own, like the worker. They never reach WhatsApp, with or
without internet: the probe dials through a proxy on 127.0.0.1 that refuses (tests/whatsapp_stand_in.py), so each
attempt ends in a dial failure after whatsmeow has set up its store, and each test checks that the dial went there.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from app.whatsapp.backend import BANNED, DISCONNECTED, LOGGED_OUT, MESSAGE, OUTDATED, STOPPED, BackendError
from app.whatsapp.intake import Intake
from app.whatsapp.neonize_backend import NeonizeBackend, load_neonize
from app.whatsapp.neonize_mapping import (
    BAD_USER_AGENT_DETAIL,
    CONNECT_FAILURES,
    RECEIPT_STATUSES,
    TEMP_BAN_CODES,
    command_error,
    connect_failure_to_event,
    incoming_message,
    jid_to_str,
    logged_out_to_dict,
    receipt_to_dict,
    recipient,
    temporary_ban_to_dict,
)
from app.whatsapp.neonize_outgoing import text_message
from tests.whatsapp.corpus import EXTRACT_TEXT
from tests.whatsapp_stand_in import WHATSAPP_CONNECT, RefusingProxy

REPO_ROOT = Path(__file__).resolve().parents[2]
NZ = load_neonize()
PB = NZ.proto  # neonize's Neonize_pb2
E2E = NZ.e2e  # WhatsApp's message protobufs (waE2E)

TS_MS = 1_763_000_000_123  # Info.Timestamp of a Message event is in milliseconds
TS_ISO = "2025-11-13T02:13:20.123+00:00"


def jid(user: str, server: str = "s.whatsapp.net", device: int = 0) -> Any:
    return PB.JID(User=user, Server=server, Device=device, RawAgent=0, Integrator=0, IsEmpty=False)


PHONE = jid("6281234567890")
LID = jid("123456789012345", "lid")
GROUP = jid("120363041234567890", "g.us")


def message_event(
    content: Any,
    *,
    sender: Any = PHONE,
    chat: Any = None,
    sender_alt: Any = None,
    is_group: bool = False,
    from_me: bool = False,
) -> Any:
    source = PB.MessageSource(Chat=chat or sender, Sender=sender, IsFromMe=from_me, IsGroup=is_group)
    if sender_alt is not None:
        source.SenderAlt.CopyFrom(sender_alt)
    info = PB.MessageInfo(MessageSource=source, ID="3EB0C431D5E4A1B2", Pushname="Ana", Timestamp=TS_MS)
    return PB.Message(Info=info, Message=content)


def message_data(event: Any) -> dict[str, Any]:
    """What a Message event with real content becomes: a MESSAGE item's data."""
    item = incoming_message(event)
    assert item is not None and item[0] == MESSAGE
    return item[1]


# -- messages ---------------------------------------------------------------------------------------------------------


def test_outgoing_text_mentions_nobody() -> None:
    message = text_message(E2E, "call @6281234567890 or email a@b.c")
    assert message.conversation == "call @6281234567890 or email a@b.c"
    assert not message.HasField("extendedTextMessage")  # where neonize would put automatic mentions
    assert [field.name for field, _ in message.ListFields()] == ["conversation"]


def test_plain_text_message() -> None:
    data = message_data(message_event(E2E.Message(conversation="hello")))
    assert E2E.Message.FromString(base64.b64decode(data.pop("raw"))).conversation == "hello"  # the whole message
    assert data == {
        "message_id": "3EB0C431D5E4A1B2",
        "chat": "6281234567890@s.whatsapp.net",
        "from": "+6281234567890",
        "sender_jid": "6281234567890@s.whatsapp.net",
        "push_name": "Ana",
        "timestamp": TS_ISO,
        "is_group": False,
        "is_from_me": False,
        "type": "text",
        "text": "hello",
        "media": None,
        "poll": None,
    }


def test_extended_text_message() -> None:
    content = E2E.Message(extendedTextMessage=E2E.ExtendedTextMessage(text="see https://example.com"))
    data = message_data(message_event(content))
    assert (data["type"], data["text"], data["media"]) == ("text", "see https://example.com", None)


def test_image_with_caption() -> None:
    image = E2E.ImageMessage(caption="a cat", mimetype="image/jpeg", fileLength=48213)
    data = message_data(message_event(E2E.Message(imageMessage=image)))
    assert data["type"] == "image"
    assert data["text"] == "a cat"
    assert data["media"] == {"mimetype": "image/jpeg", "size": 48213, "file_name": None}


def test_document_has_file_name_and_no_text() -> None:
    document = E2E.DocumentMessage(fileName="invoice.pdf", mimetype="application/pdf", fileLength=1024)
    data = message_data(message_event(E2E.Message(documentMessage=document)))
    assert data["type"] == "document"
    assert data["text"] is None
    assert data["media"] == {"mimetype": "application/pdf", "size": 1024, "file_name": "invoice.pdf"}


def test_document_with_caption_container_is_unwrapped() -> None:
    inner = E2E.Message(documentMessage=E2E.DocumentMessage(fileName="a.pdf", caption="the report"))
    content = E2E.Message(documentWithCaptionMessage=E2E.FutureProofMessage(message=inner))
    data = message_data(message_event(content))
    assert (data["type"], data["text"], data["media"]["file_name"]) == ("document", "the report", "a.pdf")


def test_ephemeral_text_is_unwrapped() -> None:
    content = E2E.Message(ephemeralMessage=E2E.FutureProofMessage(message=E2E.Message(conversation="psst")))
    data = message_data(message_event(content))
    assert (data["type"], data["text"]) == ("text", "psst")


@pytest.mark.parametrize(
    ("content", "kind", "media"),
    [
        (E2E.Message(stickerMessage=E2E.StickerMessage(mimetype="image/webp", fileLength=9000)), "sticker", True),
        (E2E.Message(audioMessage=E2E.AudioMessage(mimetype="audio/ogg; codecs=opus", PTT=True)), "audio", True),
        (E2E.Message(videoMessage=E2E.VideoMessage(mimetype="video/mp4")), "video", True),
        (E2E.Message(locationMessage=E2E.LocationMessage(degreesLatitude=-6.2)), "location", False),
        (E2E.Message(contactMessage=E2E.ContactMessage(displayName="Budi")), "contact", False),
    ],
)
def test_message_types(content: Any, kind: str, media: bool) -> None:
    data = message_data(message_event(content))
    assert data["type"] == kind
    assert data["text"] is None
    assert (data["media"] is not None) is media


def test_sticker_and_audio_media_fields() -> None:
    sticker = message_data(message_event(E2E.Message(stickerMessage=E2E.StickerMessage(mimetype="image/webp"))))
    assert sticker["media"] == {"mimetype": "image/webp", "size": None, "file_name": None}
    audio = E2E.AudioMessage(mimetype="audio/ogg; codecs=opus", fileLength=5120, PTT=True)
    assert message_data(message_event(E2E.Message(audioMessage=audio)))["media"] == {
        "mimetype": "audio/ogg; codecs=opus",
        "size": 5120,
        "file_name": None,
    }


@pytest.mark.parametrize(
    "content",
    [
        E2E.Message(conversation="plain"),
        E2E.Message(extendedTextMessage=E2E.ExtendedTextMessage(text="extended")),
        E2E.Message(imageMessage=E2E.ImageMessage(caption="image caption")),
        E2E.Message(videoMessage=E2E.VideoMessage(caption="video caption")),
        E2E.Message(documentMessage=E2E.DocumentMessage(caption="document caption")),
        E2E.Message(imageMessage=E2E.ImageMessage(mimetype="image/png")),
    ],
)
def test_text_agrees_with_neonize_extract_text(content: Any) -> None:
    assert message_data(message_event(content))["text"] == (EXTRACT_TEXT(content) or None)


def test_lid_sender_takes_the_phone_from_sender_alt() -> None:
    data = message_data(message_event(E2E.Message(conversation="hi"), sender=LID, sender_alt=PHONE))
    assert data["from"] == "+6281234567890"
    assert data["sender_jid"] == "123456789012345@lid"
    assert data["chat"] == "123456789012345@lid"


def test_lid_sender_without_phone_has_no_from() -> None:
    assert message_data(message_event(E2E.Message(conversation="hi"), sender=LID))["from"] is None


def test_group_message() -> None:
    sender = jid("6281234567890", device=12)  # a linked device of the participant
    data = message_data(message_event(E2E.Message(conversation="hi all"), sender=sender, chat=GROUP, is_group=True))
    assert data["chat"] == "120363041234567890@g.us"
    assert data["is_group"] is True
    assert data["from"] == "+6281234567890"
    assert data["sender_jid"] == "6281234567890@s.whatsapp.net"


def test_own_message_from_another_device() -> None:
    data = message_data(message_event(E2E.Message(conversation="me"), chat=jid("15550001111"), from_me=True))
    assert data["is_from_me"] is True
    assert data["chat"] == "15550001111@s.whatsapp.net"


def test_missing_timestamp_is_none_and_seconds_are_not_read_as_1970() -> None:
    event = message_event(E2E.Message(conversation="x"))
    event.Info.Timestamp = 0
    assert message_data(event)["timestamp"] is None
    event.Info.Timestamp = 1_763_000_000
    assert message_data(event)["timestamp"] == "2025-11-13T02:13:20.000+00:00"


def test_internal_messages_are_recognised() -> None:
    plumbing = E2E.Message(
        senderKeyDistributionMessage=E2E.SenderKeyDistributionMessage(groupID="g"),
        protocolMessage=E2E.ProtocolMessage(type=E2E.ProtocolMessage.REVOKE),
    )
    assert incoming_message(message_event(plumbing)) is None
    assert incoming_message(message_event(E2E.Message())) is None
    with_text = E2E.Message(
        conversation="real", senderKeyDistributionMessage=E2E.SenderKeyDistributionMessage(groupID="g")
    )
    assert incoming_message(message_event(with_text)) is not None


def test_jid_to_str_drops_agent_and_device() -> None:
    assert jid_to_str(PB.JID(User="6281234567890", RawAgent=1, Device=7, Server="s.whatsapp.net")) == (
        "6281234567890@s.whatsapp.net"
    )
    assert jid_to_str(PB.JID(Server="g.us")) == "g.us"
    assert jid_to_str(PB.JID()) == ""


# -- receipts and session events ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("type_name", "status"), [("DELIVERED", "delivered"), ("READ", "read"), ("PLAYED", "played")])
def test_receipts(type_name: str, status: str) -> None:
    receipt = PB.Receipt(
        MessageSource=PB.MessageSource(Chat=PHONE, Sender=PHONE),
        MessageIDs=["3EB0A", "3EB0B"],
        Timestamp=1_763_000_000,  # seconds here, unlike Message
        Type=PB.Receipt.ReceiptType.Value(type_name),
    )
    assert receipt_to_dict(receipt) == {
        "chat": "6281234567890@s.whatsapp.net",
        "message_ids": ["3EB0A", "3EB0B"],
        "status": status,
        "timestamp": "2025-11-13T02:13:20.000+00:00",
    }


@pytest.mark.parametrize("type_name", ["SENDER", "RETRY", "READ_SELF", "PLAYED_SELF", "SERVER_ERROR", "INACTIVE"])
def test_other_receipts_are_ignored(type_name: str) -> None:
    receipt = PB.Receipt(MessageIDs=["x"], Timestamp=1, Type=PB.Receipt.ReceiptType.Value(type_name))
    assert receipt_to_dict(receipt) is None


def test_receipt_without_type_is_ignored_not_read_as_delivered() -> None:
    receipt = PB.Receipt(MessageIDs=["x"], Timestamp=1)  # what neonize sends for receipt types it does not map
    assert receipt.Type == PB.Receipt.DELIVERED  # proto2 default: the trap
    assert receipt_to_dict(receipt) is None


def test_enum_tables_match_the_installed_neonize() -> None:
    assert {number: name for number, (_code, name) in CONNECT_FAILURES.items()} == {
        number: name.lower() for name, number in PB.ConnectFailureReason.items()
    }
    assert set(TEMP_BAN_CODES) == {number for _name, number in PB.TemporaryBan.TempBanReason.items()}
    assert {PB.Receipt.ReceiptType.Name(number) for number in RECEIPT_STATUSES} == {"DELIVERED", "READ", "PLAYED"}


@pytest.mark.parametrize(
    ("reason", "name", "data"),
    [
        ("LOGGED_OUT", LOGGED_OUT, {"reason": "logged_out"}),
        ("MAIN_DEVICE_GONE", LOGGED_OUT, {"reason": "main_device_gone"}),
        ("UNKNOWN_LOGOUT", LOGGED_OUT, {"reason": "unknown_logout"}),
        ("TEMP_BANNED", BANNED, {"until": None, "code": None}),
        ("CLIENT_OUTDATED", OUTDATED, {"detail": "nope"}),
        ("GENERIC", DISCONNECTED, {"reason": "connect_failure_400", "detail": "nope"}),
        ("BAD_USER_AGENT", STOPPED, {"reason": "bad_user_agent", "detail": BAD_USER_AGENT_DETAIL}),
        ("SERVICE_UNAVAILABLE", DISCONNECTED, {"reason": "connect_failure_503", "detail": "nope"}),
    ],
)
def test_connect_failures(reason: str, name: str, data: dict[str, Any]) -> None:
    event = PB.ConnectFailure(Reason=PB.ConnectFailureReason.Value(reason), Message="nope")
    assert connect_failure_to_event(event) == (name, data)


def test_connect_failure_without_reason() -> None:
    assert connect_failure_to_event(PB.ConnectFailure()) == (
        DISCONNECTED,
        {"reason": "connect_failure_unknown", "detail": None},
    )


def test_logged_out_reason() -> None:
    event = PB.LoggedOut(OnConnect=True, Reason=PB.ConnectFailureReason.Value("MAIN_DEVICE_GONE"))
    assert logged_out_to_dict(event) == {"reason": "main_device_gone"}


def test_temporary_ban_until_counts_from_arrival() -> None:
    event = PB.TemporaryBan(Code=PB.TemporaryBan.BLOCKED_BY_USERS, Expire=3600)
    assert temporary_ban_to_dict(event, datetime(2026, 1, 1, tzinfo=UTC)) == {
        "until": "2026-01-01T01:00:00.000+00:00",
        "code": 102,
    }
    assert temporary_ban_to_dict(PB.TemporaryBan(), datetime(2026, 1, 1, tzinfo=UTC)) == {"until": None, "code": None}


# -- commands -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("6281234567890", ("6281234567890", "s.whatsapp.net")),
        ("+6281234567890", ("6281234567890", "s.whatsapp.net")),
        ("120363041234567890@g.us", ("120363041234567890", "g.us")),
        ("6281234567890@c.us", ("6281234567890", "s.whatsapp.net")),
    ],
)
def test_recipient(to: str, expected: tuple[str, str]) -> None:
    assert recipient(to) == expected


@pytest.mark.parametrize("to", ["", "+", "0812 3456", "abc", "12345", "1234567890123456", "@g.us", "123@"])
def test_bad_recipient_is_permanent(to: str) -> None:
    with pytest.raises(BackendError) as raised:
        recipient(to)
    assert raised.value.permanent


@pytest.mark.parametrize(
    ("message", "permanent"),
    [
        ("websocket not connected", False),
        ("client is nil", False),
        ("timed out waiting for message send response", False),
        ("can't send message to unknown server example.com", True),
        ("message recipient must be a user JID with no device part", True),
        ("international phone number required (must not start with 0)", True),
        ("phone number too short", True),
    ],
)
def test_command_errors(message: str, permanent: bool) -> None:
    error = command_error(NZ.NeonizeError(message))
    assert (str(error), error.permanent) == (message, permanent)


def test_unpaired_store_is_a_clear_transient_error() -> None:
    error = command_error(NZ.NeonizeError("the store doesn't contain a device JID"))
    assert str(error).startswith("not paired")
    assert not error.permanent


@pytest.mark.parametrize(
    "url", ["neonize.db", "host=127.0.0.1 dbname=app", "sqlite:///app.db", "POSTGRES://u@127.0.0.1/db", ""]
)
def test_refuses_a_store_that_is_not_a_postgres_url(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BackendError) as raised:
        NeonizeBackend(url, lambda name, data: None, Intake(lambda frame: None))
    assert raised.value.permanent
    assert list(tmp_path.iterdir()) == []  # whatsmeow would have made a SQLite file here


# -- real connection attempts, each in a worker-like process -----------------------------------------------------------


class Probe:
    """tests/whatsapp/neonize_probe.py run in tmp_path (so a stray SQLite file would show up there)."""

    def __init__(
        self, url: str, directory: Path, proxy: RefusingProxy, *, hold: bool = False, options: tuple[str, ...] = ()
    ) -> None:
        self.url = url
        self.directory = directory
        self.hold = hold
        self.options = options
        self.result_file = directory / "result.json"
        self.env = {key: value for key, value in os.environ.items() if key != "LOG_LEVEL"}
        self.env["PYTHONPATH"] = str(REPO_ROOT)
        self.env.update(proxy.env())  # never WhatsApp: the dial goes to the refusing proxy
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.result_file.unlink(missing_ok=True)
        with open_for_writing(self.directory / "stderr.txt") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.whatsapp.neonize_probe",
                self.url,
                "--result",
                str(self.result_file),
                "--timeout",
                "30",
                *(["--hold"] if self.hold else []),
                *self.options,
                cwd=self.directory,
                env=self.env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,  # Go prints there
                stderr=stderr,
            )

    async def result(self) -> dict[str, Any]:
        """The probe's report, once written (it stays alive after that with --hold)."""
        assert self.process is not None
        deadline = time.monotonic() + 45
        while not self.result_file.exists():
            assert self.process.returncode is None, self.stderr()
            assert time.monotonic() < deadline, "probe wrote no result"
            await asyncio.sleep(0.05)
        result: dict[str, Any] = json.loads(self.result_file.read_text())
        return result

    async def finish(self) -> int:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.close()
        return await asyncio.wait_for(self.process.wait(), 30)

    async def run(self) -> tuple[int, dict[str, Any]]:
        await self.start()
        returncode = await self.finish()
        assert returncode == 0, self.stderr()
        return returncode, await self.result()

    def stderr(self) -> str:
        return (self.directory / "stderr.txt").read_text()[-3000:]


def open_for_writing(path: Path) -> IO[str]:
    return open(path, "w")


def file_names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


async def whatsmeow_tables(url: str) -> set[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE tablename LIKE 'whatsmeow%'")
        return {row["tablename"] for row in rows}
    finally:
        await connection.close()


async def test_a_connection_attempt_sets_up_the_store_and_reports_the_dial_failure(
    database_url: str, tmp_path: Path, whatsapp_proxy: RefusingProxy
) -> None:
    assert await whatsmeow_tables(database_url) == set()

    returncode, result = await Probe(database_url, tmp_path, whatsapp_proxy).run()

    assert returncode == 0
    # whatsmeow's one dial went to the local proxy, for WhatsApp's address, and nowhere else.
    assert whatsapp_proxy.requests == [WHATSAPP_CONNECT]
    assert len(result["events"]) == 1, result["events"]
    [[name, data]] = result["events"]
    assert name == DISCONNECTED
    assert data["reason"] == "dial_failed"
    assert data["detail"].startswith("failed to dial whatsapp web websocket")
    assert "Refused by the test stand-in" in data["detail"]  # the proxy's answer is what failed it
    assert result["ended_seconds"] < 10  # a refused dial fails fast, not after a timeout
    tables = await whatsmeow_tables(database_url)
    assert {"whatsmeow_device", "whatsmeow_version", "whatsmeow_sessions", "whatsmeow_identity_keys"} <= tables
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM whatsmeow_device") == 0  # nothing paired
        assert await connection.fetchval("SELECT count(*) FROM whatsmeow_version") == 1
    finally:
        await connection.close()
    # The URL went to Postgres only: no SQLite file made from it in the working directory.
    assert file_names(tmp_path) == ["result.json", "stderr.txt"]


async def test_a_failed_attempt_leaves_a_quiet_usable_backend(
    database_url: str, tmp_path: Path, whatsapp_proxy: RefusingProxy
) -> None:
    _, result = await Probe(database_url, tmp_path, whatsapp_proxy).run()

    assert whatsapp_proxy.requests == [WHATSAPP_CONNECT]
    # Importing neonize ran logging.basicConfig on the (then unconfigured) root logger; the backend undid it.
    assert result["root_handlers"] == 0
    assert result["root_level"] == 30
    # LOG_LEVEL unset -> INFO handed to Go; with neonize's default (NOTSET) whatsmeow logs DEBUG here.
    assert result["neonize_log_level"] == 20
    assert "DEBUG" not in result["go_log_levels"]
    # Commands after the failure fail cleanly instead of killing the process.
    assert result["status_before"] == result["status"] == result["status_after"]
    assert result["status"] == {"connected": False, "logged_in": False}
    assert result["send_error"]["message"].startswith("not paired")
    assert result["send_error"]["permanent"] is False
    assert result["pair_error"]["permanent"] is False
    assert result["second_connect"]["permanent"] is True
    assert result["stop_seconds"] < 3.5  # stop(), twice, within its budget


def test_the_pairing_status_hook_is_the_one_neonize_hands_to_go() -> None:
    # NeonizeBackend replaces this private no-op to learn that a QR round timed out; connect() must still read it.
    assert "_NewAClient__onLoginStatus" in NZ.NewAClient.connect_with_proxy.__code__.co_names


def test_the_event_entry_point_is_the_one_neonize_hands_to_go() -> None:
    # NeonizeBackend replaces client.event.execute with its own (ordered, flow-controlled) entry point; connect() must
    # still wrap whatever is found there into the C callback it gives Go, and the replay backend calls it the same way.
    import dis

    loads = [
        (instruction.opname, instruction.argval)
        for instruction in dis.get_instructions(NZ.NewAClient.connect_with_proxy)
        if instruction.opname in ("LOAD_ATTR", "LOAD_METHOD")
    ]
    assert ("LOAD_ATTR", "event") in loads and ("LOAD_ATTR", "execute") in loads
    assert loads.index(("LOAD_ATTR", "execute")) > loads.index(("LOAD_ATTR", "event"))


@pytest.mark.parametrize(
    ("how", "expiry", "within"),
    [
        ("timer", "0.5", (0.5, 5.0)),  # no new QR, no Connected: expired after pairing_expiry
        ("status", "60", (0.0, 5.0)),  # Go reports the round's "timeout": expired at once, long before the timer
    ],
)
async def test_an_unscanned_qr_round_expires_once(
    database_url: str, tmp_path: Path, whatsapp_proxy: RefusingProxy, how: str, expiry: str, within: tuple[float, float]
) -> None:
    options = ("--simulate-pairing", how, "--pairing-expiry", expiry)
    _, result = await Probe(database_url, tmp_path, whatsapp_proxy, options=options).run()

    assert whatsapp_proxy.requests == [WHATSAPP_CONNECT]
    assert result["events"][1:] == [["qr", {"payload": "2@ref,noise,identity,adv"}], ["pairing_expired", {}]]
    assert within[0] <= result["pairing"]["expired_seconds"] < within[1]
    # With the socket reported up, pair_phone reaches whatsmeow, whose refusal is transient.
    assert result["pairing"]["pair_error"] == {"message": "websocket not connected", "permanent": False}


async def count_connections(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database_name(url),
        )
        return count
    finally:
        await connection.close()


async def settled_connections(url: str, expected: int) -> int:
    """The count once it reaches `expected`, or whatever it is after 5 s (backends exit just after their client)."""
    deadline = time.monotonic() + 5
    count = await count_connections(url)
    while count != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        count = await count_connections(url)
    return count


# A few here: the 20 failed attempts run under the supervisor (tests/session/test_neonize_supervisor.py).
ATTEMPTS = 4


async def test_failed_attempts_in_fresh_processes_do_not_leak_connections(
    database_url: str, tmp_path: Path, whatsapp_proxy: RefusingProxy
) -> None:
    baseline = await count_connections(database_url)

    # neonize never closes the store it opens on connect(): the connection lives as long as the process.
    held = Probe(database_url, tmp_path, whatsapp_proxy, hold=True)
    await held.start()
    await held.result()
    assert await count_connections(database_url) > baseline
    assert await held.finish() == 0
    assert await settled_connections(database_url, baseline) == baseline

    # So one attempt per worker process: the connection goes with the process, every time.
    for attempt in range(1, ATTEMPTS):
        _, result = await Probe(database_url, tmp_path, whatsapp_proxy).run()
        assert [name for name, _data in result["events"]] == [DISCONNECTED], attempt
        assert await settled_connections(database_url, baseline) == baseline, f"after attempt {attempt + 1}"
    assert whatsapp_proxy.requests == [WHATSAPP_CONNECT] * ATTEMPTS
