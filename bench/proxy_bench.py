"""Proxy overhead benchmark: direct vs proxied against a local fake upstream, the
request log off and on.

The fake upstream and two one-worker proxies — request log off, and on with its
embedded development database and recorder as under `make run` — run as their
own processes on loopback; this process is the client. Direct and proxied paths
are measured in the same run, so the figures are "added by the proxy" on this
machine, at this moment.

- Forwarding (log off): sequential and 64-connection small requests, direct vs
  proxied.
- Streams: rounds of 200 streams direct, through the log-off proxy and through the
  log-on one (alternated, so drift on the shared machine hits all three alike;
  after a log-on round the recorder is let catch up before the next round).
- 1,000 streams through the one log-on worker (events every MANY_GAP_MS, starts
  spread over one gap), direct vs proxied, and through the log-off one.

    .venv/bin/python -m bench.proxy_bench            # full run (~4 min)
    .venv/bin/python -m bench.proxy_bench --quick    # smaller counts (~40 s)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from bench.load import StreamStats, concurrent, sequential, streams, summary, wrk_rps
from bench.servers import (
    ROOT,
    Proxy,
    Servers,
    recorded,
    rss_mb,
    start_servers,
    stop_on_sigterm,
)

GAP_MS = 50
# 1,000 streams ticking every 50 ms are 20,000 events/s: more than the Python
# client and the fake upstream can take on these two shared cores (the direct
# path alone then lags by hundreds of ms), so the many-stream run is spaced wider.
MANY_GAP_MS = 200


class Peak:
    """The highest RSS of a process seen by sample()."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.mb = 0.0

    def sample(self) -> None:
        self.mb = max(self.mb, rss_mb(self.pid))


async def stream_run(
    url: str,
    proxy: Proxy | None,
    count: int,
    events: int,
    gap_ms: int,
    *,
    stagger: bool,
    peak: Peak | None,
) -> StreamStats:
    stats = await streams(
        url, count, events, gap_ms, stagger=stagger, sample=peak.sample if peak else None
    )
    if proxy is not None:
        proxy.sent += count
        if proxy.log_on:
            await recorded(proxy)
    return stats


def stream_figures(
    direct: StreamStats, off: StreamStats, on: StreamStats, count: int, events: int, gap_ms: int
) -> dict[str, Any]:
    off_delay = summary(direct.event_delay_ms, off.event_delay_ms)
    on_delay = summary(direct.event_delay_ms, on.event_delay_ms)
    return {
        "streams": count,
        "events_each": events,
        "gap_ms": gap_ms,
        "events_direct": direct.events,
        "events_log_off": off.events,
        "events_log_on": on.events,
        "failures": direct.failures + off.failures + on.failures,
        "ttfb_ms_log_off": summary(direct.ttfb_ms, off.ttfb_ms),
        "ttfb_ms_log_on": summary(direct.ttfb_ms, on.ttfb_ms),
        "event_delay_ms_log_off": off_delay,
        "event_delay_ms_log_on": on_delay,
        "log_on_minus_off_added_p99": on_delay["added_p99"] - off_delay["added_p99"],
    }


async def forwarding(servers: Servers, args: argparse.Namespace) -> dict[str, Any]:
    upstream, off = servers.upstream.url, servers.proxies["off"]
    direct = await sequential(upstream, args.sequential)
    proxied = await sequential(off.url, args.sequential)
    rps_direct, lat_d = await concurrent(upstream, args.requests, 64)
    rps_proxy, lat_p = await concurrent(off.url, args.requests, 64)
    return {
        "sequential_ms": summary(direct, proxied),
        "concurrency64": {
            "direct_rps": rps_direct,
            "proxied_rps": rps_proxy,
            "wrk_direct_rps": wrk_rps(upstream, 64, args.wrk_seconds),
            "wrk_proxied_rps": wrk_rps(off.url, 64, args.wrk_seconds),
            **summary(lat_d, lat_p),
        },
    }


async def stream_rounds(
    servers: Servers, count: int, events: int, gap_ms: int, rounds: int, *, stagger: bool
) -> tuple[dict[str, Any], dict[str, float]]:
    off, on = servers.proxies["off"], servers.proxies["on"]
    peaks = {"off": Peak(off.worker), "on": Peak(on.worker)}
    direct, via_off, via_on = StreamStats(), StreamStats(), StreamStats()
    targets: list[tuple[str, Proxy | None, StreamStats, Peak | None]] = [
        (servers.upstream.url, None, direct, None),
        (off.url, off, via_off, peaks["off"]),
        (on.url, on, via_on, peaks["on"]),
    ]
    for _ in range(rounds):
        for url, proxy, stats, peak in targets:
            stats.add(
                await stream_run(url, proxy, count, events, gap_ms, stagger=stagger, peak=peak)
            )
    figures = stream_figures(direct, via_off, via_on, count, events, gap_ms)
    figures["rounds"] = rounds
    figures["staggered"] = stagger
    return figures, {name: peak.mb for name, peak in peaks.items()}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    servers = await start_servers(off=False, on=True)
    try:
        results.update(await forwarding(servers, args))
        results["streams"], peaks = await stream_rounds(
            servers, args.streams, args.events, GAP_MS, args.rounds, stagger=False
        )
        results["streams"]["peak_worker_rss_mb"] = peaks
        results["many_streams"], peaks = await stream_rounds(
            servers, args.many, args.many_events, MANY_GAP_MS, 1, stagger=True
        )
        results["many_streams"]["peak_worker_rss_mb"] = peaks
        results["idle_worker_rss_mb"] = {
            name: rss_mb(proxy.worker) for name, proxy in servers.proxies.items()
        }
    finally:
        servers.stop()
    return results


def _streams_lines(st: dict[str, Any]) -> list[str]:
    off, on = st["event_delay_ms_log_off"], st["event_delay_ms_log_on"]
    return [
        f"{st['streams']} streams x {st['events_each']} events / {st['gap_ms']} ms "
        f"({st['rounds']} round(s){', starts spread over one gap' if st['staggered'] else ''}): "
        f"direct inter-event delay p50 {off['direct_p50']:.2f} ms, p99 {off['direct_p99']:.2f} ms",
        f"  log off: added p50 {off['added_p50']:.2f} ms, p99 {off['added_p99']:.2f} ms; "
        f"added TTFB p50 {st['ttfb_ms_log_off']['added_p50']:.1f} ms; "
        f"peak worker RSS {st['peak_worker_rss_mb']['off']:.0f} MB",
        f"  log on:  added p50 {on['added_p50']:.2f} ms, p99 {on['added_p99']:.2f} ms; "
        f"added TTFB p50 {st['ttfb_ms_log_on']['added_p50']:.1f} ms; "
        f"peak worker RSS {st['peak_worker_rss_mb']['on']:.0f} MB",
        f"  log on minus off, added p99: {st['log_on_minus_off_added_p99']:+.2f} ms; events "
        f"{st['events_direct']} direct / {st['events_log_off']} off / {st['events_log_on']} on, "
        f"failures {st['failures']}",
    ]


def report(results: dict[str, Any]) -> str:
    seq, c64 = results["sequential_ms"], results["concurrency64"]
    lines = [
        f"machine: {results['machine']}   date: {results['date']}",
        f"sequential small requests (log off): added p50 {seq['added_p50']:.2f} ms, "
        f"p99 {seq['added_p99']:.2f} ms (direct p50 {seq['direct_p50']:.2f}, "
        f"proxied p50 {seq['proxied_p50']:.2f})",
        f"concurrency 64 (Python client, log off): proxied {c64['proxied_rps']:.0f} req/s "
        f"(direct {c64['direct_rps']:.0f}); "
        f"added p50 {c64['added_p50']:.2f} ms, p99 {c64['added_p99']:.2f} ms",
        "concurrency 64 (wrk): "
        + (
            f"proxied {c64['wrk_proxied_rps']:.0f} req/s (direct {c64['wrk_direct_rps']:.0f})"
            if c64["wrk_proxied_rps"]
            else "wrk not installed (apt-get install wrk)"
        ),
        *_streams_lines(results["streams"]),
        *_streams_lines(results["many_streams"]),
        "idle worker RSS after the streams: "
        + ", ".join(f"log {k} {v:.0f} MB" for k, v in results["idle_worker_rss_mb"].items()),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="proxy overhead benchmark")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "proxy.json")
    args = parser.parse_args()
    stop_on_sigterm()
    (
        args.sequential,
        args.requests,
        args.wrk_seconds,
        args.streams,
        args.events,
        args.rounds,
        args.many,
        args.many_events,
    ) = (
        (100, 1000, 1, 50, 20, 1, 200, 10)
        if args.quick
        else (2000, 20000, 10, 200, 100, 3, 1000, 100)
    )
    results = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(report(results))


if __name__ == "__main__":
    main()
