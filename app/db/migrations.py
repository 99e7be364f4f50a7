"""Versioned SQL migrations: numbered files in app/db/migrations, applied in order under an advisory lock.

Each file runs in its own transaction and is recorded in `schema_migrations` with a checksum, so a second run is a
no-op, two processes starting at once (release phase and web dyno) do not collide, and an edited migration is refused.
whatsmeow's own tables (`whatsmeow_*`) are created and migrated by whatsmeow; nothing here touches them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from pathlib import Path

import asyncpg

from app.errors import MigrationError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATION_LOCK_KEY = 0x77616761_6D696772  # "wagamigr": an advisory-lock key no other code uses
FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""
SELECT_APPLIED = "SELECT version, checksum FROM schema_migrations"
INSERT_APPLIED = "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file {path.name} is not named NNNN_name.sql")
        sql = path.read_text()
        if re.search(r"\bwhatsmeow_", sql, re.IGNORECASE):
            raise MigrationError(f"migration {path.name} touches whatsmeow's tables, which belong to whatsmeow")
        migrations.append(Migration(int(match.group(1)), match.group(2), sql))
    versions = [migration.version for migration in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return migrations


async def migrate(connection: asyncpg.Connection, migrations: list[Migration] | None = None) -> list[Migration]:
    """Bring the schema up to date; return the migrations that this call applied."""
    migrations = load_migrations() if migrations is None else migrations
    await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await connection.execute(CREATE_TABLE)
        applied = {row["version"]: row["checksum"] for row in await connection.fetch(SELECT_APPLIED)}
        done = []
        for migration in migrations:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was edited after it was applied; "
                        "add a new migration instead"
                    )
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(INSERT_APPLIED, migration.version, migration.name, migration.checksum)
            log.info("applied migration %04d_%s", migration.version, migration.name)
            done.append(migration)
        return done
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def migrate_url(url: str) -> list[Migration]:
    """Apply migrations over a dedicated connection (used at start and by `python -m app migrate`)."""
    connection = await asyncpg.connect(url)
    try:
        return await migrate(connection)
    finally:
        await connection.close()
