"""The client side of the benchmarks: small JSON requests (sequential, concurrent,
wrk) and SSE streams whose events carry their upstream send time."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

BODY = json.dumps(
    {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "ping"}],
    }
).encode()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(direct: list[float], proxied: list[float]) -> dict[str, float]:
    return {
        "direct_p50": pct(direct, 50),
        "direct_p99": pct(direct, 99),
        "proxied_p50": pct(proxied, 50),
        "proxied_p99": pct(proxied, 99),
        "added_p50": pct(proxied, 50) - pct(direct, 50),
        "added_p99": pct(proxied, 99) - pct(direct, 99),
    }


async def one_request(http: aiohttp.ClientSession, url: str) -> float:
    start = time.perf_counter()
    async with http.post(
        url + "/v1/messages", data=BODY, headers={"x-fake": "json:text_basic"}
    ) as resp:
        await resp.read()
        assert resp.status == 200, resp.status
    return (time.perf_counter() - start) * 1000


async def sequential(url: str, count: int, warmup: int = 50) -> list[float]:
    async with aiohttp.ClientSession() as http:
        for _ in range(warmup):  # connections, caches
            await one_request(http, url)
        return [await one_request(http, url) for _ in range(count)]


async def concurrent(url: str, count: int, concurrency: int) -> tuple[float, list[float]]:
    """(requests/s, latencies in ms) of `count` requests over `concurrency`
    connections; `concurrency` warm-up requests are sent first."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        for _ in range(concurrency):
            await one_request(http, url)
        remaining = count
        latencies: list[float] = []

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                latencies.append(await one_request(http, url))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return count / elapsed, latencies


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["x-fake"] = "json:text_basic"
wrk.headers["content-type"] = "application/json"
"""


def wrk_rps(url: str, concurrency: int, seconds: int) -> float | None:
    """Requests/s measured by wrk (C, one thread), if installed: a Python client
    competes with the proxy for this machine's two cores and caps the figure."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % BODY.decode())
    try:
        out = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{concurrency}",
                f"-d{seconds}s",
                "-s",
                script.name,
                url + "/v1/messages",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    return None


@dataclass
class StreamStats:
    ttfb_ms: list[float] = field(default_factory=list)
    event_delay_ms: list[float] = field(default_factory=list)
    events: int = 0
    failures: int = 0

    def add(self, other: StreamStats) -> None:
        self.ttfb_ms += other.ttfb_ms
        self.event_delay_ms += other.event_delay_ms
        self.events += other.events
        self.failures += other.failures


async def one_stream(
    http: aiohttp.ClientSession, url: str, events: int, gap_ms: int, stats: StreamStats
) -> None:
    start = time.perf_counter()
    try:
        async with http.post(
            url + "/v1/messages", data=BODY, headers={"x-fake": f"ticks:{events}:{gap_ms}"}
        ) as resp:
            buffer = b""
            first = True
            async for chunk in resp.content.iter_any():
                now = time.time()
                if first:
                    stats.ttfb_ms.append((time.perf_counter() - start) * 1000)
                    first = False
                buffer += chunk
                while b"\n\n" in buffer:
                    raw, buffer = buffer.split(b"\n\n", 1)
                    sent = json.loads(raw.split(b"data: ", 1)[1])["sent"]
                    stats.event_delay_ms.append((now - sent) * 1000)
                    stats.events += 1
    except Exception:
        stats.failures += 1


async def streams(
    url: str,
    count: int,
    events: int,
    gap_ms: int,
    *,
    stagger: bool = False,
    sample: Callable[[], None] | None = None,
) -> StreamStats:
    """`count` streams of `events` events `gap_ms` apart, all open at once.

    `stagger` spreads their starts over one gap at random, so their events do not
    all fall in the same instant (as with independent clients); without it they
    start together and tick in step, the harshest case. `sample` is called every
    0.25 s while they run (memory peaks).
    """
    stats = StreamStats()
    connector = aiohttp.TCPConnector(limit=0)
    rng = random.Random(count)

    async def delayed() -> None:
        if stagger:
            await asyncio.sleep(rng.uniform(0, gap_ms / 1000))
        await one_stream(http, url, events, gap_ms, stats)

    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None)
    ) as http:
        tasks = [asyncio.create_task(delayed()) for _ in range(count)]
        while not all(t.done() for t in tasks):
            if sample is not None:
                sample()
            await asyncio.sleep(0.25)
        await asyncio.gather(*tasks)
    return stats
