"""The real server process: serves /healthz, and on SIGTERM drains, shuts down and exits 0 within 20 s."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import pytest

from app.session.states import State
from tests.processes import ROOT, AppProcess


def procfile_command(kind: str) -> list[str]:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return shlex.split(line.partition(":")[2])
    raise AssertionError(f"no {kind}: line in the Procfile")


@pytest.mark.parametrize("how", ["python -m app", "Procfile web"])
def test_sigterm_shuts_down_cleanly(database_url: str, tmp_path: Path, how: str) -> None:
    command = procfile_command("web") if how == "Procfile web" else None
    if command:
        assert command[:3] == ["python", "-m", "hypercorn"]
        assert command[command.index("--workers") + 1] == "0"
        command = [sys.executable, *command[1:]]
    app = AppProcess(database_url, tmp_path / "app.log", command=command).start()
    try:
        health = app.wait_healthy()
        assert health["ok"] is True and health["state"] in {state.value for state in State}
        started = time.monotonic()
        status = app.terminate()
        elapsed = time.monotonic() - started
    finally:
        app.ensure_stopped()
    output = app.output()
    assert status == 0, output
    assert elapsed < 20
    assert "shutdown complete" in output
    assert "Traceback" not in output


def test_procfile_release_runs_migrations() -> None:
    assert procfile_command("release") == ["python", "-m", "app", "migrate"]
