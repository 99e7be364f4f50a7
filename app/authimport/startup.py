"""The import at app start, before the worker connects: find a file-based login, import it if Postgres has none.
It never stops the app: the outcome is logged and returned for /api/status, and the session then starts as usual.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from app.authimport import discovery, importer
from app.authimport.report import ALREADY_PAIRED, FAILED, IMPORTED, REFUSED, Report
from app.observability import report as report_error

log = logging.getLogger(__name__)

NONE = "none"  # nothing to import was found
SKIPPED = "skipped"  # not looked for (the simulator backend has its own store)


async def import_at_start(database_url: str, explicit: Path | None, directory: Path, backend: str) -> dict[str, Any]:
    """AUTH_MIGRATE_FROM (`explicit`) or what `directory` holds -> a JSON-ready summary. Never raises."""
    if backend != "neonize":
        return {"outcome": SKIPPED, "message": f"WHATSAPP_BACKEND={backend} does not use whatsmeow's store"}
    try:
        return await _import_at_start(database_url, explicit, directory)
    except Exception as error:  # the app must serve even when the import cannot run at all (e.g. Postgres is down)
        log.error("auth import: could not run, the session starts without it: %s", error)
        report_error(error)
        return {"outcome": FAILED, "reason": "error", "message": f"the import could not run: {error}"}


async def _import_at_start(database_url: str, explicit: Path | None, directory: Path) -> dict[str, Any]:
    if explicit is not None:
        path = explicit
    else:
        found = discovery.discover(directory)
        for empty in found.empty:
            log.info("auth import: %s is a whatsmeow store without a device (never paired); ignored", empty)
        if not found.anything:
            log.debug("auth import: no file-based session in %s", directory)
            return {"outcome": NONE, "message": f"no file-based session found in {directory}"}
        # One store: import it. Several, or only another library's session: the directory, whose import says why not.
        path = found.stores[0] if len(found.stores) == 1 else directory
    result = await importer.run(database_url, path, trigger="start")
    _log(result)
    return result.summary()


def _log(result: Report) -> None:
    if result.outcome == IMPORTED:
        rows = ", ".join(f"{table} {count}" for table, count in result.copied.items())
        log.info(
            "auth import: imported %s from %s (sha256 %s) in %.2f s: %s; the file is kept as a backup, unchanged",
            result.device.jid if result.device else "?", result.source, result.sha256, result.duration, rows,
        )  # fmt: skip
    elif result.outcome == ALREADY_PAIRED:
        log.info("auth import: %s", result.message)
    elif result.outcome == REFUSED:
        log.error("auth import refused (%s), nothing written: %s", result.reason, result.message)
    else:
        log.error("auth import failed (%s), nothing written: %s", result.reason, result.message)
