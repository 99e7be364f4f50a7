"""`python -m app status` as an operator runs it beside a serving app (as `heroku run` does): it reads what the
serving process stored, prints the page's figures in words and says by its exit status whether the session is
connected; a logout from the phone reaches it (and /api/status) without the old account."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.processes import ROOT, AppProcess

PHONE = "+6281234567890"


def status_command(app: AppProcess, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "status"],
        cwd=ROOT,
        env={**app.env, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_status_command_follows_the_serving_process(database_url: str, tmp_path: Path) -> None:
    app = AppProcess(database_url, tmp_path / "app.log").start()
    try:
        app.wait_state("pairing")
        pairing = status_command(app)
        assert pairing.returncode == 1, pairing.stderr
        assert pairing.stdout.startswith("WhatsApp gateway: Waiting to be linked")

        with app.api() as api:
            assert api.post("/api/simulator/pair", json={"phone": PHONE, "push_name": "Toko Maju"}).status_code == 202
        app.wait_state("connected")
        connected = status_command(app)
        assert connected.returncode == 0, connected.stdout + connected.stderr
        text = connected.stdout
        assert text.startswith("WhatsApp gateway: Connected")
        assert f"Phone: {PHONE}" in text and "Name: Toko Maju" in text
        for heading in ("Health", "Storage and queues", "Recent transitions"):
            assert f"\n{heading}\n" in text
        assert "Heartbeat:" in text and "WhatsApp process: kept by the serving process" in text
        assert "linked with the QR code" in text and "UTC" in text
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", text), text  # no snake_case key, no raw dict
        assert "{" not in text and "Reconnect now" not in text

        # The phone unlinks the device: no account any more, and both views say what happened.
        with app.api() as api:
            assert api.post("/api/simulator/disconnect", json={"reason": "logged_out"}).status_code == 202
            app.wait_state("pairing", "logged_out")
            status = api.get("/api/status").json()
        assert status["account"] is None
        assert status["unlinked"]["by_operator"] is False and status["unlinked"]["at"]
        unlinked = status_command(app)
        assert unlinked.returncode == 1
        assert "WhatsApp on the phone unlinked this gateway" in unlinked.stdout
        assert PHONE not in unlinked.stdout
    finally:
        assert app.terminate() == 0
    stopped = status_command(app)
    assert stopped.returncode == 1 and stopped.stdout.startswith("WhatsApp gateway: Stopped")


def test_status_command_without_the_database(tmp_path: Path) -> None:
    app = AppProcess("postgresql://nobody@127.0.0.1:9/none", tmp_path / "app.log")
    result = status_command(app)
    assert result.returncode == 2
    assert "cannot read the status" in result.stderr and "127.0.0.1" in result.stderr
    assert result.stdout == ""
