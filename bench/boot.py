"""Boot time (process start to the first 200 from /healthz, schema already migrated; median of 5) and idle RSS.

python bench/boot.py            # embedded Postgres, or BENCH_DATABASE_URL=postgresql://... for a server
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import ROOT, bench_database, rss_mb, summary

sys.path.insert(0, str(ROOT))
from tests.processes import AppProcess

RUNS = 5
IDLE_SECONDS = 3.0


def main() -> None:
    boots: list[float] = []
    rss: list[float] = []
    with bench_database() as url:
        for run in range(RUNS):
            app = AppProcess(url, Path(tempfile.mkdtemp()) / "app.log")
            started = time.perf_counter()
            app.start()
            try:
                while True:  # tight poll: the figure is the first moment /healthz answers
                    try:
                        if httpx.get(f"{app.url}/healthz", timeout=1).status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.005)
                boots.append(time.perf_counter() - started)
                time.sleep(IDLE_SECONDS)  # let start-up work settle before reading idle memory
                rss.append(rss_mb(app.pid))
                assert app.terminate() == 0, app.output()
            finally:
                app.ensure_stopped()
            print(f"run {run + 1}: boot {boots[-1]:.3f} s, idle RSS {rss[-1]:.1f} MB", flush=True)
    print(f"boot to first /healthz 200 (s): {summary(boots)}")
    print(f"web process idle RSS (MB): {summary(rss)}")
    print(f"goals: boot < 1.5 s -> {statistics.median(boots) < 1.5}; RSS < 60 MB -> {statistics.median(rss) < 60}")


if __name__ == "__main__":
    main()
