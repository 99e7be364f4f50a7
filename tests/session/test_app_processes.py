"""The session across real app processes: restarts, a second instance on the same database, kill -9, SIGTERM."""

from __future__ import annotations

import time
from pathlib import Path

from tests.processes import AppProcess


def pair(app: AppProcess) -> None:
    app.wait_state("pairing")
    with app.api() as api:
        response = api.post("/api/simulator/pair", json={"phone": "+6281234567890", "push_name": "Toko Maju"})
        assert response.status_code == 202, response.text
    app.wait_state("connected")


def test_restart_reconnects_without_pairing(database_url: str, tmp_path: Path) -> None:
    first = AppProcess(database_url, tmp_path / "first.log").start()
    try:
        pair(first)
        assert first.terminate() == 0
    finally:
        first.ensure_stopped()
    second = AppProcess(database_url, tmp_path / "second.log").start()
    try:
        second.wait_state("connected", timeout=15)
        with second.api() as api:
            status = api.get("/api/status").json()
        assert status["account"]["phone"] == "+6281234567890"
        assert status["reason"] == "logged_in"
        assert [t["to"] for t in status["recent_transitions"][:3]] == ["connected", "connecting", "stopped"]
    finally:
        second.ensure_stopped()
    assert "pairing" not in second.output()


def test_two_processes_one_standby_takeover_after_kill_9(database_url: str, tmp_path: Path) -> None:
    first = AppProcess(database_url, tmp_path / "first.log").start()
    second = AppProcess(database_url, tmp_path / "second.log")
    try:
        pair(first)
        second.start()
        assert second.wait_state("standby") == "standby"
        with second.api() as api:
            status = api.get("/api/status").json()
            assert status["holder"]["state"] == "connected"
            assert api.post("/api/session/reconnect").status_code == 409  # standby takes no session actions
        first.kill()
        killed = time.monotonic()
        second.wait_state("connected", timeout=15)
        assert time.monotonic() - killed < 5  # "within a few seconds"
        with second.api() as api:
            status = api.get("/api/status").json()
        reasons = [t["reason"] for t in status["recent_transitions"]]
        assert "process_lost" in reasons  # the new holder closed what the killed one left open
        assert status["reason"] == "logged_in"
    finally:
        first.ensure_stopped()
        second.ensure_stopped()


def test_sigterm_with_a_hung_worker_still_exits_0_within_20_s(database_url: str, tmp_path: Path) -> None:
    app = AppProcess(database_url, tmp_path / "app.log").start()
    try:
        pair(app)
        with app.api() as api:
            assert api.post("/api/simulator/hang").status_code == 202
        started = time.monotonic()
        status = app.terminate()
        elapsed = time.monotonic() - started
    finally:
        app.ensure_stopped()
    assert status == 0, app.output()
    assert elapsed < 20
    assert "did not stop within 5 s; killing it" in app.output()
    assert "shutdown complete" in app.output()
