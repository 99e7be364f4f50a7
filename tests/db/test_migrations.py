"""Migrations: applied on an empty database, a no-op the second time, safe when two processes run them at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from app.db.migrations import Migration, load_migrations, migrate, migrate_url
from app.errors import MigrationError
from tests.processes import BASE_ENV, ROOT

TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"


async def test_apply_on_empty_database_then_no_op(empty_database_url: str) -> None:
    files = load_migrations()
    assert [migration.version for migration in files] == sorted(migration.version for migration in files)
    applied = await migrate_url(empty_database_url)
    assert [migration.version for migration in applied] == [migration.version for migration in files]
    assert await migrate_url(empty_database_url) == []
    connection = await asyncpg.connect(empty_database_url)
    try:
        tables = [row["tablename"] for row in await connection.fetch(TABLES)]
        recorded = await connection.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await connection.close()
    assert "schema_migrations" in tables and "session_transitions" in tables
    assert recorded == len(files)


async def test_an_edited_migration_is_refused(empty_database_url: str) -> None:
    connection = await asyncpg.connect(empty_database_url)
    try:
        await migrate(connection, [Migration(1, "first", "CREATE TABLE first (id int)")])
        with pytest.raises(MigrationError, match="edited after it was applied"):
            await migrate(connection, [Migration(1, "first", "CREATE TABLE first (id bigint)")])
        # the lock was released: another migration run goes through
        assert await migrate(connection, [Migration(1, "first", "CREATE TABLE first (id int)")]) == []
    finally:
        await connection.close()


async def test_a_failed_migration_leaves_nothing_behind(empty_database_url: str) -> None:
    connection = await asyncpg.connect(empty_database_url)
    broken = [Migration(1, "good", "CREATE TABLE good (id int)"), Migration(2, "bad", "CREATE TABLE bad (id int); x")]
    try:
        with pytest.raises(asyncpg.PostgresSyntaxError):
            await migrate(connection, broken)
        assert await connection.fetchval("SELECT max(version) FROM schema_migrations") == 1
        assert await connection.fetchval("SELECT to_regclass('bad')") is None
    finally:
        await connection.close()


def test_migrations_never_touch_whatsmeow_tables(tmp_path: Path) -> None:
    (tmp_path / "0001_sneaky.sql").write_text("ALTER TABLE whatsmeow_device ADD COLUMN x int;")
    with pytest.raises(MigrationError, match="whatsmeow"):
        load_migrations(tmp_path)


def test_two_processes_migrating_at_once_do_not_collide(empty_database_url: str) -> None:
    env = {**BASE_ENV, "DATABASE_URL": empty_database_url, "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "app", "migrate"]
    runs = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)
    ]
    outputs = [run.communicate(timeout=60)[0].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    applied_lines = sum(output.count("applied migration 0001_") for output in outputs)
    assert applied_lines == 1, outputs  # exactly one of them did the work
