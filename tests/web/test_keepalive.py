"""A request whose body the app never reads (refused, or a route that takes none) leaves the connection usable."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.web.keepalive import has_body
from tests.processes import AppProcess


def test_unread_bodies_do_not_break_keep_alive_connections(database_url: str, tmp_path: Path) -> None:
    app = AppProcess(database_url, tmp_path / "app.log").start()
    try:
        app.wait_healthy()
        failures = []
        with httpx.Client(base_url=app.url, timeout=10) as client:  # one connection, reused
            for i in range(300):
                try:
                    if i % 3 == 0:
                        client.request("GET", "/api/status", headers={"Authorization": "Bearer no"}, content=b"x" * 64)
                    elif i % 3 == 1:
                        client.post("/api/session/pair-code", content=b'{"phone": "+6281234567890"}')
                    else:
                        assert client.get("/healthz").status_code == 200
                except httpx.TransportError as error:
                    failures.append(f"{i}: {error!r}")
        assert failures == []
    finally:
        app.terminate()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], False),
        ([(b"content-length", b"0")], False),
        ([(b"content-length", b"12")], True),
        ([(b"transfer-encoding", b"chunked")], True),
        ([(b"host", b"example.com")], False),
    ],
)
def test_only_requests_with_a_body_are_drained(headers: list[tuple[bytes, bytes]], expected: bool) -> None:
    assert has_body({"type": "http", "headers": headers}) is expected
