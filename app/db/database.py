"""The asyncpg pool and the one place where connection-level driver errors become DatabaseUnavailable.

asyncpg's pool replaces a broken connection on the next acquire, so after a Postgres restart the requests that hit
the outage get DatabaseUnavailable (HTTP 503) and the next ones simply work: no restart of the app is needed.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlsplit

import asyncpg

from app.errors import DatabaseUnavailable, MigrationError

log = logging.getLogger(__name__)

ACQUIRE_TIMEOUT = 5.0  # seconds a request waits for a pooled connection before answering 503
COMMAND_TIMEOUT = 30.0

# Errors that mean "the server is unreachable or went away", as opposed to a bug in a query.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)
# ... and those plus the pool's own translation of them: what a loop that waits out an outage catches.
UNAVAILABLE: tuple[type[BaseException], ...] = (DatabaseUnavailable, *CONNECTION_ERRORS)


async def keep_session(connection: asyncpg.Connection) -> None:
    """Pool release hook. asyncpg's default sends RESET ALL / UNLISTEN * / pg_advisory_unlock_all() on every release,
    a round trip per request. Pooled connections here never keep session state (LISTEN and advisory locks live on
    dedicated connections; migrations unlock before release), and asyncpg still rolls back an open transaction."""


class Database:
    """A small pool (Heroku's Essential plans allow few connections) with translated connection errors."""

    def __init__(self, pool: asyncpg.Pool, max_size: int) -> None:
        self.pool = pool
        # First come, first served. asyncpg hands a released connection to whichever coroutine asks next, and a
        # waiter that loses that race goes to the back of the line again, so under load a few requests wait many
        # times longer than the rest. A FIFO semaphore with one permit per connection queues them in arrival order;
        # the pool then never has more askers than connections.
        self.turns = asyncio.Semaphore(max_size)

    @classmethod
    async def open(cls, url: str, *, max_size: int = 5) -> Database:
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=0,
                max_size=max_size,
                command_timeout=COMMAND_TIMEOUT,
                timeout=ACQUIRE_TIMEOUT,
                reset=keep_session,
            )
        except CONNECTION_ERRORS as error:
            raise DatabaseUnavailable(f"cannot connect to Postgres: {describe(error)}") from error
        return cls(pool, max_size)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; connection-level failures inside the block surface as DatabaseUnavailable."""
        try:
            connection = await self._check_out()
            try:
                yield connection
            finally:
                try:
                    await self.pool.release(connection, timeout=ACQUIRE_TIMEOUT)
                finally:
                    self.turns.release()
        except CONNECTION_ERRORS as error:
            raise DatabaseUnavailable(f"Postgres is unavailable: {describe(error)}") from error

    async def _check_out(self) -> asyncpg.Connection:
        """Wait for a turn, then take a pooled connection (opening one if needed): one deadline, ACQUIRE_TIMEOUT, for
        both, so a request waits at most that long before its 503 however the wait divides between the two."""
        async with asyncio.timeout(ACQUIRE_TIMEOUT):
            await self.turns.acquire()
            try:
                connection: asyncpg.Connection = await self.pool.acquire()
            except BaseException:
                self.turns.release()
                raise
            return connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.connection() as connection, connection.transaction():
            yield connection

    async def close(self, within: float = 5.0) -> None:
        try:
            await asyncio.wait_for(self.pool.close(), within)
        except TimeoutError:
            log.warning("database pool did not close within %.0f s; terminating its connections", within)
            self.pool.terminate()


def describe(error: BaseException) -> str:
    """A one-line description of a driver error that never includes the connection URL (it holds the password)."""
    return f"{type(error).__name__}: {error}".splitlines()[0][:300]


def server_of(url: str) -> str:
    """Where a database URL points, for messages: host and port, or the Unix socket's directory. Never the password
    (nor the user: the URL's user part is read only through urlsplit's parsed fields)."""
    parts = urlsplit(url)
    socket_dir = dict(parse_qsl(parts.query)).get("host", "")
    if socket_dir.startswith("/"):
        return f"the Unix socket in {socket_dir}"
    host = parts.hostname or socket_dir or "localhost"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port or 5432}"


def start_failure(url: str, error: BaseException) -> str | None:
    """One line saying why the app cannot start with this database, or None if `error` is not about the database
    (a bug, whose traceback is then worth having). Names the server, never the password."""
    if isinstance(error, MigrationError):
        return f"the database schema cannot be brought up to date: {error}"
    cause = error.__cause__ if isinstance(error, DatabaseUnavailable) and error.__cause__ else error
    what = _cause(cause)
    if what is None:
        if not isinstance(error, DatabaseUnavailable):
            return None
        what = str(error)
    return f"Postgres at {server_of(url)}: {what}"


def _cause(error: BaseException) -> str | None:
    if isinstance(error, asyncpg.InvalidPasswordError):
        return f"the password was refused ({error})"
    if isinstance(error, asyncpg.InvalidAuthorizationSpecificationError):
        return f"the login was refused ({error})"
    if isinstance(error, asyncpg.InvalidCatalogNameError):
        return str(error)  # database "x" does not exist
    if isinstance(
        error,
        (
            asyncpg.PostgresConnectionError,
            asyncpg.InsufficientResourcesError,  # too many connections
            asyncpg.CannotConnectNowError,  # starting up, shutting down, in recovery
            asyncpg.AdminShutdownError,
        ),
    ):
        return describe(error)
    if isinstance(error, TimeoutError):
        return f"no answer within {ACQUIRE_TIMEOUT:.0f} s (the server accepts connections but does not respond)"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is Postgres running there, on that port?)"
    if isinstance(error, FileNotFoundError):
        return "no server socket there (is Postgres running?)"
    if isinstance(error, socket.gaierror):
        return f"the host name does not resolve ({error.strerror})"
    if isinstance(error, OSError) and error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"the host is unreachable ({error.strerror})"
    if isinstance(error, (OSError, asyncpg.InterfaceError)):
        return f"the connection failed ({describe(error)})"
    return None
