"""The `auth_imports` table: every import attempt with its file, versions, rows per table, duration and outcome."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import asyncpg

from app.authimport.report import IMPORTED, Report
from app.observability import process_name
from app.session.status import KEYWORD_FIELDS

INSERT_ATTEMPT = """
INSERT INTO auth_imports (trigger, outcome, reason, message, source_path, source_sha256, source_schema_version,
                          store_schema_version, device_jid, rows_per_table, total_rows, duration_ms, process)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13)
RETURNING id"""
# The same refusal again (same file, same reason, same words): count it on the latest row instead of adding rows.
REPEAT_ATTEMPT = """
UPDATE auth_imports SET attempts = attempts + 1, last_attempt_at = now(), trigger = $1, duration_ms = $2, process = $3
WHERE id = (SELECT max(id) FROM auth_imports)
  AND outcome = $4 AND reason IS NOT DISTINCT FROM $5 AND message = $6 AND source_path = $7
  AND source_sha256 IS NOT DISTINCT FROM $8
RETURNING id"""
SELECT_LATEST = """
SELECT id, started_at, last_attempt_at, attempts, trigger, outcome, reason, message, source_path, source_sha256,
       source_schema_version, store_schema_version, device_jid, rows_per_table, total_rows, duration_ms, process
FROM auth_imports ORDER BY id DESC LIMIT 1"""
SELECT_LAST_IMPORTED = """
SELECT started_at, source_path FROM auth_imports WHERE outcome = 'imported' AND device_jid = $1
ORDER BY id DESC LIMIT 1"""


async def save(connection: asyncpg.Connection, report: Report) -> int:
    """Store the attempt; a refusal or failure identical to the latest one only bumps its count."""
    duration_ms = round(report.duration * 1000)
    if report.outcome != IMPORTED:
        repeated = await connection.fetchval(
            REPEAT_ATTEMPT, report.trigger, duration_ms, process_name(),
            report.outcome, report.reason, report.message, report.source, report.sha256,
        )  # fmt: skip
        if repeated is not None:
            return int(repeated)
    rows = report.copied if report.outcome == IMPORTED else {}
    attempt_id: int = await connection.fetchval(
        INSERT_ATTEMPT,
        report.trigger,
        report.outcome,
        report.reason,
        report.message,
        report.source,
        report.sha256,
        report.source_version[0] if report.source_version else None,
        report.store_version[0] if report.store_version else None,
        report.device.jid if report.device else None,
        json.dumps(rows),
        sum(rows.values()),
        duration_ms,
        process_name(),
    )
    return attempt_id


@dataclasses.dataclass(frozen=True)
class ImportAttempt:
    """The latest recorded import attempt (any process, any time)."""

    id: int
    started_at: dt.datetime
    last_attempt_at: dt.datetime
    attempts: int  # the same refusal repeated counts here instead of adding rows
    trigger: str
    outcome: str
    reason: str | None
    message: str
    source_path: str
    source_sha256: str | None
    source_schema_version: int | None
    store_schema_version: int | None
    device_jid: str | None
    rows_per_table: dict[str, int]
    total_rows: int
    duration_ms: int
    process: str


@dataclasses.dataclass(frozen=True)
class ImportAtStart:
    """What the import of a file-based login did when this process started (Report.summary and the short answers
    of app/authimport/startup.py)."""

    outcome: str
    message: str
    reason: str | None = None
    source: str | None = None
    format: str | None = None  # "Baileys folder", "whatsmeow SQLite store", ...
    sha256: str | None = None
    device: str | None = None
    rows: int | None = None
    duration_ms: int | None = None
    notes: tuple[str, ...] = ()  # parts not carried over, and what that costs

    @classmethod
    def of(cls, summary: dict[str, Any]) -> ImportAtStart:
        names = {field.name for field in dataclasses.fields(cls)}
        known = {key: value for key, value in summary.items() if key in names}
        return cls(**{**known, "notes": tuple(summary.get("notes") or ())})


@dataclasses.dataclass(frozen=True)
class AuthImportStatus:
    at_start: ImportAtStart | None  # None: not this process's to say (another process asks)
    last: ImportAttempt | None


@dataclasses.dataclass(frozen=True)
class AuthStoreStatus:
    """Where the WhatsApp login lives and what imports of a file-based login did."""

    __pydantic_config__ = KEYWORD_FIELDS

    kind: str  # "postgres": always, here
    backend: str
    devices: int | None  # linked devices in the store; None before the store's tables exist
    import_: AuthImportStatus


async def latest(connection: asyncpg.Connection) -> ImportAttempt | None:
    """The latest attempt, or None if there never was one."""
    row = await connection.fetchrow(SELECT_LATEST)
    if row is None:
        return None
    attempt = dict(row)
    attempt["rows_per_table"] = json.loads(attempt["rows_per_table"])
    return ImportAttempt(**attempt)


async def last_imported(connection: asyncpg.Connection, jid: str) -> tuple[str, str] | None:
    """(when, from which file) the device `jid` was imported, if it was."""
    row = await connection.fetchrow(SELECT_LAST_IMPORTED, jid)
    return (row["started_at"].isoformat(timespec="seconds"), str(row["source_path"])) if row else None
