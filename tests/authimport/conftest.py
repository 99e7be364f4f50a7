"""Store files made by whatsmeow itself (once per run, in a child process) and filled with fake-key rows per test."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.authimport.fake_store import FakeDevice, copy_store, fill, make_empty_store
from tests.web.conftest import app_client  # noqa: F401 - the web tests' fixture: the app in-process, lifespan and all

SHOP = FakeDevice()
OTHER = FakeDevice(phone="15550001111", device=3, lid="999999999999999", push_name="Other Shop")


@pytest.fixture(scope="session")
def empty_store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store file as neonize leaves it before pairing: whatsmeow's 17 tables, no rows."""
    path = tmp_path_factory.mktemp("whatsmeow") / "template.db"
    asyncio.run(make_empty_store(path))
    return path


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """The old app's directory, where its store file lives."""
    directory = tmp_path / "old-app"
    directory.mkdir()
    return directory


@pytest.fixture
def store_file(empty_store_template: Path, app_dir: Path) -> Path:
    """neonize.db of a paired account (one device), every table holding rows."""
    path = copy_store(empty_store_template, app_dir / "neonize.db")
    fill(path, [SHOP])
    return path


@pytest.fixture
async def pg(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


def fingerprint(path: Path) -> tuple[str, int, list[str]]:
    """What must not change about a store file: its bytes, its mtime, and the files beside it."""
    return (
        hashlib.sha256(path.read_bytes()).hexdigest(),
        os.stat(path).st_mtime_ns,
        sorted(entry.name for entry in path.parent.iterdir()),
    )


async def whatsmeow_rows(connection: asyncpg.Connection) -> dict[str, int]:
    """Rows in each whatsmeow table of Postgres ({} when whatsmeow has not created its tables)."""
    tables = await connection.fetch("SELECT tablename FROM pg_tables WHERE tablename LIKE 'whatsmeow%'")
    counts: dict[str, int] = {}
    for row in tables:
        counts[row["tablename"]] = await connection.fetchval(f"SELECT count(*) FROM {row['tablename']}")
    return counts


async def imported_rows(connection: asyncpg.Connection) -> int:
    """Rows of whatsmeow's tables in Postgres, the version row (written by whatsmeow itself) aside."""
    return sum(count for table, count in (await whatsmeow_rows(connection)).items() if table != "whatsmeow_version")


async def attempts(connection: asyncpg.Connection) -> list[dict[str, Any]]:
    return [dict(row) for row in await connection.fetch("SELECT * FROM auth_imports ORDER BY id")]
