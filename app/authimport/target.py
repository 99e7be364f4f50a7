"""whatsmeow's store in Postgres as the import sees it: its version and devices, and the copy of a source's rows into
it. Functions take the connection: the caller owns the transaction (the whole copy is one).
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import asyncpg

from app.authimport.refusal import Refusal
from app.authimport.source import DEVICE_TABLE, VERSION_TABLE, Source, Table

Convert = Callable[[Any], Any]

SELECT_DEVICES = f"SELECT jid FROM {DEVICE_TABLE} ORDER BY jid"
SELECT_VERSION = f"SELECT version, compat FROM {VERSION_TABLE}"
SELECT_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, NULL)
FROM pg_attribute a
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum"""


@dataclasses.dataclass(frozen=True)
class Copied:
    table: str
    rows: int  # inserted by this import
    kept: int  # already in Postgres (only shared tables such as the LID map can hold rows before an import)


async def exists(connection: asyncpg.Connection) -> bool:
    return await connection.fetchval("SELECT to_regclass($1)", DEVICE_TABLE) is not None


async def devices(connection: asyncpg.Connection) -> list[str]:
    """JIDs of the devices in Postgres ([] when whatsmeow has not created its tables yet)."""
    if not await exists(connection):
        return []
    return [str(row["jid"]) for row in await connection.fetch(SELECT_DEVICES)]


async def version(connection: asyncpg.Connection) -> tuple[int, int] | None:
    """(version, compat) of the Postgres store, or None when it has no version yet."""
    if await connection.fetchval("SELECT to_regclass($1)", VERSION_TABLE) is None:
        return None
    row = await connection.fetchrow(SELECT_VERSION)
    if row is None:
        return None
    return int(row["version"]), int(row["compat"] if row["compat"] is not None else row["version"])


async def check_schema(connection: asyncpg.Connection, source: Source) -> None:
    """Refuse unless every table of the file exists in Postgres with the same columns and types."""
    for table in source.tables:
        columns = {str(row[0]): str(row[1]) for row in await connection.fetch(SELECT_COLUMNS, table.name)}
        if not columns:
            raise Refusal("schema_mismatch", f"the Postgres store has no table {table.name}, which the file has")
        if columns != dict(table.columns):
            raise Refusal(
                "schema_mismatch",
                f"{table.name} differs between the file {dict(table.columns)} and Postgres {columns} although both "
                f"say schema version {source.version}",
            )


async def copy_table(connection: asyncpg.Connection, source: Source, table: Table, jid: str) -> Copied:
    """Copy the device's rows of one table (every row of a shared table) and verify the counts."""
    expected = source.count(table, jid)
    before = await _count(connection, table, jid)
    with contextlib.closing(source.rows(table, jid)) as rows, contextlib.closing(_converted(table, rows)) as converted:
        records = _Counted(converted)
        status = await _insert(connection, table, records)
    inserted = int(status.split()[-1])
    after = await _count(connection, table, jid)
    if records.count != expected or after - before != inserted or inserted > expected:
        raise VerificationError(
            f"{table.name}: the file has {expected} rows to copy, {records.count} were read, {inserted} inserted, "
            f"and Postgres went from {before} to {after}"
        )
    return Copied(table.name, inserted, expected - inserted)


async def _insert(connection: asyncpg.Connection, table: Table, records: Iterable[tuple[Any, ...]]) -> str:
    """Insert the records; the command status ("COPY n" / "INSERT 0 n") counts the rows that went in."""
    if not await connection.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table.name})"):
        # The usual case, an empty table: straight in with binary COPY.
        copied: str = await connection.copy_records_to_table(table.name, records=records, columns=table.column_names)
        return copied
    # Rows already there (a LID map left by an earlier login): stage, then add what is missing, keep the rest.
    stage = f"import_stage_{table.name}"
    await connection.execute(f"CREATE TEMP TABLE {stage} (LIKE {table.name}) ON COMMIT DROP")
    await connection.copy_records_to_table(stage, records=records, columns=table.column_names)
    columns = ", ".join(table.column_names)
    inserted: str = await connection.execute(
        f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {stage} ON CONFLICT DO NOTHING"
    )
    return inserted


async def _count(connection: asyncpg.Connection, table: Table, jid: str) -> int:
    if table.scope is None:
        count: int = await connection.fetchval(f"SELECT count(*) FROM {table.name}")
    else:
        count = await connection.fetchval(f"SELECT count(*) FROM {table.name} WHERE {table.scope} = $1", jid)
    return count


class VerificationError(Exception):
    """Postgres does not hold what was copied: the transaction must roll back."""


class _Counted:
    """Counts the records as COPY consumes them."""

    def __init__(self, records: Iterable[tuple[Any, ...]]) -> None:
        self.records = records
        self.count = 0

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        for record in self.records:
            self.count += 1
            yield record


# Values are converted from what go-sqlite3 stored (booleans as 0/1, UUIDs as text) by each column's declared type,
# which whatsmeow declares the same way for both databases (checked by check_schema).
def _converted(table: Table, rows: Iterable[tuple[Any, ...]]) -> Generator[tuple[Any, ...], None, None]:
    converters = [CONVERTERS.get(kind, _same) for _, kind in table.columns]
    for number, row in enumerate(rows, 1):
        try:
            pairs = zip(converters, row, strict=True)
            yield tuple(None if value is None else convert(value) for convert, value in pairs)
        except (TypeError, ValueError) as error:
            raise Refusal("bad_data", f"{table.name}, row {number}: {error}") from error


def _same(value: Any) -> Any:
    return value


def _boolean(value: Any) -> bool:
    # go-sqlite3 stores a Go bool as the integer 0 or 1.
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"{value!r} is not a boolean (0 or 1)")


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not an integer")
    number = int(value)  # raises on a non-numeric string
    if number != float(value):
        raise ValueError(f"{value!r} is not a whole number")
    return number


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):  # Go reads a TEXT value into []byte as its UTF-8 bytes: keep exactly those
        return value.encode()
    raise ValueError(f"{value!r} is not binary data")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()  # UnicodeDecodeError is a ValueError
    return str(value)


def _uuid(value: Any) -> uuid.UUID:
    if isinstance(value, bytes) and len(value) == 16:
        return uuid.UUID(bytes=value)
    return uuid.UUID(str(value))


CONVERTERS: dict[str, Convert] = {
    "boolean": _boolean,
    "bool": _boolean,
    "smallint": _integer,
    "integer": _integer,
    "int": _integer,
    "bigint": _integer,
    "bytea": _bytes,
    "text": _text,
    "uuid": _uuid,
}
