"""A whatsmeow/neonize SQLite store file, opened read-only: its schema version, devices, tables in foreign-key order
and their rows, all read from one consistent snapshot. Nothing here ever writes to the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from collections.abc import Generator
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from app.authimport.refusal import Refusal

SQLITE_HEADER = b"SQLite format 3\x00"
DEVICE_TABLE = "whatsmeow_device"
VERSION_TABLE = "whatsmeow_version"
PREFIX = "whatsmeow_"
BUSY_TIMEOUT = 2.0  # seconds to wait for a writer to finish before calling the file locked
ROWS_PER_FETCH = 1000
SCOPE_FALLBACK = "our_jid"  # a per-device column without a foreign key (whatsmeow_privacy_tokens)


@dataclasses.dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, declared type in lower case): "bytea", "boolean", "bigint", ...
    parents: tuple[str, ...]  # tables its foreign keys point to
    scope: str | None  # the column that names the device a row belongs to; None: shared by all devices

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


@dataclasses.dataclass(frozen=True)
class Device:
    jid: str
    push_name: str
    platform: str

    def describe(self) -> str:
        return f"{self.jid} ({self.push_name or 'no push name'})"


class Source(Protocol):
    """What the import copies from: a whatsmeow store file, or a login of another library converted to its rows."""

    kind: str  # "whatsmeow SQLite store", "Baileys folder", ...
    sha256: str
    version: int  # the whatsmeow schema its rows are laid out for
    compat: int
    tables: list[Table]
    devices: list[Device]
    notes: list[str]  # what could not be carried over, and what that costs

    @property
    def path(self) -> Path | str: ...  # a file or folder; "env:NAME" for a session string
    def device(self, jid: str | None) -> Device: ...
    def count(self, table: Table, jid: str) -> int: ...
    def rows(self, table: Table, jid: str) -> Generator[tuple[Any, ...], None, None]: ...
    def close(self) -> None: ...


def is_sqlite(path: Path) -> bool:
    return _header(path)[: len(SQLITE_HEADER)] == SQLITE_HEADER


def _header(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(100)
    except OSError:
        return b""


def read_only_uri(path: Path) -> str:
    """A URI that opens `path` read-only without creating any file beside it.

    mode=ro keeps the journal untouched; it still takes a shared lock while reading, so a writer in the middle of a
    write shows up as "locked" instead of as a torn snapshot. A WAL-mode file (whatsmeow's default is a rollback
    journal, but an app may switch) would get -wal and -shm files created beside it even read-only: when no -wal file
    exists, no connection is open and everything is in the main file, so it is opened as immutable instead."""
    uri = f"{path.as_uri()}?mode=ro"
    wal_mode = _header(path)[18:20] == b"\x02\x02"
    if wal_mode and not path.with_name(path.name + "-wal").exists():
        uri += "&immutable=1"
    return uri


class SourceStore:
    """An open, read-only snapshot of a store file. Use as a context manager; `open()` refuses unusable files."""

    kind = "whatsmeow SQLite store"

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self.notes: list[str] = []
        self.connection = connection
        self.sha256 = ""
        self.version = 0
        self.compat = 0
        self.tables: list[Table] = []
        self.devices: list[Device] = []

    @classmethod
    def open(cls, path: Path) -> SourceStore:
        path = path.expanduser().absolute()
        if not path.exists():
            raise Refusal("not_found", f"{path} does not exist")
        if not path.is_file():
            raise Refusal("not_a_store", f"{path} is not a file")
        if not is_sqlite(path):
            raise Refusal("not_a_store", f"{path} is not a SQLite database, so not a whatsmeow/neonize store")
        try:
            connection = sqlite3.connect(read_only_uri(path), uri=True, timeout=BUSY_TIMEOUT, isolation_level=None)
        except sqlite3.Error as error:
            raise _refusal(path, error) from error
        store = cls(path, connection)
        try:
            store._load()
        except sqlite3.Error as error:
            store.close()
            raise _refusal(path, error) from error
        except BaseException:
            store.close()
            raise
        return store

    def _load(self) -> None:
        # One read transaction for everything, hashing included: the shared lock it holds keeps writers out until
        # close(), so the hash, the counts and the copied rows all describe the same file.
        self.connection.execute("BEGIN")
        names = [row[0] for row in self.connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        self.sha256 = _sha256(self.path)
        check = [row[0] for row in self.connection.execute("PRAGMA quick_check")]
        if check != ["ok"]:
            raise Refusal("corrupt", f"{self.path} is damaged (truncated or corrupt): {'; '.join(check[:3])}")
        if DEVICE_TABLE not in names or VERSION_TABLE not in names:
            raise Refusal("not_a_store", f"{self.path} is a SQLite database without whatsmeow's tables")
        row = self.connection.execute(f"SELECT version, compat FROM {VERSION_TABLE}").fetchone()
        if row is None:
            raise Refusal("not_a_store", f"{self.path} has an empty {VERSION_TABLE} table")
        self.version, self.compat = int(row[0]), int(row[1] if row[1] is not None else row[0])
        tables = [self._table(name) for name in names if name.startswith(PREFIX) and name != VERSION_TABLE]
        self.tables = _in_foreign_key_order(tables)
        rows = self.connection.execute(f"SELECT jid, push_name, platform FROM {DEVICE_TABLE} ORDER BY jid")
        self.devices = [
            Device(str(jid), str(push_name or ""), str(platform or "")) for jid, push_name, platform in rows
        ]

    def _table(self, name: str) -> Table:
        columns = tuple(
            (str(column[1]), str(column[2]).lower()) for column in self.connection.execute(f"PRAGMA table_info({name})")
        )
        # foreign_key_list rows: (id, seq, parent table, from column, to column, ...)
        keys = list(self.connection.execute(f"PRAGMA foreign_key_list({name})"))
        parents = tuple(sorted({str(key[2]) for key in keys}))
        scope = None
        if name == DEVICE_TABLE:
            scope = "jid"
        else:
            for key in keys:
                if str(key[2]) == DEVICE_TABLE and str(key[4]) == "jid":
                    scope = str(key[3])
            if scope is None and SCOPE_FALLBACK in dict(columns):
                scope = SCOPE_FALLBACK
            if scope is None:  # a table whose key points at a per-device table (mutation MACs -> app state version)
                for key in keys:
                    if str(key[2]).startswith(PREFIX) and str(key[4]) == "jid":
                        scope = str(key[3])
        return Table(name, columns, parents, scope)

    # -- reading ------------------------------------------------------------------------------------------------------

    def device(self, jid: str | None) -> Device:
        """The device to import: the only one, or the one `jid` names."""
        listing = ", ".join(device.describe() for device in self.devices)
        if jid is not None:
            for device in self.devices:
                if device.jid == jid:
                    return device
            if not self.devices:
                raise Refusal("no_device", f"{self.path} holds no WhatsApp device (never paired, or logged out)")
            raise Refusal("unknown_device", f"{self.path} holds no device {jid}; it holds {listing}")
        if not self.devices:
            raise Refusal("no_device", f"{self.path} holds no WhatsApp device (never paired, or logged out)")
        if len(self.devices) > 1:
            raise Refusal(
                "several_devices",
                f"{self.path} holds {len(self.devices)} devices: {listing}; choose one with --jid: "
                f"python -m app migrate-auth {self.path} --jid JID",
            )
        return self.devices[0]

    def _where(self, table: Table) -> str:
        return f" WHERE {table.scope} = ?" if table.scope else ""

    def count(self, table: Table, jid: str) -> int:
        """Rows of `table` that an import of device `jid` copies (its own rows, and every row of a shared table)."""
        params = (jid,) if table.scope else ()
        query = f"SELECT count(*) FROM {table.name}{self._where(table)}"
        count: int = self.connection.execute(query, params).fetchone()[0]
        return count

    def rows(self, table: Table, jid: str) -> Generator[tuple[Any, ...], None, None]:
        """The rows that count() counts, streamed. Close the generator when done with it (contextlib.closing)."""
        params = (jid,) if table.scope else ()
        columns = ", ".join(table.column_names)
        cursor = self.connection.cursor()
        try:
            cursor.execute(f"SELECT {columns} FROM {table.name}{self._where(table)}", params)
            while batch := cursor.fetchmany(ROWS_PER_FETCH):
                yield from batch
        except sqlite3.Error as error:
            raise _refusal(self.path, error) from error
        finally:
            cursor.close()

    def close(self) -> None:
        self.connection.close()  # ends the read transaction; nothing was written, nothing to commit

    def __enter__(self) -> SourceStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _in_foreign_key_order(tables: list[Table]) -> list[Table]:
    """Parents before children (the device first), otherwise in the file's own order."""
    by_name = {table.name: table for table in tables}
    ordered: list[Table] = []
    placed: set[str] = set()
    while len(ordered) < len(tables):
        ready = [
            table
            for table in tables
            if table.name not in placed and all(parent in placed or parent not in by_name for parent in table.parents)
        ]
        if not ready:  # a cycle: whatsmeow has none, but never loop forever on a strange file
            ready = [table for table in tables if table.name not in placed][:1]
        for table in ready[:1]:
            ordered.append(table)
            placed.add(table.name)
    return ordered


def _refusal(path: Path, error: sqlite3.Error) -> Refusal:
    """SQLite's error as the reason an operator can act on."""
    name = getattr(error, "sqlite_errorname", "")
    text = str(error)
    if name == "SQLITE_READONLY_ROLLBACK" or "readonly" in text:
        return Refusal(
            "locked",
            f"{path} holds an unfinished write ({path.name}-journal): the program that wrote it crashed or is still "
            "running; start it once and stop it cleanly, then try again",
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return Refusal(
            "locked", f"{path} is locked by another process (is the old app still running? stop it first): {text}"
        )
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text:
        return Refusal("corrupt", f"{path} is damaged (truncated or corrupt): {text}")
    return Refusal("corrupt", f"{path} cannot be read: {text}")
