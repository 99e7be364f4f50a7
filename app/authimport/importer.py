"""One import of a file-based login (a whatsmeow store, or a Baileys login converted to whatsmeow's rows) into
Postgres: check everything first, then copy every table in one transaction, so that Postgres ends up with the complete
device or with nothing of it.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from pathlib import Path

import asyncpg

from app.authimport import discovery, record, target, whatsmeow
from app.authimport.refusal import Refusal
from app.authimport.report import ALREADY_PAIRED, FAILED, IMPORTED, REFUSED, WOULD_IMPORT, Report
from app.authimport.source import DEVICE_TABLE, Source
from app.authimport.target import VerificationError
from app.authimport.whatsmeow import WhatsmeowError
from app.db.database import CONNECTION_ERRORS, describe
from app.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

IMPORT_LOCK_KEY = 0x77616761_61757468  # "wagaauth": one import at a time across processes (start and CLI)
CONNECT_TIMEOUT = 10.0
LOCK_TIMEOUT = 30  # seconds any statement of the copy may wait for a table lock


class ImportBusy(Exception):
    """Another process is importing right now."""


async def run(
    database_url: str, path: Path, *, jid: str | None = None, dry_run: bool = False, trigger: str = "cli"
) -> Report:
    """Import (or with dry_run, only check) one login. Returns the report; raises only DatabaseUnavailable."""
    report = Report(source=str(path), trigger=trigger, dry_run=dry_run)  # made absolute once the file is open
    started = time.perf_counter()
    try:
        connection = await asyncpg.connect(database_url, timeout=CONNECT_TIMEOUT)
    except CONNECTION_ERRORS as error:
        raise DatabaseUnavailable(f"cannot connect to Postgres: {describe(error)}") from error
    try:
        try:
            await _attempt(connection, database_url, path, jid, report, started)
        except Refusal as refusal:
            report.refuse(refusal)
        except ImportBusy:
            report.fail("busy", "another import is under way (a second process starting, or migrate-auth); try again")
        except VerificationError as error:
            report.fail("verification_failed", f"rolled back, Postgres unchanged: {error}")
        except WhatsmeowError as error:
            report.fail("store_setup_failed", f"whatsmeow could not set up its tables in Postgres: {error}")
        except CONNECTION_ERRORS as error:
            raise DatabaseUnavailable(f"Postgres became unavailable during the import: {describe(error)}") from error
        except (asyncpg.PostgresError, sqlite3.Error) as error:
            report.fail("rejected", f"rolled back, Postgres unchanged: {describe(error)}")
        report.duration = time.perf_counter() - started
        if report.outcome in (REFUSED, FAILED) and not dry_run:
            await record.save(connection, report)
    except CONNECTION_ERRORS as error:
        raise DatabaseUnavailable(f"Postgres became unavailable during the import: {describe(error)}") from error
    finally:
        await connection.close()
    return report


# Order of work: stop if Postgres already holds a device; read the file (read-only) and pick the device; take the
# import lock; compare schema versions; let whatsmeow create its tables in Postgres if they are missing; then in one
# transaction copy table by table in foreign-key order, verify the counts and record the attempt.
async def _attempt(
    connection: asyncpg.Connection, database_url: str, path: Path, jid: str | None, report: Report, started: float
) -> None:
    if await _already_paired(connection, report):  # a device in Postgres wins: the file is not even opened
        return
    with contextlib.closing(discovery.open_login(path)) as source:
        report.read(source)
        device = report.device = source.device(jid)
        report.planned = {table.name: source.count(table, device.jid) for table in source.tables}
        if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", IMPORT_LOCK_KEY):
            raise ImportBusy
        try:
            await _copy(connection, database_url, source, report, started)
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", IMPORT_LOCK_KEY)


async def _copy(
    connection: asyncpg.Connection, database_url: str, source: Source, report: Report, started: float
) -> None:
    assert report.device is not None
    if await _already_paired(connection, report):  # again, now under the lock
        return
    report.store_version = await target.version(connection) or _pair(await whatsmeow.bundled_version())
    _check_versions(report, exists=await target.exists(connection))
    if report.dry_run:
        report.outcome = WOULD_IMPORT
        report.message = f"would copy {report.total_rows} rows of device {report.device.describe()}" + _notes(report)
        return
    if not await target.exists(connection) or await target.version(connection) is None:
        await whatsmeow.devices(database_url)  # whatsmeow creates its own tables, as the worker would
        report.store_created = True
        report.store_version = await target.version(connection)
        _check_versions(report, exists=True)
    async with connection.transaction():
        # A start must not wait forever on a lock; then keep a worker that is pairing right now from adding a second
        # device until this transaction ends.
        await connection.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}s'")
        await connection.execute(f"LOCK TABLE {DEVICE_TABLE} IN SHARE ROW EXCLUSIVE MODE")
        if await _already_paired(connection, report):
            return
        await target.check_schema(connection, source)
        for table in source.tables:
            copied = await target.copy_table(connection, source, table, report.device.jid)
            report.copied[table.name] = copied.rows
            report.kept[table.name] = copied.kept
        report.outcome = IMPORTED
        report.message = f"imported device {report.device.describe()}: {report.total_rows} rows" + _notes(report)
        report.duration = time.perf_counter() - started
        await record.save(connection, report)


async def _already_paired(connection: asyncpg.Connection, report: Report) -> bool:
    present = await target.devices(connection)
    if not present:
        return False
    report.outcome = ALREADY_PAIRED
    report.devices_in_postgres = present
    imported = await record.last_imported(connection, present[0])
    origin = f", imported on {imported[0]} from {imported[1]}" if imported else ""
    report.message = (
        f"Postgres already holds WhatsApp device {', '.join(present)}{origin}; it wins, so {report.source} was left "
        "alone (a file is only imported while Postgres holds no device)"
    )
    return True


def _notes(report: Report) -> str:
    return "; not carried over: " + "; ".join(report.notes) if report.notes else ""


def _pair(version: dict[str, int]) -> tuple[int, int]:
    return version["version"], version["compat"]


def _check_versions(report: Report, *, exists: bool) -> None:
    assert report.source_version is not None and report.store_version is not None
    (mine, mine_compat), (theirs, theirs_compat) = report.source_version, report.store_version
    if mine == theirs:
        return
    store = "the Postgres store" if exists else "the store this app's whatsmeow (neonize 0.5.2) creates in Postgres"
    if report.converted:
        raise Refusal(
            "version_mismatch",
            f"this app converts a {report.kind} into whatsmeow schema version {mine}, but {store} has version "
            f"{theirs} (compat {theirs_compat}); use the app version that matches the store, or pair once",
        )
    if mine < theirs:
        advice = (
            "the file comes from an older whatsmeow: upgrade a copy of it by opening the copy once with this "
            "app's neonize version, then import the copy; or pair once"
        )
    else:
        advice = "the file comes from a newer whatsmeow than this app's: upgrade the app's neonize, or pair once"
    raise Refusal(
        "version_mismatch",
        f"{report.source} has whatsmeow schema version {mine} (compat {mine_compat}) but {store} has version "
        f"{theirs} (compat {theirs_compat}); {advice}",
    )
