"""An embedded Postgres (pgserver) for local runs and tests, so that nothing but Python is needed on the machine.

The data directory is reused across runs, which keeps the WhatsApp login across local restarts too.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A pgserver-managed Postgres listening on a Unix socket inside (or beside) its data directory."""

    def __init__(self, data_dir: Path) -> None:
        # pgserver asks platformdirs for a runtime dir and warns when XDG_RUNTIME_DIR is unset; give it one.
        os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir.parent.resolve()))
        import pgserver  # imported here: only local runs and tests need it

        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir.resolve()
        self._server: Any = pgserver.get_server(self.data_dir, cleanup_mode="stop")

    def url(self, database: str = "postgres") -> str:
        uri: str = self._server.get_uri(database)
        return uri

    def stop(self) -> None:
        """Stop the server now (fast shutdown: open connections are closed, as in a real restart)."""
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self._server.system_user)

    def start(self) -> None:
        """Start the server again after stop(), on the same socket."""
        with self._server._lock:
            self._server.ensure_postgres_running()

    def close(self) -> None:
        """Release this process's handle; the server stops when no process holds one."""
        self._server.cleanup()
