"""`python -m app migrate-auth SOURCE [--dry-run] [--jid JID]`: import a file-based login by hand, table by table."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TextIO

from app.authimport import importer
from app.authimport.refusal import EXIT_CODES_HELP, EXIT_FAILED
from app.authimport.report import ALREADY_PAIRED, IMPORTED, WOULD_IMPORT, Report
from app.errors import AppError

DESCRIPTION = (
    "Import a WhatsApp login into the Postgres of DATABASE_URL, so the app connects without pairing again. SOURCE is "
    "a neonize/whatsmeow SQLite store, a Baileys auth folder (creds.json and its key files), a SQLite file keeping "
    "Baileys documents in a table, env:NAME for a Baileys session string in that environment variable, or a "
    "directory holding one of these. A Baileys login is checked (keys, signatures) and converted to whatsmeow's "
    "rows, Signal sessions included. Everything goes in one transaction and is verified; the source is only read, "
    "never changed: keep it as a backup. Nothing is imported while Postgres already holds a device. The old app must "
    "stay stopped for good (and must not log out). A running app loads an imported device when it is restarted."
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "migrate-auth",
        help="import a file-based WhatsApp login (neonize/whatsmeow SQLite, Baileys) into Postgres",
        description=DESCRIPTION,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(
        "path",
        metavar="SOURCE",
        type=Path,
        help="neonize.db, a Baileys folder (auth_info_baileys), a SQLite file of Baileys documents, env:NAME, or a "
        "directory holding one",
    )
    command.add_argument("--dry-run", action="store_true", help="check and show what would be copied; write nothing")
    command.add_argument("--jid", help="the device to import when the file holds several (as listed by the refusal)")


def migrate_auth(database_url: str, path: Path, *, dry_run: bool, jid: str | None, out: TextIO = sys.stdout) -> int:
    from app.db.migrations import migrate_url

    try:
        asyncio.run(migrate_url(database_url))  # the auth_imports table must exist
        result = asyncio.run(importer.run(database_url, path, jid=jid, dry_run=dry_run, trigger="cli"))
    except (AppError, OSError) as error:
        print(f"migrate-auth: {error}", file=out)
        return EXIT_FAILED
    print_report(result, out)
    return result.exit_code


def print_report(result: Report, out: TextIO) -> None:
    def line(text: str = "") -> None:
        print(text, file=out)

    line(f"source:  {result.source}")
    if result.kind:
        line(f"format:  {result.kind}")
    if result.sha256:
        line(f"sha256:  {result.sha256}")
    if result.source_version and result.converted:
        store = f"{result.store_version[0]}" if result.store_version else "not compared"
        line(f"whatsmeow schema: converted for {result.source_version[0]}, Postgres {store}")
    elif result.source_version:
        version, compat = result.source_version
        store = (
            f"{result.store_version[0]} (compat {result.store_version[1]})" if result.store_version else "not compared"
        )
        line(f"whatsmeow schema: file {version} (compat {compat}), Postgres {store}")
    if result.device:
        line(f"device:  {result.device.describe()}")
    rows = result.copied if result.outcome == IMPORTED else result.planned
    if rows and result.outcome in (IMPORTED, WOULD_IMPORT):
        verb = "copied" if result.outcome == IMPORTED else "would copy"
        width = max(len(table) for table in rows)
        line()
        line(f"  {'table'.ljust(width)}  {verb:>10}")
        for table, count in rows.items():
            kept = result.kept.get(table, 0)
            note = f"  ({kept} already in Postgres, kept)" if kept else ""
            line(f"  {table.ljust(width)}  {count:>10}{note}")
        line(f"  {'total'.ljust(width)}  {sum(rows.values()):>10}")
        line()
        for note in result.notes:
            line(f"Not carried over: {note}.")
    if result.outcome == IMPORTED:
        created = "; whatsmeow created its tables in Postgres first" if result.store_created else ""
        line(f"Imported in {result.duration:.2f} s, row counts verified{created}. The source was not changed.")
        line("If the app is running, restart it so that the session loads the imported device.")
    elif result.outcome == WOULD_IMPORT:
        line(f"Dry run: {result.message}. Nothing was written.")
    elif result.outcome == ALREADY_PAIRED:
        line(f"Nothing to do: {result.message}.")
    else:
        line(f"Not imported ({result.outcome}: {result.reason}). {result.message}.")
        line("Nothing was written to whatsmeow's tables; the source was not changed.")
