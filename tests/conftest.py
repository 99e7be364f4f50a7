"""Real Postgres for every test: TEST_DATABASE_URL's server if set, else an embedded one; a fresh database per test."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from app.db.embedded import EmbeddedPostgres
from app.db.migrations import migrate_url
from app.settings import resolve_database_url
from tests.whatsapp_stand_in import RefusingProxy, refusing_proxy

TEMPLATE = f"app_template_{os.getpid()}"
_BASETEMP_KEY = pytest.StashKey[str]()  # the folder pytest_configure below made, if it made one


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Each run gets a base temp folder of its own (unless --basetemp names one). pytest's default,
    /tmp/pytest-of-<user>/pytest-<n>, is shared by every run of the user: a run that starts prunes the folders of
    older ones, and once removed the embedded Postgres of a run still going (it lives there). tryfirst: the tmp_path
    factory reads the option in pytest's own pytest_configure."""
    if config.option.basetemp is None:
        folder = tempfile.mkdtemp(prefix="pytest-run-")
        config.option.basetemp = folder
        config.stash[_BASETEMP_KEY] = folder


def pytest_report_header(config: pytest.Config) -> str:
    return f"basetemp: {config.option.basetemp}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that passed leaves nothing behind; a failed one keeps its folder to look at (its path is in the header)."""
    folder = session.config.stash.get(_BASETEMP_KEY, None)
    if folder is not None and exitstatus == 0:
        shutil.rmtree(folder, ignore_errors=True)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def _admin(url: str, *statements: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(url)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server's maintenance database URL, resolved like the app resolves DATABASE_URL."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield resolve_database_url(os.environ["TEST_DATABASE_URL"])
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    yield resolve_database_url(server.url())
    server.close()


@pytest.fixture(scope="session")
def template_url(postgres_url: str) -> Iterator[str]:
    """A database with every migration applied, cloned for each test (much faster than migrating each time)."""
    _admin(postgres_url, f"DROP DATABASE IF EXISTS {TEMPLATE}", f"CREATE DATABASE {TEMPLATE}")
    url = with_database(postgres_url, TEMPLATE)
    asyncio.run(migrate_url(url))
    yield url
    _admin(postgres_url, f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")


def _fresh_database(postgres_url: str, template: str) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:16]}"
    _admin(postgres_url, f"CREATE DATABASE {name} TEMPLATE {template}")
    yield with_database(postgres_url, name)
    _admin(postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def database_url(postgres_url: str, template_url: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    yield from _fresh_database(postgres_url, TEMPLATE)


@pytest.fixture
def empty_database_url(postgres_url: str) -> Iterator[str]:
    """A fresh database with nothing in it."""
    yield from _fresh_database(postgres_url, "template0")


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    """A private folder like the web process's, where a worker hands over media files (and the sender files to send)."""
    folder = tmp_path / "media"
    folder.mkdir(mode=0o700)
    return folder


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture
async def whatsapp_proxy() -> AsyncIterator[RefusingProxy]:
    """Where the real neonize client dials instead of WhatsApp: a proxy on 127.0.0.1 that records and refuses."""
    async with refusing_proxy() as proxy:
        yield proxy
