"""An embedded Postgres (pgserver) for local runs and tests, so that nothing but Python is needed on the machine.

The data directory is reused across runs, which keeps the WhatsApp login across local restarts too.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
logging.getLogger("pgserver").setLevel(logging.WARNING)  # it logs every pg_ctl call at INFO


def _set_runtime_dir(runtime_dir: Path | None) -> None:
    """pgserver keeps its inter-process lock in the user's runtime dir, which it reads from XDG_RUNTIME_DIR, and
    warns when that is unset (as on CI and in containers). Set it for pgserver: the one in the settings, else a
    private one, the same for every process of this user."""
    if runtime_dir is None:
        runtime_dir = Path(tempfile.gettempdir()) / f"whatsapp-gateway-runtime-{os.getuid()}"
        runtime_dir.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir)


class EmbeddedPostgres:
    """A pgserver-managed Postgres listening on a Unix socket inside (or beside) its data directory."""

    def __init__(self, data_dir: Path, runtime_dir: Path | None = None) -> None:
        _set_runtime_dir(runtime_dir)
        from pgserver.postgres_server import get_server  # imported here: only local runs and tests need it

        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir.resolve()
        self._server: Any = get_server(self.data_dir, cleanup_mode="stop")

    def url(self, database: str = "postgres") -> str:
        uri: str = self._server.get_uri(database)
        return uri

    def stop(self) -> None:
        """Stop the server now (fast shutdown: open connections are closed, as in a real restart)."""
        import pgserver._commands

        pg_ctl = pgserver._commands.pg_ctl  # type: ignore[attr-defined]  # generated at import time
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self._server.system_user)

    def start(self) -> None:
        """Start the server again after stop(), on the same socket."""
        with self._server._lock:
            self._server.ensure_postgres_running()

    def close(self) -> None:
        """Release this process's handle; the server stops when no process holds one."""
        self._server.cleanup()
