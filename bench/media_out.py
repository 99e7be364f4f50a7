"""One 16 MB document sent through the queue, end to end with real processes: uploaded with `POST /api/media`
(streamed to a temporary file, stored in Postgres), queued with `POST /api/messages {"document": {"media_id"}}`, read
by the sender when its turn comes, handed to the real worker as a file, and "sent" by the simulated server, which
reads it whole and checks nothing more. The time from the message's POST to its `sent` status (polled every 10 ms),
the upload's own time, and the resident memory the web process and the worker grew above idle (VmHWM, reset first).
Three rounds, each a new file of random bytes (nothing compresses it).

    python -m bench.media_out       # embedded Postgres, or BENCH_DATABASE_URL=postgresql://... for a server
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import bench_database
from bench.media_in import Memory, worker_pid
from tests.processes import AppProcess
from tests.session.test_app_processes import pair

SIZE = 16 * 2**20  # MEDIA_MAX_BYTES's default: the largest file the app takes
ROUNDS = 3
POLL = 0.01
WAIT = 120.0  # a round may not take longer than this
CUSTOMER = "+6281234567890"
# No spacing between sends: the time measured is the path's, not the rate limit's (20 a minute, 2 s apart).
PACE = {"LOG_LEVEL": "WARNING", "SEND_MIN_INTERVAL": "0", "SEND_RATE_PER_MINUTE": "600"}


def send_once(api: httpx.Client) -> tuple[float, float]:
    """(upload seconds, seconds from the message's POST to `sent`) of one document of SIZE random bytes."""
    data = os.urandom(SIZE)
    started = time.perf_counter()
    uploaded = api.post("/api/media", files={"file": ("report.bin", data, "application/octet-stream")}, timeout=WAIT)
    uploaded.raise_for_status()
    upload = time.perf_counter() - started
    media_id = uploaded.json()["media_id"]
    del data
    posted = time.perf_counter()
    body = {"to": CUSTOMER, "document": {"media_id": media_id, "file_name": "laporan-bulanan.bin"}}
    queued = api.post("/api/messages", json=body, timeout=WAIT)
    queued.raise_for_status()
    message = queued.json()
    while message["status"] not in ("sent", "failed"):
        if time.perf_counter() - posted > WAIT:
            raise SystemExit(f"the document was not sent within {WAIT:.0f} s: {message}")
        time.sleep(POLL)  # no event reaches this client; the poll's 10 ms is the resolution
        message = api.get(f"/api/messages/{message['id']}").json()
    if message["status"] != "sent":
        raise SystemExit(f"the document was not sent: {message}")
    return upload, time.perf_counter() - posted


def main() -> None:
    with bench_database() as url:
        app = AppProcess(url, Path(tempfile.mkdtemp()) / "app.log", env=PACE).start()
        try:
            pair(app)
            memory = Memory({"web": app.pid, "worker": worker_pid(app)})
            with app.api() as api:
                for _ in range(3):  # the paths of a message are warm before the idle reading
                    api.post("/api/messages", json={"to": CUSTOMER, "text": "warm-up"}).raise_for_status()
                time.sleep(1.0)  # no event says a process's memory has settled
                memory.read_idle()
                for number in range(1, ROUNDS + 1):
                    memory.reset_peak()
                    upload, sent = send_once(api)
                    peak = memory.peak()
                    print(
                        f"round {number}: {SIZE // 2**20} MB document: upload {upload * 1000:.0f} ms, "
                        f"POST to sent {sent * 1000:.0f} ms; peak RSS above idle: "
                        + ", ".join(f"{name} +{peak[name] - memory.idle[name]:.1f} MB" for name in peak),
                        flush=True,
                    )
            assert app.terminate() == 0, app.output()
        finally:
            app.ensure_stopped()


if __name__ == "__main__":
    main()
