"""whatsmeow's own view of a store, asked in a child process (the web process never imports neonize): the schema
version it creates, and the devices it loads from a store, creating its tables there if they are missing.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import logging
import os
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from app.errors import AppError
from app.settings import child_environment

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
DEVICE_SEPARATOR = "|\u0001|"  # how neonize's GetAllDevices joins devices
TIMEOUT = 30.0  # importing neonize takes ~0.5 s and opening a store well under a second; this is a hung child

DEVICES = "devices"  # open the store (whatsmeow creates or upgrades its tables) and list its devices, no connection
VERSION = "version"  # the schema version this whatsmeow creates, read from a scratch SQLite store

_bundled_version: dict[str, int] | None = None


class WhatsmeowError(AppError):
    """The whatsmeow child failed or did not answer."""


# `ask()` runs `python -m app.authimport.whatsmeow COMMAND`, which answers in JSON in a file (Go prints to stdout).
async def ask(command: str, store: str = "", timeout: float = TIMEOUT) -> dict[str, Any]:
    """Run one command in a child process and return its answer; WhatsmeowError if it fails."""
    with tempfile.TemporaryDirectory(prefix="whatsmeow-") as scratch:
        result = Path(scratch) / "result.json"
        env = child_environment()  # without the app's secrets
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.authimport.whatsmeow", command, "--result", str(result),
            cwd=scratch,  # a store name whatsmeow misreads as a file path would land here, not in the app
            env=env,
            stdin=asyncio.subprocess.PIPE,  # the store's name, never in argv: a Postgres URL holds a password
            stdout=asyncio.subprocess.DEVNULL,  # Go writes there
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            _, stderr = await asyncio.wait_for(process.communicate(store.encode()), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise WhatsmeowError(f"whatsmeow did not answer {command!r} within {timeout:g} s") from None
        finally:
            if process.returncode is None:  # cancelled: never leave the child behind
                process.kill()
                await process.wait()
        if process.returncode != 0 or not result.exists():
            lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
            last = lines[-1].strip() if lines else "no output"
            raise WhatsmeowError(f"whatsmeow {command} failed (exit {process.returncode}): {last[:300]}")
        answer: dict[str, Any] = json.loads(result.read_text())
        return answer


async def bundled_version() -> dict[str, int]:
    """{"version", "compat"} of the schema that the whatsmeow shipped with neonize creates (asked once per process)."""
    global _bundled_version
    if _bundled_version is None:
        answer = await ask(VERSION)
        _bundled_version = {"version": int(answer["version"]), "compat": int(answer["compat"])}
    return dict(_bundled_version)


async def devices(store: str) -> list[dict[str, Any]]:
    """The devices whatsmeow loads from `store` (a Postgres URL or a SQLite path), creating its tables if missing."""
    answer = await ask(DEVICES, store)
    found: list[dict[str, Any]] = answer["devices"]
    return found


# ---------------------------------------------------------------------------------------------------------------------
# The child side. Only this part imports neonize, and only in the child process.


def _list_devices(store: str) -> list[dict[str, Any]]:
    from app.whatsapp.neonize_backend import configure_neonize_logging, load_neonize

    load_neonize()  # imports neonize the way the worker does, undoing what its import does to the root logger
    configure_neonize_logging(logging.WARNING)
    from neonize.client import func_callback_bytes2, gocode, log_whatsmeow

    # whatsmeow's sqlstore.New (creates or upgrades the schema) + GetAllDevices (loads every device with its keys).
    # Called directly: neonize's get_all_devices_from_db reads an error as a device list (and fails with ValueError
    # on it) and splits a device on every comma, so a push name with a comma breaks it.
    callback = func_callback_bytes2(log_whatsmeow)
    raw = gocode.GetAllDevices(store.encode(), callback)
    text = (ctypes.string_at(raw) if isinstance(raw, int) else raw or b"").decode("utf-8", "replace")
    if text.startswith("error:"):
        raise WhatsmeowError(text.removeprefix("error:").strip())
    return [_device(entry) for entry in text.split(DEVICE_SEPARATOR) if entry]


def _device(entry: str) -> dict[str, Any]:
    """'jid,push name,business name,true|false' (the names may themselves hold commas)."""
    jid, _, rest = entry.partition(",")
    names, _, initialized = rest.rpartition(",")
    push_name = names.rpartition(",")[0]  # business names are rarely set, so a comma more likely sits in the push name
    return {"jid": jid, "push_name": push_name or None, "initialized": initialized == "true"}


def _scratch_version() -> dict[str, int]:
    with tempfile.TemporaryDirectory(prefix="whatsmeow-version-") as scratch:
        path = Path(scratch) / "scratch.db"
        _list_devices(str(path))
        connection = sqlite3.connect(path)
        try:
            version, compat = connection.execute("SELECT version, compat FROM whatsmeow_version").fetchone()
        finally:
            connection.close()
    return {"version": int(version), "compat": int(compat)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.authimport.whatsmeow")
    parser.add_argument("command", choices=(DEVICES, VERSION))
    parser.add_argument("--result", required=True, help="file to write the JSON answer to")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    store = sys.stdin.read().strip()
    try:
        if args.command == VERSION:
            answer: dict[str, Any] = _scratch_version()
        elif store:
            answer = {"devices": _list_devices(store)}
        else:
            print("give the store's name on standard input", file=sys.stderr)
            return 2
    except WhatsmeowError as error:
        print(error, file=sys.stderr)
        return 1
    partial = args.result + ".part"
    with open(partial, "w") as file:
        json.dump(answer, file)
    os.replace(partial, args.result)  # whole or not at all
    return 0


if __name__ == "__main__":
    sys.exit(main())
