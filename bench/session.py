"""Session benchmarks with real processes:

1. start to `connected` with the simulator and a stored device (median of 5 app starts);
2. worker respawn after a crash: from the crash command to `connected` again (median of 5);
3. memory with the neonize backend: PSS of the web process plus its worker (see neonize_memory for how, offline).

    python -m bench.session          # embedded Postgres, or BENCH_DATABASE_URL=postgresql://... for a server
"""

from __future__ import annotations

import socket
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from bench.common import bench_database, pss_mb, summary
from tests.processes import AppProcess

RUNS = 5
POLL = 0.005


def wait_state(app: AppProcess, state: str, timeout: float = 30.0) -> float:
    """Tight poll of /healthz; returns the moment (perf_counter) the state was first seen."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            if httpx.get(f"{app.url}/healthz", timeout=1).json().get("state") == state:
                return time.perf_counter()
        except httpx.TransportError:
            pass
        time.sleep(POLL)
    raise SystemExit(f"{state!r} not reached within {timeout} s:\n{app.output()}")


def refused_proxy() -> dict[str, str]:
    """Proxy variables naming a port on 127.0.0.1 nobody listens on: whatsmeow's websocket honours HTTPS_PROXY (see
    tests/whatsapp_stand_in.py), so its dial is refused there instead of reaching WhatsApp."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    return {"HTTPS_PROXY": url, "https_proxy": url, "NO_PROXY": "", "no_proxy": ""}


def new_app(url: str, **env: str) -> AppProcess:
    return AppProcess(url, Path(tempfile.mkdtemp()) / "app.log", env=env)


def restore_and_respawn(url: str) -> tuple[list[float], list[float]]:
    first = new_app(url).start()
    try:
        wait_state(first, "pairing")
        with first.api() as api:
            api.post("/api/simulator/pair", json={"phone": "+6281234567890"}).raise_for_status()
        wait_state(first, "connected")
        assert first.terminate() == 0
    finally:
        first.ensure_stopped()

    restores, respawns = [], []
    for run in range(RUNS):
        app = new_app(url)
        started = time.perf_counter()
        app.start()
        try:
            restores.append(wait_state(app, "connected") - started)
            with app.api() as api:
                crashed = time.perf_counter()
                api.post("/api/simulator/crash").raise_for_status()
                wait_state(app, "reconnecting")
                respawns.append(wait_state(app, "connected") - crashed)
            assert app.terminate() == 0
        finally:
            app.ensure_stopped()
        print(f"run {run + 1}: start->connected {restores[-1]:.3f} s, crash->connected {respawns[-1]:.3f} s")
    return restores, respawns


SAMPLE_SECONDS = 20.0


def neonize_memory(url: str) -> tuple[float, float]:
    """PSS of the web process plus a neonize worker that has imported neonize and made its connection attempt.

    No worker ever stays connected: each one dials through a proxy address on 127.0.0.1 where nothing listens (never
    WhatsApp, with or without internet), fails and is retired, and the next comes after a backoff. So sample both
    processes every 20 ms for a while and keep the largest combined reading.
    """
    app = new_app(url, WHATSAPP_BACKEND="neonize", **refused_proxy()).start()
    best = (0.0, 0.0)
    try:
        app.wait_healthy()
        deadline = time.monotonic() + SAMPLE_SECONDS
        while time.monotonic() < deadline:
            for child in psutil.Process(app.pid).children():
                try:
                    reading = (pss_mb(app.pid), pss_mb(child.pid))
                except psutil.NoSuchProcess:
                    continue
                best = max(best, reading, key=sum)
            time.sleep(0.02)
    finally:
        app.terminate()
        app.ensure_stopped()
    if best == (0.0, 0.0):
        raise SystemExit("no neonize worker was seen")
    return best


def main() -> None:
    with bench_database() as url:
        restores, respawns = restore_and_respawn(url)
    with bench_database() as url:
        web, worker = neonize_memory(url)
    print(f"start -> connected, simulator, stored device (s): {summary(restores)}")
    print(f"crash -> connected again (s): {summary(respawns)}")
    print(f"peak PSS, neonize backend: web {web:.1f} MB + worker {worker:.1f} MB = {web + worker:.1f} MB")
    print(
        f"goals: restore < 2 s -> {statistics.median(restores) < 2}; respawn < 1.5 s -> "
        f"{statistics.median(respawns) < 1.5}; PSS < 130 MB -> {web + worker < 130}"
    )


if __name__ == "__main__":
    main()
