"""A small closed-loop HTTP/1.1 load generator over keep-alive connections (loopback only, bounded in count).

It writes raw requests on asyncio streams so that the client costs little CPU next to the server on a 2-core box.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from collections.abc import Callable


@dataclasses.dataclass
class Result:
    requests: int
    seconds: float
    latencies: list[float]  # seconds
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def line(self, name: str) -> str:
        p50, p99 = 1000 * statistics.median(self.latencies), 1000 * self.percentile(0.99)
        return (
            f"{name}: {self.requests} requests in {self.seconds:.2f} s = {self.rate:.0f} req/s; "
            f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms; statuses {dict(sorted(self.statuses.items()))}"
        )


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def run(
    port: int, make_request: Callable[[int], bytes], total: int, concurrency: int, host: str = "127.0.0.1"
) -> Result:
    """Send `total` requests over `concurrency` connections, each waiting for its answer before the next."""
    counter = iter(range(total))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for number in counter:
                started = time.perf_counter()
                writer.write(make_request(number))
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return Result(total, time.perf_counter() - started, latencies, statuses)


def request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
