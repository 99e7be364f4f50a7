"""A Baileys login (made by Baileys' own code) imported from a folder, a seed-004 SQLite table, a prefixed key/value
table and a session string: whatsmeow loads the device, the keys and signatures check out, the converted Signal
records decrypt what the contact sent after the move, and every refusal writes nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app.authimport import curve, importer, whatsmeow
from app.authimport.refusal import EXIT_ALREADY_PAIRED, EXIT_IMPORTED, EXIT_UNUSABLE_FILE
from app.authimport.report import ALREADY_PAIRED, IMPORTED, REFUSED, WOULD_IMPORT
from tests.authimport.baileys_fixture import (
    EXPECTED,
    edit_creds,
    folder_copy,
    prefixed_table,
    seed_004_table,
    session_string,
)
from tests.authimport.conftest import attempts, whatsmeow_rows
from tests.authimport.signal_check import decrypt_group, decrypt_session

JID = EXPECTED["jid"]
ROWS = {  # what the fixture holds, table by table
    "whatsmeow_device": 1,
    "whatsmeow_identity_keys": 2,  # the account's (from signalIdentities) and the contact's
    "whatsmeow_pre_keys": 30,  # 29 files (pre-key 30 was consumed by the contact) + the reserving row
    "whatsmeow_sessions": 1,
    "whatsmeow_sender_keys": 1,
    "whatsmeow_app_state_sync_keys": 1,
    "whatsmeow_app_state_version": 1,
    "whatsmeow_app_state_mutation_macs": 1,
    "whatsmeow_privacy_tokens": 1,
    "whatsmeow_lid_map": 2,  # the account's own (as whatsmeow stores it when pairing) and the contact's
}


def tree_hash(path: Path) -> str:
    """Bytes, names and mtimes of a file or of every file in a folder."""
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")) if path.is_dir() else [path]:
        digest.update(f"{item.name}:{os.stat(item).st_mtime_ns}:".encode() + item.read_bytes())
    return digest.hexdigest()


def b64(value: str) -> bytes:
    return base64.b64decode(value)


# Each way of keeping the same login: (its source for the import, the path whose bytes must not change).
def folder_source(directory: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    folder = folder_copy(directory)
    return folder, folder


def seed_004_source(directory: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    path = seed_004_table(directory / "database.db")
    return path, path


def prefixed_source(directory: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    path = prefixed_table(directory / "bot.sqlite")
    return path, path


def env_source(directory: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("SESSION_ID", session_string())
    return Path("env:SESSION_ID"), directory


SOURCES: dict[str, Callable[[Path, pytest.MonkeyPatch], tuple[Path, Path]]] = {
    "folder": folder_source,
    "seed 004 table": seed_004_source,
    "prefixed key/value table": prefixed_source,
    "session string with keys": env_source,
}


@pytest.mark.parametrize("kind", SOURCES)
async def test_each_source_imports_the_login_and_whatsmeow_loads_it(
    kind: str, app_dir: Path, database_url: str, pg: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, kept = SOURCES[kind](app_dir, monkeypatch)
    before = tree_hash(kept)

    report = await importer.run(database_url, source)

    assert (report.outcome, report.reason, report.exit_code) == (IMPORTED, None, EXIT_IMPORTED), report.message
    assert report.copied == ROWS and report.notes == []
    assert report.kind.startswith("Baileys")
    # whatsmeow itself loads the device, keys and all, from Postgres.
    assert await whatsmeow.devices(database_url) == [
        {"jid": JID, "push_name": EXPECTED["push_name"], "initialized": True}
    ]
    device = await pg.fetchrow("SELECT * FROM whatsmeow_device")
    assert (device["jid"], device["lid"], device["platform"]) == (JID, EXPECTED["lid"], EXPECTED["platform"])
    assert device["registration_id"] == EXPECTED["registration_id"]
    assert tree_hash(kept) == before  # the source is only read
    [attempt] = await attempts(pg)
    assert (attempt["outcome"], attempt["device_jid"], attempt["source_path"]) == ("imported", JID, report.source)
    assert attempt["source_sha256"] == report.sha256 and len(report.sha256 or "") == 64
    assert json.loads(attempt["rows_per_table"]) == ROWS


async def test_the_keys_whatsmeow_gets_are_baileys_keys_and_the_signatures_verify(
    app_dir: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    assert (await importer.run(database_url, folder_copy(app_dir))).outcome == IMPORTED
    device = await pg.fetchrow("SELECT * FROM whatsmeow_device")
    public = {name: b64(value) for name, value in EXPECTED["public_keys"].items()}

    # whatsmeow stores private halves and derives the public ones: they are Baileys' public keys.
    assert curve.public_key(device["noise_key"]) == public["noise"]
    assert curve.public_key(device["identity_key"]) == public["identity"]
    assert curve.public_key(device["signed_pre_key"]) == public["signed_pre_key"]
    # The signed pre-key and both ADV signatures verify the way whatsmeow verifies them.
    identity = public["identity"]
    assert curve.verify(identity, curve.typed(public["signed_pre_key"]), device["signed_pre_key_sig"])
    account_key = device["adv_account_sig_key"]
    assert account_key == b64(EXPECTED["account_signature_key"])
    assert curve.verify(account_key, b"\x06\x00" + device["adv_details"] + identity, device["adv_account_sig"])
    device_message = b"\x06\x01" + device["adv_details"] + identity + account_key
    assert curve.verify(identity, device_message, device["adv_device_sig"])
    assert not curve.verify(identity, device_message + b"x", device["adv_device_sig"])  # the check can fail
    # The account's identity under its primary device's LID address, the contact's under its own.
    identities = dict(await pg.fetch("SELECT their_id, identity FROM whatsmeow_identity_keys"))
    lid_user = EXPECTED["lid"].split(":")[0]
    assert identities[f"{lid_user}_1:0"] == account_key
    assert set(identities) == {f"{lid_user}_1:0", EXPECTED["contact"]["address"]}


async def test_the_converted_session_and_sender_key_decrypt_what_the_contact_sent_after_the_move(
    app_dir: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    assert (await importer.run(database_url, folder_copy(app_dir))).outcome == IMPORTED
    contact = EXPECTED["contact"]["address"]
    session = await pg.fetchval("SELECT session FROM whatsmeow_sessions WHERE their_id = $1", contact)
    sender_key = await pg.fetchval(
        "SELECT sender_key FROM whatsmeow_sender_keys WHERE chat_id = $1 AND sender_id = $2",
        EXPECTED["group"],
        contact,
    )

    # A message Baileys skipped (its key kept), and one after a new ratchet step (the DH step from the stored keys).
    for message in EXPECTED["after_import"]["session"]:
        plaintext = decrypt_session(session, message["type"], b64(message["ciphertext"]))
        assert plaintext.decode() == message["plaintext"]
    for message in EXPECTED["after_import"]["group"]:
        assert decrypt_group(sender_key, b64(message["ciphertext"])).decode() == message["plaintext"]


async def test_what_else_is_copied(app_dir: Path, database_url: str, pg: asyncpg.Connection) -> None:
    assert (await importer.run(database_url, folder_copy(app_dir))).outcome == IMPORTED

    # Pre-keys Baileys already handed out stay reserved: whatsmeow's next id is MAX(key_id) + 1.
    pre_keys = await pg.fetch("SELECT key_id, uploaded FROM whatsmeow_pre_keys ORDER BY key_id")
    assert [row["key_id"] for row in pre_keys] == list(range(1, 31))
    assert max(row["key_id"] for row in pre_keys) + 1 == EXPECTED["pre_keys"]["next_id"]
    assert all(row["uploaded"] for row in pre_keys)
    key = await pg.fetchrow("SELECT * FROM whatsmeow_app_state_sync_keys")
    assert key["key_id"] == b64(EXPECTED["app_state_key_id"])
    assert key["fingerprint"] == bytes.fromhex("08d8df bf01 1002 1a02 000c".replace(" ", ""))
    assert (key["timestamp"], len(key["key_data"])) == (1764000100, 32)
    version = await pg.fetchrow("SELECT name, version, length(hash) AS size FROM whatsmeow_app_state_version")
    assert tuple(version) == ("regular_high", 1, 128)
    assert await pg.fetchval("SELECT count(*) FROM whatsmeow_app_state_mutation_macs WHERE version = 1") == 1
    contact = EXPECTED["contact"]
    assert {tuple(row) for row in await pg.fetch("SELECT lid, pn FROM whatsmeow_lid_map")} == {
        (EXPECTED["lid"].split(":")[0], JID.split(":")[0]),
        (contact["lid"].split("@")[0], contact["pn"].split("@")[0]),
    }
    token = await pg.fetchrow("SELECT their_jid, timestamp, length(token) AS size FROM whatsmeow_privacy_tokens")
    assert tuple(token) == (contact["lid"], 1764000300, 24)


@pytest.mark.parametrize(
    ("compress", "prefix", "with_keys"),
    [(True, "", False), (False, "Session;;;", False), (True, "KAI!", True), (False, "", True)],
)
async def test_session_strings_in_their_usual_shapes(
    compress: bool,
    prefix: str,
    with_keys: bool,
    database_url: str,
    pg: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WA_SESSION", session_string(with_keys=with_keys, compress=compress, prefix=prefix))

    report = await importer.run(database_url, Path("env:WA_SESSION"))

    assert report.outcome == IMPORTED and report.source == "env:WA_SESSION"
    assert report.kind == "Baileys session string"
    assert await whatsmeow.devices(database_url) == [
        {"jid": JID, "push_name": EXPECTED["push_name"], "initialized": True}
    ]
    if with_keys:
        assert report.copied == ROWS and report.notes == []
    else:  # creds alone: the device and its account's identity, and the note on what that costs
        assert report.copied["whatsmeow_sessions"] == 0 and report.copied["whatsmeow_identity_keys"] == 1
        assert report.copied["whatsmeow_pre_keys"] == 1  # the reserving row: ids below 31 were handed out
        [note] = report.notes
        assert "no Signal sessions" in note and "one retry" in note
        assert "not carried over" in report.message and "one retry" in report.message


async def test_a_part_that_cannot_be_converted_is_reported_and_the_rest_imported(
    app_dir: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    folder = folder_copy(app_dir)
    (folder / "session-111111111_1.0.json").write_text('{"_sessions": {}, "version": "v1"}')

    report = await importer.run(database_url, folder)

    assert report.outcome == IMPORTED
    assert report.copied["whatsmeow_sessions"] == 1
    [note] = report.notes
    assert "1 of 2 Signal sessions not converted" in note and "111111111_1.0" in note and "one retry" in note
    [attempt] = await attempts(pg)
    assert "one retry" in attempt["message"]


def _flip(field: Callable[[dict[str, Any]], dict[str, Any]], key: str) -> Callable[[dict[str, Any]], None]:
    def change(creds: dict[str, Any]) -> None:
        holder = field(creds)
        value = holder[key]
        raw = bytearray(b64(value["data"] if isinstance(value, dict) else value))
        raw[5] ^= 0x01
        encoded = base64.b64encode(bytes(raw)).decode()
        holder[key] = {"type": "Buffer", "data": encoded} if isinstance(value, dict) else encoded

    return change


def _truncate(name: str) -> Callable[[Path], None]:
    def cut(folder: Path) -> None:
        path = folder / name
        path.write_bytes(path.read_bytes()[:40])

    return cut


def _swap_pre_key_public(folder: Path) -> None:
    pre_key = json.loads((folder / "pre-key-7.json").read_text())
    pre_key["public"] = json.loads((folder / "pre-key-8.json").read_text())["public"]
    (folder / "pre-key-7.json").write_text(json.dumps(pre_key))


REFUSALS: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "never paired": (lambda f: edit_creds(f, lambda c: c.pop("me")), "no_device", "never paired"),
    "no account": (lambda f: edit_creds(f, lambda c: c.pop("account")), "no_account", "no account"),
    "public key not of its private key": (
        lambda f: edit_creds(f, _flip(lambda c: c["noiseKey"], "public")),
        "key_mismatch",
        "noiseKey",
    ),
    "pre-key public key": (_swap_pre_key_public, "key_mismatch", "pre-key 7"),
    "signed pre-key signature": (
        lambda f: edit_creds(f, _flip(lambda c: c["signedPreKey"], "signature")),
        "bad_signature",
        "signed pre-key",
    ),
    "account signature": (
        lambda f: edit_creds(f, _flip(lambda c: c["account"], "accountSignature")),
        "bad_signature",
        "account signature",
    ),
    "device signature": (
        lambda f: edit_creds(f, _flip(lambda c: c["account"], "deviceSignature")),
        "bad_signature",
        "device signature",
    ),
    "truncated creds": (_truncate("creds.json"), "corrupt", "truncated"),
    "truncated session": (_truncate("session-98765432109876_1.0.json"), "corrupt", "session-98765432109876_1.0"),
}


@pytest.mark.parametrize("case", REFUSALS)
async def test_each_refusal_writes_nothing(case: str, app_dir: Path, database_url: str, pg: asyncpg.Connection) -> None:
    spoil, reason, words = REFUSALS[case]
    folder = folder_copy(app_dir)
    spoil(folder)
    before = tree_hash(folder)

    report = await importer.run(database_url, folder)

    assert (report.outcome, report.reason, report.exit_code) == (REFUSED, reason, EXIT_UNUSABLE_FILE)
    assert words in report.message
    assert await whatsmeow_rows(pg) == {}  # whatsmeow's tables were not even created
    assert tree_hash(folder) == before
    [attempt] = await attempts(pg)
    assert (attempt["outcome"], attempt["reason"]) == ("refused", reason)


async def test_the_same_refusals_through_a_table_and_a_string(
    app_dir: Path, database_url: str, pg: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = folder_copy(app_dir, "spoilt")
    edit_creds(folder, _flip(lambda c: c["account"], "accountSignature"))
    table = seed_004_table(app_dir / "database.db", folder)
    monkeypatch.setenv("BROKEN", base64.b64encode(b'{"creds": {"noiseKey": {"private"').decode())

    assert (await importer.run(database_url, table)).reason == "bad_signature"
    assert (await importer.run(database_url, Path("env:BROKEN"))).reason == "corrupt"
    assert (await importer.run(database_url, Path("env:UNSET_VARIABLE"))).reason == "not_found"
    monkeypatch.setenv("MEGA_ID", "KING~AbCdEf12#xyz-QrStUv")  # a download id, not a session
    report = await importer.run(database_url, Path("env:MEGA_ID"))
    assert report.reason == "corrupt" and "paste the session itself" in report.message
    assert await whatsmeow_rows(pg) == {}


async def test_postgres_holding_a_device_wins(app_dir: Path, database_url: str, pg: asyncpg.Connection) -> None:
    assert (await importer.run(database_url, folder_copy(app_dir))).outcome == IMPORTED
    rows = await whatsmeow_rows(pg)
    other = folder_copy(app_dir, "other")

    report = await importer.run(database_url, other)

    assert (report.outcome, report.exit_code) == (ALREADY_PAIRED, EXIT_ALREADY_PAIRED)
    assert JID in report.message
    assert await whatsmeow_rows(pg) == rows


async def test_a_dry_run_checks_and_writes_nothing(app_dir: Path, database_url: str, pg: asyncpg.Connection) -> None:
    report = await importer.run(database_url, folder_copy(app_dir), dry_run=True)

    assert report.outcome == WOULD_IMPORT and report.planned == ROWS
    assert await whatsmeow_rows(pg) == {} and await attempts(pg) == []


@pytest.mark.parametrize(
    "layout",
    [
        {".wwebjs_auth/session/Default/Preferences": "{}"},  # whatsapp-web.js LocalAuth
        {"bot-data/config.json": '{"token": "x"}', "bot-data/state.txt": "?"},  # something else entirely
    ],
)
async def test_whatsapp_web_js_and_unknown_folders_are_refused_with_what_to_do(
    layout: dict[str, str], app_dir: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    for name, content in layout.items():
        (app_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (app_dir / name).write_text(content)
    folder = app_dir / next(iter(layout)).split("/")[0]

    report = await importer.run(database_url, folder)

    assert report.outcome == REFUSED and report.reason in ("unsupported_format", "not_a_store")
    assert "pair once" in report.message
    assert await whatsmeow_rows(pg) == {}
