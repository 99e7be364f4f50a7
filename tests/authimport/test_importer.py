"""The import against real Postgres, with store files made by whatsmeow: what is copied, what whatsmeow then loads
from Postgres, and every refusal (each of which must leave Postgres and the file exactly as they were)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app.authimport import importer, whatsmeow
from app.authimport.refusal import EXIT_ALREADY_PAIRED, EXIT_CHOOSE, EXIT_IMPORTED, EXIT_UNUSABLE_FILE, EXIT_VERSION
from app.authimport.report import ALREADY_PAIRED, IMPORTED, REFUSED, WOULD_IMPORT
from tests.authimport.conftest import OTHER, SHOP, attempts, fingerprint, imported_rows, whatsmeow_rows
from tests.authimport.fake_store import copy_store, fill

ALL_TABLES = 16  # whatsmeow's 17 tables but whatsmeow_version, which whatsmeow writes itself


def file_rows(path: Path, table: str, columns: list[str], where: str = "", params: tuple[Any, ...] = ()) -> set[Any]:
    connection = sqlite3.connect(path)
    try:
        return set(connection.execute(f"SELECT {', '.join(columns)} FROM {table} {where}", params))
    finally:
        connection.close()


def file_columns(path: Path, table: str) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return [str(row[1]) for row in connection.execute(f"PRAGMA table_info({table})")]
    finally:
        connection.close()


async def postgres_rows(connection: asyncpg.Connection, table: str, columns: list[str]) -> set[Any]:
    return {tuple(row) for row in await connection.fetch(f"SELECT {', '.join(columns)} FROM {table}")}


async def test_imports_every_table_and_whatsmeow_loads_the_device_from_postgres(
    store_file: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    before = fingerprint(store_file)

    report = await importer.run(database_url, store_file)

    assert (report.outcome, report.reason, report.exit_code) == (IMPORTED, None, EXIT_IMPORTED)
    assert report.store_created  # whatsmeow made its own tables in Postgres, then the rows went in
    assert len(report.copied) == ALL_TABLES and all(report.copied.values()), report.copied
    # The proof that matters: whatsmeow itself (in a child process) loads the account, keys and all, from Postgres.
    assert await whatsmeow.devices(database_url) == [
        {"jid": SHOP.jid, "push_name": SHOP.push_name, "initialized": True}
    ]
    # Every row of every table, value for value (0/1 became booleans, BLOBs bytea).
    for table, copied in report.copied.items():
        columns = file_columns(store_file, table)
        expected = file_rows(store_file, table, columns)
        assert await postgres_rows(pg, table, columns) == expected, table
        assert copied == len(expected)
    assert await pg.fetchval("SELECT count(*) FROM whatsmeow_pre_keys WHERE uploaded") == 45
    assert await pg.fetchval("SELECT pinned FROM whatsmeow_chat_settings WHERE pinned") is True
    # The file is the backup: not one byte, timestamp or side file changed.
    assert fingerprint(store_file) == before
    [attempt] = await attempts(pg)
    assert attempt["outcome"] == "imported" and attempt["trigger"] == "cli"
    assert attempt["source_path"] == str(store_file)
    assert attempt["source_sha256"] == before[0]  # the sha256 of the file
    assert (attempt["source_schema_version"], attempt["store_schema_version"]) == (15, 15)
    assert attempt["device_jid"] == SHOP.jid
    assert json.loads(attempt["rows_per_table"]) == report.copied
    assert next(iter(json.loads(attempt["rows_per_table"]))) == "whatsmeow_device"  # foreign-key order: device first
    assert attempt["total_rows"] == sum(report.copied.values())
    assert attempt["duration_ms"] >= 0


async def test_a_wal_mode_file_gets_no_files_beside_it(
    store_file: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    connection = sqlite3.connect(store_file)
    assert connection.execute("PRAGMA journal_mode = WAL").fetchone() == ("wal",)
    connection.close()  # a clean close checkpoints and removes the -wal file
    before = fingerprint(store_file)

    report = await importer.run(database_url, store_file)

    assert report.outcome == IMPORTED
    assert fingerprint(store_file) == before  # SQLite would have created -wal and -shm files, even read-only


async def test_a_second_run_does_nothing_and_says_why(
    store_file: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    await importer.run(database_url, store_file, trigger="start")
    rows = await whatsmeow_rows(pg)

    again = await importer.run(database_url, store_file, trigger="start")

    assert (again.outcome, again.exit_code) == (ALREADY_PAIRED, EXIT_ALREADY_PAIRED)
    assert again.devices_in_postgres == [SHOP.jid]
    assert f"already holds WhatsApp device {SHOP.jid}" in again.message
    assert "imported on" in again.message and "left alone" in again.message
    assert await whatsmeow_rows(pg) == rows
    assert len(await attempts(pg)) == 1  # "nothing to do" is not an attempt


async def test_a_device_already_in_postgres_wins_over_any_file(
    store_file: Path, empty_store_template: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    other = copy_store(empty_store_template, store_file.with_name("other.db"))
    fill(other, [OTHER])
    await importer.run(database_url, other)
    before = fingerprint(store_file)

    report = await importer.run(database_url, store_file)

    assert report.outcome == ALREADY_PAIRED
    assert await pg.fetchval("SELECT array_agg(jid) FROM whatsmeow_device") == [OTHER.jid]
    assert fingerprint(store_file) == before


async def test_a_dry_run_writes_nothing(store_file: Path, database_url: str, pg: asyncpg.Connection) -> None:
    report = await importer.run(database_url, store_file, dry_run=True)

    assert (report.outcome, report.exit_code) == (WOULD_IMPORT, EXIT_IMPORTED)
    assert report.planned["whatsmeow_sessions"] == 40 and report.planned["whatsmeow_pre_keys"] == 50
    assert report.store_version == (15, 8)
    assert await whatsmeow_rows(pg) == {}  # not even whatsmeow's empty tables
    assert await attempts(pg) == []


async def test_several_devices_are_listed_and_jid_chooses_one(
    empty_store_template: Path, app_dir: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    path = copy_store(empty_store_template, app_dir / "neonize.db")
    fill(path, [SHOP, OTHER])

    refused = await importer.run(database_url, path)

    assert (refused.outcome, refused.reason, refused.exit_code) == (REFUSED, "several_devices", EXIT_CHOOSE)
    assert SHOP.jid in refused.message and OTHER.jid in refused.message and "--jid" in refused.message
    assert await whatsmeow_rows(pg) == {}

    unknown = await importer.run(database_url, path, jid="15559999999:1@s.whatsapp.net")
    assert (unknown.reason, unknown.exit_code) == ("unknown_device", EXIT_CHOOSE)
    assert SHOP.jid in unknown.message and OTHER.jid in unknown.message

    chosen = await importer.run(database_url, path, jid=OTHER.jid)

    assert chosen.outcome == IMPORTED
    assert await whatsmeow.devices(database_url) == [
        {"jid": OTHER.jid, "push_name": OTHER.push_name, "initialized": True}
    ]
    assert await pg.fetchval("SELECT count(*) FROM whatsmeow_sessions WHERE our_jid <> $1", OTHER.jid) == 0
    assert await pg.fetchval("SELECT count(*) FROM whatsmeow_privacy_tokens WHERE our_jid <> $1", OTHER.jid) == 0
    assert chosen.copied["whatsmeow_sessions"] == 40
    assert chosen.copied["whatsmeow_lid_map"] == 10  # shared by all devices: copied whole
    assert [row["reason"] for row in await attempts(pg)] == ["several_devices", "unknown_device", None]


async def test_a_different_schema_version_is_refused_naming_both(
    store_file: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    older = copy_store(store_file, store_file.with_name("older.db"))
    connection = sqlite3.connect(older)
    with connection:
        connection.execute("UPDATE whatsmeow_version SET version = 14, compat = 8")
    connection.close()

    report = await importer.run(database_url, older)

    assert (report.outcome, report.reason, report.exit_code) == (REFUSED, "version_mismatch", EXIT_VERSION)
    assert "version 14" in report.message and "version 15" in report.message
    assert await whatsmeow_rows(pg) == {}  # refused before whatsmeow's tables were even created

    # Against an existing Postgres store of another version, both numbers are named too.
    await whatsmeow.devices(database_url)
    await pg.execute("UPDATE whatsmeow_version SET version = 16")
    report = await importer.run(database_url, store_file)
    assert report.reason == "version_mismatch"
    assert "version 15" in report.message and "Postgres store has version 16" in report.message
    assert await imported_rows(pg) == 0


async def test_same_version_but_different_tables_is_refused(
    store_file: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    await whatsmeow.devices(database_url)
    await pg.execute("ALTER TABLE whatsmeow_contacts DROP COLUMN redacted_phone")  # someone edited the store by hand

    report = await importer.run(database_url, store_file)

    assert (report.outcome, report.reason, report.exit_code) == (REFUSED, "schema_mismatch", EXIT_VERSION)
    assert "whatsmeow_contacts differs" in report.message and "redacted_phone" in report.message
    assert await imported_rows(pg) == 0


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 3])
    elif how == "corrupt":  # overwrite pages in the middle: the b-tree no longer holds together
        middle = len(data) // 2
        path.write_bytes(data[:middle] + b"\xa5" * 16384 + data[middle + 16384 :])
    elif how == "header_only":
        path.write_bytes(data[:100])


@pytest.mark.parametrize("how", ["truncated", "corrupt", "header_only"])
async def test_a_damaged_file_is_refused(how: str, store_file: Path, database_url: str, pg: asyncpg.Connection) -> None:
    damage(store_file, how)
    before = fingerprint(store_file)

    report = await importer.run(database_url, store_file)

    assert (report.outcome, report.reason, report.exit_code) == (REFUSED, "corrupt", EXIT_UNUSABLE_FILE)
    assert "damaged" in report.message
    assert await whatsmeow_rows(pg) == {}
    assert fingerprint(store_file) == before
    assert [row["reason"] for row in await attempts(pg)] == ["corrupt"]


async def test_a_file_being_written_is_refused_as_locked(
    store_file: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    writer = sqlite3.connect(store_file, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")  # the old app in the middle of a write
    try:
        report = await importer.run(database_url, store_file)
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    assert (report.outcome, report.reason, report.exit_code) == (REFUSED, "locked", EXIT_UNUSABLE_FILE)
    assert "locked by another process" in report.message
    assert await whatsmeow_rows(pg) == {}


async def test_a_file_with_an_unfinished_write_is_refused(
    store_file: Path, tmp_path: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    # A writer killed mid-transaction leaves a hot journal; reading the file alone would see half a write.
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    writer = sqlite3.connect(store_file, isolation_level=None)
    writer.execute("PRAGMA cache_size = 1")  # spill to the file before commit, like a big write does
    writer.execute("BEGIN")
    writer.execute("UPDATE whatsmeow_sessions SET session = randomblob(3000)")
    copy = copy_store(store_file, crashed / "neonize.db")
    copy_store(store_file.with_name("neonize.db-journal"), crashed / "neonize.db-journal")
    writer.execute("ROLLBACK")
    writer.close()
    before = fingerprint(copy)

    report = await importer.run(database_url, copy)

    assert (report.reason, report.exit_code) == ("locked", EXIT_UNUSABLE_FILE)
    assert "unfinished write" in report.message
    assert fingerprint(copy) == before  # the journal is still there: we never roll anything back ourselves
    assert await whatsmeow_rows(pg) == {}


async def test_files_that_are_no_login_are_refused(
    empty_store_template: Path, app_dir: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    cases: dict[str, tuple[Path, str]] = {}
    cases["missing"] = (app_dir / "missing.db", "not_found")
    text = app_dir / "notes.db"
    text.write_text("not a database\n" * 100)
    cases["not SQLite"] = (text, "not_a_store")
    other = app_dir / "other.sqlite3"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE users (id integer)")
    connection.close()
    cases["another app's SQLite"] = (other, "not_a_store")
    cases["never paired"] = (copy_store(empty_store_template, app_dir / "unpaired.db"), "no_device")

    for case, (path, reason) in cases.items():
        report = await importer.run(database_url, path)
        assert (report.outcome, report.reason, report.exit_code) == (REFUSED, reason, EXIT_UNUSABLE_FILE), case

    assert await whatsmeow_rows(pg) == {}


@pytest.mark.parametrize(
    ("layout", "library"),
    [
        ({".wwebjs_auth/session/Default/Preferences": "{}"}, "whatsapp-web.js"),
        ({".wwebjs_auth/session-shop/Default/Cookies": ""}, "whatsapp-web.js"),
    ],
)  # fmt: skip
async def test_another_librarys_session_cannot_be_imported(
    layout: dict[str, str], library: str, app_dir: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    for name, content in layout.items():
        (app_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (app_dir / name).write_text(content)
    named = app_dir / next(iter(layout)).split("/")[0]

    for path in (named, app_dir):  # the folder itself, or the app directory holding it
        report = await importer.run(database_url, path)
        assert (report.outcome, report.reason, report.exit_code) == (REFUSED, "unsupported_format", EXIT_UNUSABLE_FILE)
        assert f"is a {library} session" in report.message
        assert "cannot be imported" in report.message and "pair once" in report.message
    assert await whatsmeow_rows(pg) == {}


async def test_a_value_that_does_not_fit_rolls_everything_back(
    store_file: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    connection = sqlite3.connect(store_file)
    with connection:  # a boolean that is neither 0 nor 1, in a table copied after the device and its keys
        connection.execute("UPDATE whatsmeow_chat_settings SET pinned = 7")
    connection.close()

    report = await importer.run(database_url, store_file)

    assert (report.outcome, report.reason) == (REFUSED, "bad_data")
    assert "whatsmeow_chat_settings" in report.message and "7" in report.message
    assert report.copied == {}
    assert await imported_rows(pg) == 0  # the device and the tables before it were rolled back with it
    assert await whatsmeow.devices(database_url) == []


async def test_rows_left_in_a_shared_table_are_kept(
    store_file: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    # An earlier login that was logged out: whatsmeow deleted its device, but the LID map stays.
    await whatsmeow.devices(database_url)
    connection = sqlite3.connect(store_file)
    lid, pn = connection.execute("SELECT lid, pn FROM whatsmeow_lid_map LIMIT 1").fetchone()
    in_file = connection.execute("SELECT count(*) FROM whatsmeow_lid_map").fetchone()[0]
    connection.close()
    await pg.execute("INSERT INTO whatsmeow_lid_map (lid, pn) VALUES ($1, $2), ('1@lid', '1@s.whatsapp.net')", lid, pn)

    report = await importer.run(database_url, store_file)

    assert report.outcome == IMPORTED
    assert (report.copied["whatsmeow_lid_map"], report.kept["whatsmeow_lid_map"]) == (in_file - 1, 1)
    assert await pg.fetchval("SELECT count(*) FROM whatsmeow_lid_map") == in_file + 1


async def test_a_repeated_refusal_is_counted_not_duplicated(
    store_file: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    damage(store_file, "truncated")
    for _ in range(3):
        await importer.run(database_url, store_file, trigger="start")

    [attempt] = await attempts(pg)
    assert (attempt["outcome"], attempt["reason"], attempt["attempts"]) == ("refused", "corrupt", 3)
