"""Proxy overhead benchmark: direct vs proxied against a local fake upstream.

One proxy worker and the fake upstream run as their own processes on loopback;
this process is the client. Both paths are measured in the same run, so the
figures are "added by the proxy" on this machine, at this moment.

    .venv/bin/python -m bench.proxy_bench            # full run (~1 min)
    .venv/bin/python -m bench.proxy_bench --quick    # smaller counts
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_ready(url: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url) as resp:
                    if resp.status in (200, 404):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(url)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pid(manager_pid: int) -> int:
    """The serving worker: the proxy always runs under Sanic's process manager."""
    for child in Path(f"/proc/{manager_pid}/task/{manager_pid}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"multiprocessing.spawn" in cmdline and b"resource_tracker" not in cmdline:
            if b"Server" in Path(f"/proc/{child}/environ").read_bytes():
                return int(child)
    raise RuntimeError("no worker process found")


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
    out = subprocess.run(
        [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "-s", script.name, url + "/v1/messages"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    return None


@dataclass
class Servers:
    upstream: subprocess.Popen[bytes]
    proxy: subprocess.Popen[bytes]
    upstream_url: str
    proxy_url: str

    def stop(self) -> None:
        for proc in (self.proxy, self.upstream):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def spawn_servers(extra_env: dict[str, str] | None = None) -> Servers:
    up_port, proxy_port = free_port(), free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_upstream", "--port", str(up_port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "PORT": str(proxy_port),
        "HOST": "127.0.0.1",
        "ANTHROPIC_FORWARD_URL": f"http://127.0.0.1:{up_port}",
        "SANIC_WORKERS": "1",
        "LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    proxy = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Servers(upstream, proxy, f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{proxy_port}")


async def start_servers(extra_env: dict[str, str] | None = None) -> Servers:
    servers = spawn_servers(extra_env)
    await wait_ready(servers.upstream_url + "/v1/models")
    await wait_ready(servers.proxy_url + "/livez")
    return servers


async def one_request(http: aiohttp.ClientSession, url: str) -> float:
    start = time.perf_counter()
    async with http.post(
        url + "/v1/messages", data=BODY, headers={"x-fake": "json:text_basic"}
    ) as resp:
        await resp.read()
        assert resp.status == 200, resp.status
    return (time.perf_counter() - start) * 1000


async def sequential(url: str, count: int) -> list[float]:
    async with aiohttp.ClientSession() as http:
        for _ in range(50):  # warm-up: connections, caches
            await one_request(http, url)
        return [await one_request(http, url) for _ in range(count)]


async def concurrent(url: str, count: int, concurrency: int) -> tuple[float, list[float]]:
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


@dataclass
class StreamStats:
    ttfb_ms: list[float] = field(default_factory=list)
    event_delay_ms: list[float] = field(default_factory=list)
    events: int = 0
    failures: int = 0


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
    url: str, count: int, events: int, gap_ms: int, rss_pid: int | None
) -> tuple[StreamStats, float]:
    stats = StreamStats()
    peak = 0.0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None)
    ) as http:
        tasks = [
            asyncio.create_task(one_stream(http, url, events, gap_ms, stats)) for _ in range(count)
        ]
        while not all(t.done() for t in tasks):
            if rss_pid is not None:
                peak = max(peak, rss_mb(rss_pid))
            await asyncio.sleep(0.25)
        await asyncio.gather(*tasks)
    return stats, peak


def summary(direct: list[float], proxied: list[float]) -> dict[str, float]:
    return {
        "direct_p50": pct(direct, 50),
        "direct_p99": pct(direct, 99),
        "proxied_p50": pct(proxied, 50),
        "proxied_p99": pct(proxied, 99),
        "added_p50": pct(proxied, 50) - pct(direct, 50),
        "added_p99": pct(proxied, 99) - pct(direct, 99),
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    # The forwarding path alone; the request log's cost is bench.log_bench's subject.
    servers = await start_servers({"REQUEST_LOG": "false"})
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    try:
        direct = await sequential(servers.upstream_url, args.sequential)
        proxied = await sequential(servers.proxy_url, args.sequential)
        results["sequential_ms"] = summary(direct, proxied)

        rps_direct, lat_d = await concurrent(servers.upstream_url, args.requests, 64)
        rps_proxy, lat_p = await concurrent(servers.proxy_url, args.requests, 64)
        results["concurrency64"] = {
            "direct_rps": rps_direct,
            "proxied_rps": rps_proxy,
            "wrk_direct_rps": wrk_rps(servers.upstream_url, 64, args.wrk_seconds),
            "wrk_proxied_rps": wrk_rps(servers.proxy_url, 64, args.wrk_seconds),
            **summary(lat_d, lat_p),
        }

        s_direct, _ = await streams(servers.upstream_url, args.streams, args.events, 50, None)
        worker = worker_pid(servers.proxy.pid)
        s_proxy, peak = await streams(servers.proxy_url, args.streams, args.events, 50, worker)
        results["streams"] = {
            "streams": args.streams,
            "events_each": args.events,
            "gap_ms": 50,
            "events_direct": s_direct.events,
            "events_proxied": s_proxy.events,
            "failures": s_direct.failures + s_proxy.failures,
            "ttfb_ms": summary(s_direct.ttfb_ms, s_proxy.ttfb_ms),
            "event_delay_ms": summary(s_direct.event_delay_ms, s_proxy.event_delay_ms),
            "proxy_peak_rss_mb": peak,
        }
        results["proxy_idle_rss_mb"] = rss_mb(worker)
    finally:
        servers.stop()
    return results


def report(results: dict[str, object]) -> str:
    seq = results["sequential_ms"]
    c64 = results["concurrency64"]
    st = results["streams"]
    assert isinstance(seq, dict) and isinstance(c64, dict) and isinstance(st, dict)
    lines = [
        f"machine: {results['machine']}   date: {results['date']}",
        f"sequential small requests: added p50 {seq['added_p50']:.2f} ms, "
        f"p99 {seq['added_p99']:.2f} ms (direct p50 {seq['direct_p50']:.2f}, "
        f"proxied p50 {seq['proxied_p50']:.2f})",
        f"concurrency 64 (Python client): proxied {c64['proxied_rps']:.0f} req/s "
        f"(direct {c64['direct_rps']:.0f}); "
        f"added p50 {c64['added_p50']:.2f} ms, p99 {c64['added_p99']:.2f} ms",
        f"{st['streams']} streams x {st['events_each']} events / {st['gap_ms']} ms: "
        f"added TTFB p50 {st['ttfb_ms']['added_p50']:.2f} ms; added inter-event delay "
        f"p50 {st['event_delay_ms']['added_p50']:.2f} ms, "
        f"p99 {st['event_delay_ms']['added_p99']:.2f} ms; "
        f"events {st['events_proxied']}/{st['events_direct']}, failures {st['failures']}",
        "concurrency 64 (wrk): "
        + (
            f"proxied {c64['wrk_proxied_rps']:.0f} req/s (direct {c64['wrk_direct_rps']:.0f})"
            if c64["wrk_proxied_rps"]
            else "wrk not installed (apt-get install wrk)"
        ),
        f"proxy worker RSS: {results['proxy_idle_rss_mb']:.0f} MB after, "
        f"peak {st['proxy_peak_rss_mb']:.0f} MB "
        f"with {st['streams']} open streams",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="proxy overhead benchmark")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "proxy.json")
    args = parser.parse_args()
    args.sequential, args.requests, args.streams, args.events, args.wrk_seconds = (
        (200, 2000, 50, 20, 2) if args.quick else (2000, 20000, 200, 100, 10)
    )
    results = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=asdict))
    print(report(results))


if __name__ == "__main__":
    main()
