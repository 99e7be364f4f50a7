"""Webhook delivery, end to end with real processes: the simulator injects messages through the real worker, the app
stores them with their events and POSTs them, signed, to a loopback receiver (a process of its own).

1. latency at a fixed 200 events/s for 15 s from 20 chats in turn (one message per injection call): from the
   injection call to the receiver;
2. sustained throughput: 20,000 messages from 40 chats, injected in batches of 500 (`"count"`), from the first
   injection to the last event received;
3. the ceiling: the same receiver driven by a bare loop (8 concurrent, signed bodies, no persistence), once making the
   dispatcher's own call per event (app.webhooks.attempt.post over its aiohttp session), once with a plain
   httpx.AsyncClient over httpx's default transport (for comparison).

    python -m bench.webhooks        # embedded Postgres, or BENCH_DATABASE_URL=postgresql://... for a server
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from typing import Any

import httpx
import psutil

from bench.common import bench_database
from bench.receiver import SECRET, ReceiverProcess, paired_app
from tests.processes import AppProcess

RATE = 200  # events/s for the latency run
RATE_SECONDS = 15
LATENCY_CHATS = 20  # the 200/s come from this many chats, in turn (one chat's events go out one at a time)
CHATS, PER_CHAT, BATCH = 40, 500, 500  # the throughput run: CHATS * PER_CHAT events
CEILING_EVENTS, CEILING_CONCURRENCY = 20_000, 8
WAIT = 300.0  # no phase may take longer than this


# ---- the phases -------------------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_run(app: AppProcess, receiver: ReceiverProcess) -> list[float]:
    """One message every 1/RATE s; each text is its injection time; latency = arrival - injection."""
    total = RATE * RATE_SECONDS
    with app.api() as api:
        start = time.perf_counter() + 0.1
        for number in range(total):
            delay = start + number / RATE - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sender = f"+628220000{number % LATENCY_CHATS:04d}"
            api.post("/api/simulator/incoming", json={"from": sender, "text": f"{time.time():.6f}"})
    seen = receiver.wait_messages(total, WAIT)
    return [(arrival - float(text)) * 1000 for arrival, text, _ in seen]


def throughput_run(app: AppProcess, receiver: ReceiverProcess) -> tuple[float, float, float, float]:
    """(events/s overall, events/s over the middle 80 % of arrivals, seconds until all were injected, ms of the web
    process's CPU per event: less disturbed than the rates by other work on the machine)."""
    total = CHATS * PER_CHAT
    assert app.process is not None
    web = psutil.Process(app.process.pid)
    cpu = sum(web.cpu_times()[:2])
    with app.api() as api:
        started = time.time()
        for _ in range(PER_CHAT // BATCH):
            for chat in range(CHATS):
                body = {"from": f"+628230000{chat:04d}", "text": "throughput", "count": BATCH}
                api.post("/api/simulator/incoming", json=body, timeout=60).raise_for_status()
        injected = time.time() - started
    arrivals = sorted(arrival for arrival, *_ in receiver.wait_messages(total, WAIT))
    cpu_ms = (sum(web.cpu_times()[:2]) - cpu) * 1000 / total
    overall = total / (arrivals[-1] - started)
    low, high = int(0.1 * total), int(0.9 * total)
    middle = (high - low) / (arrivals[high] - arrivals[low])
    return overall, middle, injected, cpu_ms


async def ceiling_run(url: str, lean: bool) -> float:
    """The receiver driven by a bare loop, 8 in flight, signed envelopes like the dispatcher's, nothing stored.

    `lean`: the very call the dispatcher makes per event (app.webhooks.attempt.post over the session made by
    app.webhooks.attempt.http_session); otherwise `httpx.AsyncClient().post` over httpx's default transport."""
    from app.webhooks import attempt, signing
    from app.webhooks.deliveries import Claimed

    session = attempt.http_session()
    numbers = iter(range(CEILING_EVENTS))

    def event(number: int) -> Claimed:
        data = f'{{"message_id": "3EB0{number:016X}", "text": "ceiling", "chat": "x@s.whatsapp.net"}}'
        now = dt.datetime.now(dt.UTC)
        return Claimed(number, 1, url, "x@s.whatsapp.net", number, 0, now, uuid.uuid4(), "message.received", now, data)

    async with httpx.AsyncClient(timeout=10) as client:

        async def worker() -> None:
            for number in numbers:
                row = event(number)
                if lean:
                    _, error = await attempt.post(session, SECRET, row, 10.0)
                    assert error is None, error
                    continue
                body = signing.envelope(row.event_id, row.event_type, row.created_at, row.data_json)
                headers = signing.headers(SECRET, body, row.event_id, 1, dt.datetime.now(dt.UTC))
                (await client.post(url, content=body, headers=headers)).raise_for_status()

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CEILING_CONCURRENCY))), WAIT)
        elapsed = time.perf_counter() - started
    await session.close()
    return CEILING_EVENTS / elapsed


def main() -> None:
    receiver = ReceiverProcess()
    results: dict[str, Any] = {}
    try:
        with bench_database() as url, paired_app(url, receiver) as app:
            receiver.take()
            latencies = latency_run(app, receiver)
            results["p50"], results["p99"] = percentile(latencies, 0.5), percentile(latencies, 0.99)
            results["max"] = max(latencies)
            print(
                f"latency at {RATE}/s, {len(latencies)} events: p50 {results['p50']:.1f} ms, "
                f"p99 {results['p99']:.1f} ms, max {results['max']:.1f} ms",
                flush=True,
            )
            overall, middle, injected, cpu_ms = throughput_run(app, receiver)
            results["overall"], results["middle"] = overall, middle
            print(
                f"throughput, {CHATS * PER_CHAT} events from {CHATS} chats: {overall:.0f} events/s overall "
                f"(middle 80 %: {middle:.0f}/s; injection took {injected:.1f} s; web process CPU {cpu_ms:.3f} ms "
                "per event)",
                flush=True,
            )
        results["ceiling"] = asyncio.run(ceiling_run(receiver.url, lean=True))
        results["httpcore"] = asyncio.run(ceiling_run(receiver.url, lean=False))
        print(
            f"ceiling, bare loop, {CEILING_CONCURRENCY} in flight: {results['ceiling']:.0f} events/s with the "
            f"dispatcher's own call, {results['httpcore']:.0f} events/s with a plain httpx.AsyncClient",
            flush=True,
        )
    finally:
        receiver.stop()
    share = 100 * results["overall"] / results["ceiling"]
    print(
        f"goals: >= 1000 events/s -> {results['overall'] >= 1000}; p99 < 100 ms at {RATE}/s -> {results['p99'] < 100}; "
        f">= 40 % of the ceiling (the dispatcher's own call) -> {share >= 40} ({share:.0f} %)"
    )


if __name__ == "__main__":
    main()
