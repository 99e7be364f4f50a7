"""The worker's environment, read from the running process: neonize's Go side must find NEONIZE_BOT_TAG=off when
the library loads, or every send to a phone number carries WhatsApp's "AI" label (<bot biz_bot="1"/>); glibc must find
a fixed mmap threshold as the process starts; and the app's secrets are not in it."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from app.settings import SECRET_VARIABLES, child_environment
from app.whatsapp.process import WorkerProcess
from app.whatsapp.protocol import WorkerSettings


def refusing_url() -> str:
    """A store URL whose port nobody listens on: neonize fails at its database, long before any dial."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/nothing?sslmode=disable"


def read_process(pid: int) -> tuple[list[bytes], str]:
    """The process's environment as it was exec'd, and its memory map (which libraries it loaded)."""
    return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"), Path(f"/proc/{pid}/maps").read_text()


async def test_the_neonize_worker_loads_the_library_with_the_bot_tag_off() -> None:
    def ignore(*_: Any) -> None:
        pass

    settings = WorkerSettings("neonize", refusing_url())
    worker = await WorkerProcess.spawn(settings, ignore, ignore, env={"NEONIZE_BOT_TAG": "on"})
    try:
        await asyncio.wait_for(worker.ready.wait(), 30)  # READY comes after the backend (and neonize) loaded
        environ, maps = await asyncio.to_thread(read_process, worker.pid)
    finally:
        await worker.stop()
    assert b"NEONIZE_BOT_TAG=off" in environ  # even when the operator's environment says otherwise
    assert b"MALLOC_MMAP_THRESHOLD_=131072" in environ  # a downloaded file's buffers go back to the system when freed
    assert "neonize-linux-amd64.so" in maps  # the Go library is loaded in that process, with that environment


async def test_the_worker_starts_without_the_apps_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    def ignore(*_: Any) -> None:
        pass

    monkeypatch.setenv("API_TOKEN", "api-token-in-the-web-process")
    monkeypatch.setenv("ADMIN_PASSWORD", "admin-password-in-the-web-process")
    monkeypatch.setenv("LANG", "C.UTF-8")
    settings = WorkerSettings("simulator", refusing_url())
    worker = await WorkerProcess.spawn(settings, ignore, ignore, env=child_environment())
    try:
        environ, _ = await asyncio.to_thread(read_process, worker.pid)
    finally:
        await worker.stop()
    names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
    assert not names & set(SECRET_VARIABLES)  # the database URL came in its settings frame, not the environment
    assert b"LANG=C.UTF-8" in environ  # everything else is passed on (a proxy for Go, the locale ...)
