"""A database the app cannot use at start: one line naming the cause and the server (never the password), exit status
1, no traceback, and no login banner; the banner appears only once the app serves, and never for other commands."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db.database import server_of, start_failure
from tests.processes import AppProcess, free_port
from tests.test_server_process import procfile_command

PASSWORD = "s3cret-hunter2-password"
BANNER = "WhatsApp gateway: open"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts TCP connections (the kernel completes them from the backlog) and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def refuse_password(listener: socket.socket) -> None:
    """Just enough of the Postgres protocol to ask for a password and refuse it, as a server with md5/scram would."""
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:
            return  # the listener was closed: the test is over
        with connection:
            connection.settimeout(5)
            length, code = struct.unpack("!ii", connection.recv(8))
            if code == 80877103:  # SSLRequest: no TLS here
                connection.sendall(b"N")
                length, code = struct.unpack("!ii", connection.recv(8))
            connection.recv(length - 8)
            connection.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
            connection.recv(4096)  # the password message
            fields = b"SFATAL\0VFATAL\0C28P01\0M" + b'password authentication failed for user "postgres"\0\0'
            connection.sendall(b"E" + struct.pack("!i", 4 + len(fields)) + fields)


@pytest.fixture
def password_refusing_server() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        thread = threading.Thread(target=refuse_password, args=(listener,), daemon=True)
        thread.start()
        yield listener.getsockname()[1]
        listener.shutdown(socket.SHUT_RDWR)


def run_to_exit(url: str, log: Path, command: list[str] | None = None) -> tuple[int, str, float]:
    app = AppProcess(url, log, command=command).start()
    assert app.process is not None
    started = time.monotonic()
    try:
        status = app.process.wait(timeout=30)
    finally:
        app.ensure_stopped()
    return status, app.output(), time.monotonic() - started


CAUSES = {
    "refused": "connection refused (is Postgres running there, on that port?)",
    "down": "no server socket there (is Postgres running?)",
    "wrong password": 'the password was refused (password authentication failed for user "postgres")',
    "silent": "no answer within 5 s (the server accepts connections but does not respond)",
}
# Both entry points share the lifespan; two causes are enough for the second (hypercorn's command line).
CASES = [(case, "python -m app") for case in CAUSES] + [("refused", "Procfile web"), ("silent", "Procfile web")]


@pytest.mark.parametrize(("case", "how"), CASES)
def test_a_database_the_app_cannot_use_is_one_line_and_exit_1(
    case: str, how: str, tmp_path: Path, silent_server: int, password_refusing_server: int
) -> None:
    port = {
        "refused": free_port(),
        "silent": silent_server,
        "wrong password": password_refusing_server,
    }.get(case)
    url = (
        f"postgresql://postgres:{PASSWORD}@/postgres?host={tmp_path}/no-server-here"
        if case == "down"
        else f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/postgres"
    )
    server = f"the Unix socket in {tmp_path}/no-server-here" if case == "down" else f"127.0.0.1:{port}"
    command = None
    if how == "Procfile web":
        command = [sys.executable, *procfile_command("web")[1:]]
    status, output, elapsed = run_to_exit(url, tmp_path / "app.log", command)
    lines = output.strip().splitlines()
    assert status == 1, output
    assert len(lines) == 1, output
    assert lines[0].endswith(f" ERROR app.main: cannot start: Postgres at {server}: {CAUSES[case]}"), output
    assert PASSWORD not in output and "Traceback" not in output and BANNER not in output
    assert elapsed < 10


def test_the_banner_comes_once_the_app_serves_and_never_from_other_commands(database_url: str, tmp_path: Path) -> None:
    app = AppProcess(database_url, tmp_path / "app.log").start()
    try:
        app.wait_healthy()
        output = app.output()
        assert output.count(BANNER) == 1
        assert output.index(BANNER) > output.index("app.services: started")  # printed after the start, not before
    finally:
        app.terminate()
    for command in (["migrate"], ["migrate-auth", str(tmp_path / "absent.db"), "--dry-run"]):
        done = subprocess.run(
            [sys.executable, "-m", "app", *command],
            env=app.env,
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert BANNER not in done.stdout + done.stderr, command


def test_migrate_says_the_same_in_one_line(tmp_path: Path) -> None:
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/postgres"
    status, output, _ = run_to_exit(url, tmp_path / "migrate.log", [sys.executable, "-m", "app", "migrate"])
    assert status == 1
    assert output.strip().endswith(
        "migration failed: Postgres at " + url.split("@")[1].split("/")[0] + ": "
        "connection refused (is Postgres running there, on that port?)"
    ), output
    assert PASSWORD not in output and "Traceback" not in output


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (
            socket.gaierror(-2, "Name or service not known"),
            "the host name does not resolve (Name or service not known)",
        ),
        (OSError(113, "No route to host"), "the host is unreachable (No route to host)"),
        (OSError(101, "Network is unreachable"), "the host is unreachable (Network is unreachable)"),
        (TimeoutError(), "no answer within 5 s"),
    ],
)
def test_unreachable_hosts_are_named(error: OSError, says: str) -> None:
    # Reaching a host that does not resolve or has no route would leave this machine; the causes are mapped here.
    url = f"postgresql://user:{PASSWORD}@db.example.com:6543/app?sslmode=require"
    line = start_failure(url, error)
    assert line is not None and line.startswith(f"Postgres at db.example.com:6543: {says}")
    assert PASSWORD not in line and "user" not in line


def test_where_a_url_points() -> None:
    assert server_of(f"postgresql://u:{PASSWORD}@[::1]:5433/db") == "[::1]:5433"
    assert server_of("postgresql://u@/db?host=/var/run/postgresql") == "the Unix socket in /var/run/postgresql"
    assert server_of("postgresql://u@db/x") == "db:5432"
    assert start_failure("postgresql://u@db/x", ValueError("a bug")) is None  # a bug keeps its traceback
