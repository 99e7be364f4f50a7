"""Hostile request bodies: RSS of the web process while 3 clients each send a 60 MB body at once, to POST /login
(no credentials) and to POST /api/messages (with the API token), with a Content-Length and chunked (no length).

python -m bench.hostile                 # the app of this checkout; embedded Postgres unless BENCH_DATABASE_URL is set
python -m bench.hostile --app-dir DIR   # the app of another checkout (a `git worktree add` of an older commit)

Loopback only. Each client sends until the server answers or closes the connection, or the body is all sent; every
wait is bounded (CLIENT_SECONDS), and the app is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.common import ROOT, bench_database, rss_mb

sys.path.insert(0, str(ROOT))
from tests.processes import TOKEN, AppProcess

CLIENTS = 3
BODY = 60 * 2**20
PIECE = 64 * 1024
CLIENT_SECONDS = 60.0
SCENARIOS = [
    ("/login", False, False),
    ("/login", False, True),
    ("/api/messages", True, False),
    ("/api/messages", True, True),
]


async def hostile_client(port: int, path: str, authenticated: bool, chunked: bool) -> str:
    """Send one 60 MB body; return what came back ("413", "401", ...) and how much of the body went out."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = f"Authorization: Bearer {TOKEN}\r\n" if authenticated else ""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {BODY}"
    writer.write(f"POST {path} HTTP/1.1\r\nHost: bench\r\n{auth}{framing}\r\n\r\n".encode())
    answer = asyncio.create_task(reader.read(4096))
    payload = b"a" * PIECE
    piece = f"{PIECE:x}\r\n".encode() + payload + b"\r\n" if chunked else payload
    sent = 0
    try:
        while sent < BODY and not answer.done():
            writer.write(piece)
            await writer.drain()
            sent += PIECE
        if chunked and not answer.done():
            writer.write(b"0\r\n\r\n")
        first = await asyncio.wait_for(answer, CLIENT_SECONDS)
        outcome = first.split(b" ", 2)[1].decode() if first else "closed without an answer"
    except (ConnectionError, TimeoutError) as error:
        outcome = f"{type(error).__name__}"
        if answer.done() and not answer.cancelled() and answer.exception() is None and answer.result():
            outcome = answer.result().split(b" ", 2)[1].decode()
    finally:
        answer.cancel()
        writer.close()
    return f"{outcome} after {sent / 2**20:.1f} MB sent"


async def scenario(
    pid: int, port: int, path: str, authenticated: bool, chunked: bool
) -> tuple[float, float, list[str]]:
    """Peak and settled RSS (MB) while and after CLIENTS bodies go out at once, and what each client got."""
    peak = rss_mb(pid)
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    try:
        async with asyncio.timeout(CLIENT_SECONDS * 2):
            outcomes = await asyncio.gather(
                *(hostile_client(port, path, authenticated, chunked) for _ in range(CLIENTS))
            )
    finally:
        done.set()
        await sampler
    await asyncio.sleep(1.0)  # let the process release what it held before reading the settled figure
    return peak, rss_mb(pid), outcomes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="the checkout whose app to run")
    args = parser.parse_args()
    with bench_database() as url:
        app = AppProcess(url, Path(tempfile.mkdtemp()) / "app.log")
        app.process = subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=args.app_dir,
            env=app.env,
            stdout=app.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            app.wait_healthy()
            time.sleep(2.0)  # start-up work settles before the baseline is read
            baseline = rss_mb(app.pid)
            print(f"app: {args.app_dir}; web process RSS at rest: {baseline:.1f} MB", flush=True)
            worst = 0.0
            for path, authenticated, chunked in SCENARIOS:
                peak, after, outcomes = asyncio.run(scenario(app.pid, app.port, path, authenticated, chunked))
                worst = max(worst, peak - baseline)
                how = "chunked" if chunked else "Content-Length"
                print(
                    f"POST {path} ({'token' if authenticated else 'no credentials'}, {how}), {CLIENTS} x 60 MB: "
                    f"peak RSS {peak:.1f} MB (+{peak - baseline:.1f}), after {after:.1f} MB; clients got: "
                    + "; ".join(outcomes),
                    flush=True,
                )
            print(f"largest growth over the rest figure: {worst:.1f} MB; goal < 30 MB -> {worst < 30}")
            children = psutil.Process(app.pid).children()
            assert children, "the session worker is running beside the web process"
        finally:
            app.terminate()
            app.ensure_stopped()


if __name__ == "__main__":
    main()
