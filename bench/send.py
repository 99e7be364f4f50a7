"""Enqueue throughput and latency of POST /api/messages at concurrency 32 over loopback, and in the same run
GET /healthz on the same server as the framework's ceiling.

    python -m bench.send     # embedded Postgres, or BENCH_DATABASE_URL=postgresql://... for a server
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import psutil
import uvloop

from bench.common import bench_database
from bench.load import Result, request, run
from tests.processes import TOKEN, AppProcess

CONCURRENCY = 32
WARMUP = 500
REQUESTS = 10_000


def post_message(number: int) -> bytes:
    body = json.dumps({"to": "+6281234567890", "text": f"Your order #{number} has shipped."}).encode()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    return request("POST", "/api/messages", headers, body)


def get_health(number: int) -> bytes:
    return request("GET", "/healthz", {})


def cpu_seconds(server: psutil.Process) -> float:
    """User and system CPU of the server process: steadier than rates on a machine shared with other work."""
    return float(sum(server.cpu_times()[:2]))


async def measure(port: int, server: psutil.Process) -> tuple[Result, Result, float]:
    await run(port, get_health, WARMUP, CONCURRENCY)
    await run(port, post_message, WARMUP, CONCURRENCY)
    ceiling = await run(port, get_health, REQUESTS, CONCURRENCY)
    before = cpu_seconds(server)
    enqueue = await run(port, post_message, REQUESTS, CONCURRENCY)
    return ceiling, enqueue, (cpu_seconds(server) - before) * 1000 / REQUESTS


def main() -> None:
    with bench_database() as url:
        # LOG_LEVEL=WARNING: one access-log line per request would measure the terminal, not the app.
        app = AppProcess(url, Path(tempfile.mkdtemp()) / "app.log", env={"LOG_LEVEL": "WARNING"}).start()
        try:
            app.wait_healthy()
            server = psutil.Process(app.process.pid)
            ceiling, enqueue, cpu_ms = uvloop.run(measure(app.port, server))  # a light client: the server is measured
        finally:
            app.terminate()
            app.ensure_stopped()
    print(ceiling.line("GET /healthz (ceiling)"))
    print(enqueue.line("POST /api/messages") + f"; web process CPU {cpu_ms:.3f} ms per request")
    share = enqueue.rate / ceiling.rate
    print(f"enqueue rate is {100 * share:.0f} % of the ceiling")
    print(
        f"goals: >= 800 req/s -> {enqueue.rate >= 800}; p99 < 50 ms -> {enqueue.percentile(0.99) < 0.050}; "
        f">= 30 % of the ceiling -> {share >= 0.30}"
    )
    assert enqueue.statuses == {202: REQUESTS}, enqueue.statuses


if __name__ == "__main__":
    main()
