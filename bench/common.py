"""What the benchmarks share: a Postgres to run against, free ports, a running app process, memory readings."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db.migrations import migrate_url  # noqa: E402
from app.settings import resolve_database_url  # noqa: E402


@contextmanager
def bench_database() -> Iterator[str]:
    """A fresh, migrated database: on BENCH_DATABASE_URL's server if set, else on an embedded server."""
    server = None
    if os.environ.get("BENCH_DATABASE_URL"):
        admin = resolve_database_url(os.environ["BENCH_DATABASE_URL"])
    else:
        from app.db.embedded import EmbeddedPostgres

        server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="bench-pg-")) / "data")
        admin = resolve_database_url(server.url())
    name = f"bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute(admin, f"CREATE DATABASE {name}"))
    url = admin.replace("/postgres?", f"/{name}?", 1)
    try:
        asyncio.run(migrate_url(url))
        yield url
    finally:
        asyncio.run(_execute(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        if server is not None:
            server.close()


async def _execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def pss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_full_info().pss) / 2**20


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    return f"median {statistics.median(ordered):.3f}, min {ordered[0]:.3f}, max {ordered[-1]:.3f}"
