"""Run the real app as a child process in tests: start it, wait until it answers, stop it the way a platform does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "test-api-token-0123456789"
BASE_ENV = {
    "ADMIN_PASSWORD": "test-admin-password",
    "API_TOKEN": TOKEN,
    "SECRET_KEY": "test-secret-key-0123456789",
    "WHATSAPP_BACKEND": "simulator",
    "LOG_LEVEL": "INFO",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class AppProcess:
    """`python -m app` (or any command) with its output captured in a file for the test to read."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            key: value for key, value in os.environ.items() if key not in ("DYNO", "WEBHOOK_URL", "SENTRY_DSN")
        }
        environment.update(BASE_ENV)
        environment.update({"DATABASE_URL": database_url, "PORT": str(self.port), "DATA_DIR": str(log_path.parent)})
        environment.update(env or {})
        self.command = list(command or [sys.executable, "-m", "app"])
        self.env = environment
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> AppProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [part.replace("$PORT", str(self.port)) for part in self.command],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 30.0) -> dict[str, object]:
        """Poll /healthz until it answers 200 (readiness has no event to await from outside the process)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"app exited with {self.process.returncode}:\n{self.output()}")
            try:
                response = httpx.get(f"{self.url}/healthz", timeout=1.0)
                if response.status_code == 200:
                    body: dict[str, object] = response.json()
                    return body
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"app not healthy within {timeout} s:\n{self.output()}")

    def wait_state(self, *states: str, timeout: float = 30.0) -> str:
        """Poll /healthz until the session is in one of `states` (another process's state can only be polled)."""
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            seen = str(self.wait_healthy(timeout)["state"])
            if seen in states:
                return seen
            time.sleep(0.05)
        raise AssertionError(f"state {seen!r}, not one of {states}, after {timeout} s:\n{self.output()}")

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10.0)

    def terminate(self, timeout: float = 25.0) -> int:
        """SIGTERM, as Heroku sends on restart; return the exit status (SIGKILL and fail after `timeout`)."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> int:
        return self._signal(signal.SIGKILL, 10.0)

    def _signal(self, signum: int, timeout: float) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(f"app did not exit within {timeout} s of signal {signum}:\n{self.output()}") from None

    def ensure_stopped(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
