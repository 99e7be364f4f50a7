"""File-auth import: a whatsmeow store with 10,000 rows in sessions and pre-keys into Postgres, with whatsmeow's tables
already there and into an empty database (median of 5, fresh database each). `python -m bench.auth_import`
(embedded Postgres, or BENCH_DATABASE_URL=postgresql://... for a server)."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from app.authimport import importer, whatsmeow
from app.authimport.report import IMPORTED
from bench.common import bench_database, summary
from tests.authimport.fake_store import FakeDevice, fill, make_empty_store

RUNS = 5
SESSIONS = 5_000
PRE_KEYS = 5_000
GOAL = 2.0


def make_store(directory: Path) -> tuple[Path, dict[str, int]]:
    path = directory / "neonize.db"
    asyncio.run(make_empty_store(path))
    rows = fill(path, [FakeDevice()], sessions=SESSIONS, pre_keys=PRE_KEYS)
    return path, rows


def import_once(source: Path, jid: str, sessions: int, *, store_ready: bool) -> float:
    """Seconds to import `source` into a fresh database; checks that every session came and whatsmeow loads `jid`."""
    with bench_database() as url:
        if store_ready:
            asyncio.run(whatsmeow.devices(url))  # whatsmeow's empty tables, as after a first failed connection
        started = time.perf_counter()
        report = asyncio.run(importer.run(url, source))
        elapsed = time.perf_counter() - started
        if report.outcome != IMPORTED or report.copied["whatsmeow_sessions"] != sessions:
            raise SystemExit(f"import {report.outcome}: {report.message}")
        devices = asyncio.run(whatsmeow.devices(url))
        if [device["jid"] for device in devices] != [jid]:
            raise SystemExit(f"whatsmeow does not load the imported device: {devices}")
    return elapsed


def measure(source: Path, jid: str, sessions: int) -> None:
    """RUNS imports each into a database with whatsmeow's tables and into an empty one; the figures against GOAL."""
    asyncio.run(whatsmeow.bundled_version())  # asked once per process; not part of an import's own work
    ready, fresh = [], []
    for run in range(RUNS):
        ready.append(import_once(source, jid, sessions, store_ready=True))
        fresh.append(import_once(source, jid, sessions, store_ready=False))
        print(f"run {run + 1}: import {ready[-1]:.3f} s; with whatsmeow creating its tables {fresh[-1]:.3f} s")
    print(f"import, whatsmeow's tables present (s): {summary(ready)}")
    print(f"import into an empty database, whatsmeow creates its tables first (s): {summary(fresh)}")
    met = statistics.median(ready) < GOAL, statistics.median(fresh) < GOAL
    print(f"goal: < {GOAL:g} s -> {met[0]} (with table creation: {met[1]})")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as directory:
        store, rows = make_store(Path(directory))
        size = store.stat().st_size / 2**20
        print(
            f"store: {sum(rows.values())} rows ({rows['whatsmeow_sessions']} sessions, "
            f"{rows['whatsmeow_pre_keys']} pre-keys, {rows['whatsmeow_identity_keys']} identity keys), {size:.1f} MB"
        )
        measure(store, FakeDevice().jid, rows["whatsmeow_sessions"])


if __name__ == "__main__":
    main()
