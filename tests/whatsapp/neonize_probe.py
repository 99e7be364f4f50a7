"""One real NeonizeBackend connection attempt in a process of its own, for tests: a neonize client must not live in
the pytest process (Go panics kill it, one event loop per process, stop() may block).

    python -m tests.whatsapp.neonize_probe URL [--result FILE] [--timeout 30] [--hold]
        [--simulate-pairing timer|status --pairing-expiry SECONDS]

Writes what happened as JSON to FILE (default: stderr), never stdout, where Go prints. With --hold it then waits for
stdin to close before exiting, so a test can look at the database while the process is still alive.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import json
import logging
import os
import sys
import threading
import time
from typing import Any

from app.whatsapp.backend import DISCONNECTED, PAIRING_EXPIRED, BackendError
from app.whatsapp.intake import Intake
from app.whatsapp.neonize_backend import NeonizeBackend


class GoLogCounter(logging.Handler):
    """Counts whatsmeow's log records by level (they come back from Go as "whatsmeow.*" / "Whatsmeow.*")."""

    def __init__(self) -> None:
        super().__init__()
        self.levels: collections.Counter[str] = collections.Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.lower().startswith("whatsmeow"):
            self.levels[record.levelname] += 1


async def error_of(command: Any) -> dict[str, Any] | None:
    try:
        await command
    except BackendError as error:
        return {"message": str(error), "permanent": error.permanent}
    return None


def go_login_status(backend: NeonizeBackend, status: bytes) -> None:
    """Call the pairing-status callback the way Go does: from a thread of its own, with a C string's address."""
    text = ctypes.create_string_buffer(status)
    callback = backend._client._NewAClient__onLoginStatus
    thread = threading.Thread(target=callback, args=(None, ctypes.addressof(text)))
    thread.start()
    thread.join()


async def simulate_pairing(backend: NeonizeBackend, how: str, seen: dict[str, asyncio.Event]) -> dict[str, Any]:
    """A QR round as far as it can go offline, fed through neonize's own entry points (WhatsApp is unreachable)."""
    client = backend._client
    started = time.monotonic()
    await client.event._qr(client, b"2@ref,noise,identity,adv")  # what neonize's Go QR callback schedules
    result: dict[str, Any] = {"pair_error": await error_of(backend.pair_phone("15550002222"))}
    if how == "status":
        go_login_status(backend, b"timeout")
    await asyncio.wait_for(seen[PAIRING_EXPIRED].wait(), 10)
    result["expired_seconds"] = time.monotonic() - started
    go_login_status(backend, b"timeout")  # a second end of round must not make a second PAIRING_EXPIRED
    await asyncio.sleep(0.1)
    return result


async def probe(url: str, wait_seconds: float, pairing: str | None, pairing_expiry: float) -> dict[str, Any]:
    root = logging.getLogger()
    events: list[list[Any]] = []
    seen: dict[str, asyncio.Event] = collections.defaultdict(asyncio.Event)

    def emit(name: str, data: dict[str, Any]) -> None:
        json.dumps(data)  # the contract: JSON-serialisable data only (raising here shows up as a missing event)
        events.append([name, data])
        seen[name].set()

    intake = Intake(lambda frame: None)  # nothing incoming arrives offline
    backend = NeonizeBackend(url, emit, intake, pairing_expiry=pairing_expiry)
    # Nothing configured logging yet, so whatever is on the root logger now was left there by the neonize import.
    result: dict[str, Any] = {"root_handlers": len(root.handlers), "root_level": root.level}
    counter = GoLogCounter()
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    root.addHandler(counter)
    result["neonize_log_level"] = logging.getLogger("neonize.utils.log").level
    result["status_before"] = await backend.status()

    started = time.monotonic()
    await backend.connect()
    result["connect_seconds"] = time.monotonic() - started
    result["second_connect"] = await error_of(backend.connect())
    try:
        await asyncio.wait_for(seen[DISCONNECTED].wait(), wait_seconds)
    except TimeoutError:
        result["timed_out"] = True
    result["ended_seconds"] = time.monotonic() - started

    result["status"] = await backend.status()
    result["send_error"] = await error_of(backend.send_text("15550002222", "probe"))
    result["pair_error"] = await error_of(backend.pair_phone("+15550002222"))
    if pairing is not None:
        result["pairing"] = await simulate_pairing(backend, pairing, seen)

    started = time.monotonic()
    await backend.stop()
    await backend.stop()
    result["stop_seconds"] = time.monotonic() - started
    result["status_after"] = await backend.status()
    # Go's log lines reach Python through a queue and a thread; let them all arrive before counting.
    sys.modules["neonize.utils.log"]._log_queue.join()
    result["go_log_levels"] = dict(counter.levels)
    result["events"] = events
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--result")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--hold", action="store_true")
    parser.add_argument("--simulate-pairing", choices=("timer", "status"))
    parser.add_argument("--pairing-expiry", type=float, default=75.0)
    args = parser.parse_args()
    result = json.dumps(asyncio.run(probe(args.url, args.timeout, args.simulate_pairing, args.pairing_expiry)))
    if args.result:
        # Written whole, then renamed: a test polling for the file never reads half of it.
        with open(args.result + ".part", "w") as file:
            file.write(result)
        os.replace(args.result + ".part", args.result)
    else:
        print(result, file=sys.stderr)
    if args.hold:
        sys.stdin.read()


if __name__ == "__main__":
    main()
