"""Incoming media, end to end with real processes: 200 images of 1 MB (PNGs of random pixels, so nothing compresses
them) from 10 chats go from the simulated server through the real worker (downloaded, checked, handed over as a file)
into Postgres with their message, and out as signed `message.received` events to a loopback receiver (a process of
its own), which checks each event's `media` (size, sha256, id).

Two runs of 200, each from a paired, idle app:
1. streamed: one injection call per image, chats in turn, as fast as the API takes them;
2. burst: one call per chat with `count` 20, so all 200 wait at the simulated server at once and the pipeline (worker,
   store, dispatcher) alone sets the pace.
Each image's caption is the moment its injection call was made; latency = the receiver's arrival time minus that (in
the burst it includes the wait in the queue). MB/s = the bytes of all images / (last event's arrival - first
injection). Memory: VmRSS of the web process and of the worker at idle (paired, after a warm-up of text messages, no
media yet), their peak during each run (VmHWM, reset by writing 5 to /proc/PID/clear_refs before it) and after the
last; growth = peak - idle.

    python -m bench.media_in        # embedded Postgres, or BENCH_DATABASE_URL=postgresql://... for a server
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.common import bench_database
from bench.receiver import ReceiverProcess, paired_app
from tests.processes import AppProcess

IMAGES, CHATS, SIZE = 200, 10, 2**20
WARMUP = 50  # text messages before the idle reading: the pools, caches and code paths of a message are warm
BURST = IMAGES // CHATS  # images per injection call in the burst run
WAIT = 120.0  # the run may not take longer than this
GOAL_MB_S = 20.0


# ---- memory -----------------------------------------------------------------------------------------------------


def status_kb(pid: int, field: str) -> int:
    """A figure of /proc/PID/status in kB (VmRSS: resident now; VmHWM: the peak since the last reset)."""
    for text in Path(f"/proc/{pid}/status").read_text().splitlines():
        if text.startswith(field + ":"):
            return int(text.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS (proc(5))


class Memory:
    """The web process's and the worker's resident memory: at idle, at the peak since `reset_peak`, now."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.idle: dict[str, float] = {}

    def read_idle(self) -> None:
        self.idle = self.now()

    def reset_peak(self) -> None:
        for pid in self.pids.values():
            reset_peak(pid)

    def peak(self) -> dict[str, float]:
        return {name: status_kb(pid, "VmHWM") / 1024 for name, pid in self.pids.items()}

    def now(self) -> dict[str, float]:
        return {name: status_kb(pid, "VmRSS") / 1024 for name, pid in self.pids.items()}


# ---- the run ----------------------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def inject(app: AppProcess, count: int, per_call: int = 1, kind: str = "image") -> float:
    """`count` images of SIZE bytes (or text messages), `per_call` in each call, chats in turn; the caption of each is
    its injection time. Returns the time of the first injection."""
    media = {"media": {"size": SIZE}} if kind == "image" else {}
    with app.api() as api:
        first = time.time()
        for number in range(count // per_call):
            body = {"from": f"+628240000{number % CHATS:04d}", "type": kind, "text": f"{time.time():.6f}", **media}
            if per_call > 1:
                body["count"] = per_call
            api.post("/api/simulator/incoming", json=body, timeout=60).raise_for_status()
    return first


def check(events: list[tuple[float, str, dict[str, Any]]]) -> None:
    """Every event carries a stored file of SIZE bytes: nothing was dropped or turned into an error."""
    for _, _, media in events:
        if media.get("size") != SIZE or not media.get("id") or "error" in media or len(str(media["sha256"])) != 64:
            raise SystemExit(f"an event's media is not a stored {SIZE}-byte file: {media}")


def worker_pid(app: AppProcess) -> int:
    with app.api() as api:
        pid: int = api.get("/api/status").json()["worker"]["pid"]
    return pid


def run(app: AppProcess, receiver: ReceiverProcess, memory: Memory, name: str, per_call: int) -> dict[str, float]:
    """One run of IMAGES images: prints its figures and returns them (MB/s, p99 ms, each process's peak RSS)."""
    memory.reset_peak()
    first = inject(app, IMAGES, per_call)
    events = receiver.wait_messages(IMAGES, WAIT)
    peak = memory.peak()
    check(events)
    assert len({str(media["id"]) for _, _, media in events}) == IMAGES  # each image stored once, none twice
    arrivals = sorted(at for at, _, _ in events)
    latencies = [(at - float(text)) * 1000 for at, text, _ in events]
    rate = IMAGES * SIZE / 2**20 / (arrivals[-1] - first)
    p99 = percentile(latencies, 0.99)
    print(
        f"{name}: {IMAGES} images of {SIZE // 1024} KB from {CHATS} chats: {rate:.1f} MB/s end to end "
        f"({arrivals[-1] - first:.2f} s); latency p50 {percentile(latencies, 0.5):.0f} ms, p99 {p99:.0f} ms, "
        f"max {max(latencies):.0f} ms; peak RSS above idle: "
        + ", ".join(f"{process} +{peak[process] - memory.idle[process]:.1f} MB" for process in peak),
        flush=True,
    )
    return {"rate": rate, "p99": p99, **{f"peak {process}": peak[process] for process in peak}}


def main() -> None:
    receiver = ReceiverProcess()
    try:
        with bench_database() as url, paired_app(url, receiver) as app:
            memory = Memory({"web": app.pid, "worker": worker_pid(app)})
            inject(app, WARMUP, kind="text")
            receiver.wait_messages(WARMUP, WAIT)
            time.sleep(1.0)  # no event says a process's memory has settled: the warm-up's garbage is freed
            memory.read_idle()
            streamed = run(app, receiver, memory, "streamed", 1)
            burst = run(app, receiver, memory, "burst", BURST)
            time.sleep(1.0)
            after = memory.now()
    finally:
        receiver.stop()
    growth = {process: max(streamed[f"peak {process}"], burst[f"peak {process}"]) - memory.idle[process]
              for process in memory.pids}  # fmt: skip
    for process in memory.pids:
        print(
            f"{process}: RSS idle {memory.idle[process]:.1f} MB, peak +{growth[process]:.1f} MB, "
            f"after both runs {after[process]:.1f} MB"
        )
    largest = SIZE / 2**20
    rate = min(streamed["rate"], burst["rate"])
    print(
        f"goals: >= {GOAL_MB_S:.0f} MB/s -> {rate >= GOAL_MB_S}; RSS growth < 2 x the largest file "
        f"({2 * largest:.0f} MB): web -> {growth['web'] < 2 * largest}, worker -> {growth['worker'] < 2 * largest}"
    )


if __name__ == "__main__":
    main()
