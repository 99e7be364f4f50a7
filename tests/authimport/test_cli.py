"""`python -m app migrate-auth`: its output table by table, its exit codes, and an import killed halfway through."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg

from app.authimport import whatsmeow
from app.authimport.cli import migrate_auth
from app.authimport.refusal import EXIT_ALREADY_PAIRED, EXIT_CHOOSE, EXIT_FAILED, EXIT_IMPORTED, EXIT_UNUSABLE_FILE
from tests.authimport.conftest import OTHER, SHOP, imported_rows
from tests.authimport.fake_store import copy_store, fill
from tests.processes import BASE_ENV, ROOT


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("DYNO", "AUTH_MIGRATE_FROM")}
    env.update(BASE_ENV)
    env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "app", "migrate-auth", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def cli(database_url: str, path: Path, *, dry_run: bool = False, jid: str | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = migrate_auth(database_url, path, dry_run=dry_run, jid=jid, out=out)
    return code, out.getvalue()


def table_of(output: str) -> dict[str, int]:
    """The per-table lines of the output: '  whatsmeow_sessions      40' -> {"whatsmeow_sessions": 40}."""
    rows = [line.split() for line in output.splitlines() if line.startswith("  whatsmeow_")]
    return {row[0]: int(row[1]) for row in rows}


def test_help_documents_the_exit_codes(database_url: str) -> None:
    result = run_cli(database_url, "--help")

    assert result.returncode == 0
    for code in range(7):
        assert f"\n  {code}  " in result.stdout, code
    assert "--dry-run" in result.stdout and "--jid" in result.stdout


def test_dry_run_then_import_then_nothing_to_do(store_file: Path, database_url: str) -> None:
    code, output = cli(database_url, store_file, dry_run=True)
    assert code == EXIT_IMPORTED
    assert "would copy" in output and "Nothing was written" in output
    assert table_of(output)["whatsmeow_sessions"] == 40

    code, output = cli(database_url, store_file)
    assert code == EXIT_IMPORTED, output
    copied = table_of(output)
    assert next(iter(copied)) == "whatsmeow_device" and len(copied) == 16  # table by table, device first
    assert copied["whatsmeow_pre_keys"] == 50
    assert f"total {sum(copied.values())}" in " ".join(output.split())
    assert f"device:  {SHOP.jid}" in output
    assert "whatsmeow schema: file 15 (compat 8), Postgres 15 (compat 8)" in output
    assert "row counts verified" in output and "The source was not changed" in output

    code, output = cli(database_url, store_file)
    assert code == EXIT_ALREADY_PAIRED
    assert "Nothing to do" in output and "left alone" in output


def test_refusals_exit_with_their_code(empty_store_template: Path, app_dir: Path, database_url: str) -> None:
    path = copy_store(empty_store_template, app_dir / "neonize.db")
    fill(path, [SHOP, OTHER])

    code, output = cli(database_url, path)
    assert code == EXIT_CHOOSE
    assert "several_devices" in output and SHOP.jid in output and OTHER.jid in output

    code, output = cli(database_url, app_dir / "missing.db")
    assert code == EXIT_UNUSABLE_FILE and "does not exist" in output

    code, output = cli(database_url, path, jid=OTHER.jid)
    assert code == EXIT_IMPORTED, output


def test_a_bad_command_line_and_an_unreachable_database(store_file: Path) -> None:
    assert run_cli("postgresql://127.0.0.1:5432/x", "--jid").returncode == 2
    code, output = cli("postgresql://postgres@127.0.0.1:1/nothing?sslmode=disable", store_file)
    assert code == EXIT_FAILED and "migrate-auth:" in output


async def test_an_import_killed_halfway_leaves_postgres_untouched(
    store_file: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    await whatsmeow.devices(database_url)  # whatsmeow's (empty) tables exist, as after a failed first connection
    # Hold the sessions table so the import stops there: the device and its keys are already inserted by then.
    blocker = await asyncpg.connect(database_url)
    transaction = blocker.transaction()
    await transaction.start()
    await blocker.execute("LOCK TABLE whatsmeow_sessions IN ACCESS EXCLUSIVE MODE")
    env = {key: value for key, value in os.environ.items() if key not in ("DYNO", "AUTH_MIGRATE_FROM")}
    env.update({**BASE_ENV, "DATABASE_URL": database_url})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "migrate-auth", str(store_file),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        importer_pid = await waiting_on_a_lock(pg, blocker)
        # Halfway: inside its transaction the import has written the device (it holds a write lock on the table).
        assert await pg.fetchval(WROTE_DEVICE, importer_pid)
        process.send_signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await transaction.rollback()
        await blocker.close()
    await gone(pg, importer_pid)

    assert await imported_rows(pg) == 0
    assert await pg.fetchval("SELECT count(*) FROM auth_imports") == 0
    assert await whatsmeow.devices(database_url) == []


WROTE_DEVICE = """
SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND relation = 'whatsmeow_device'::regclass
               AND mode = 'RowExclusiveLock' AND granted)"""
WAITING = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid NOT IN (pg_backend_pid(), $1)"""


async def waiting_on_a_lock(pg: asyncpg.Connection, blocker: asyncpg.Connection) -> int:
    """The pid of the import's backend once it waits for the sessions table (polled: no event crosses processes)."""
    for _ in range(1200):
        pid = await pg.fetchval(WAITING, blocker.get_server_pid())
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.05)
    raise AssertionError("the import never reached the locked table")


async def gone(pg: asyncpg.Connection, pid: int) -> None:
    """Wait for the killed import's backend to end (and roll back)."""
    for _ in range(1200):
        if not await pg.fetchval("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", pid):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"backend {pid} of the killed import is still there")
