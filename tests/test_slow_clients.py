"""Slow and idle clients: a connection that sends half a request head is closed by hypercorn's timer, a body that
trickles is answered 408, and the page's live event stream outlives that timer (it is not subject to it)."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import httpx

from app import hypercorn_config
from app.web import page
from tests.processes import TOKEN, AppProcess
from tests.test_server_process import procfile_command

KEEP_ALIVE = 2  # the test's own value for the timer (the deployed one is above Heroku's router's 90 s)


def test_the_deployed_timeouts_fit_the_router_and_the_event_stream() -> None:
    assert hypercorn_config.keep_alive_timeout > 90  # Heroku's router closes idle connections first
    retry = page.RETRY_MILLISECONDS / 1000
    assert hypercorn_config.read_timeout > page.STREAM_SECONDS + retry  # a silent browser on /events is healthy
    assert hypercorn_config.h11_max_incomplete_size <= 16 * 1024


def test_half_a_request_is_closed_and_the_event_stream_outlives_the_timer(database_url: str, tmp_path: Path) -> None:
    # The Procfile's command, with the timer shortened so the test takes seconds rather than minutes.
    command = [sys.executable, *procfile_command("web")[1:], "--keep-alive", str(KEEP_ALIVE)]
    app = AppProcess(database_url, tmp_path / "app.log", command=command).start()
    try:
        app.wait_healthy()
        with (
            httpx.Client(base_url=app.url, timeout=15) as http,
            http.stream("GET", "/events", headers={"Authorization": f"Bearer {TOKEN}"}) as events,
        ):
            assert events.status_code == 200
            opened = time.monotonic()
            with socket.create_connection(("127.0.0.1", app.port), timeout=KEEP_ALIVE + 5) as slow:
                slow.sendall(b"GET /heal")  # half a request line, and then nothing
                sent = time.monotonic()
                assert slow.recv(1024) == b""  # closed by the server (a timeout here would fail the test)
                closed_after = time.monotonic() - sent
            assert KEEP_ALIVE - 0.5 <= closed_after <= KEEP_ALIVE + 2
            # The stream, opened before the slow connection, is still delivering after the timer fired: the page
            # refreshes every REFRESH_SECONDS, so wait for the messages that come later than the timer.
            pages = 0
            for line in events.iter_lines():
                if line == "event: page":
                    pages += 1
                if pages >= 2 and time.monotonic() - opened > KEEP_ALIVE + 1:
                    break
            assert time.monotonic() - opened > KEEP_ALIVE + 1 and pages >= 2
    finally:
        app.terminate()
