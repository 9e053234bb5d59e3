"""Request-log cost: proxied traffic with the log on vs off, the recorder's
sustained rate into the development database, and the memory of the whole tree.

Two one-worker proxies run side by side on one fake upstream: REQUEST_LOG=false,
and REQUEST_LOG=true with MONGODB_URI unset (the embedded SecantusDB and the
recorder process, a temporary DATA_DIR: what `make run` starts). The client
alternates between them round by round (the order flipped every round), so drift
on the shared machine hits both alike, and lets the recorder catch up after each
log-on phase, so the log-off phases never share the cores with its backlog.

- sequential small requests: added p50/p99 with the log on, vs off;
- 64-connection bursts: requests/s and the worker process's CPU per request
  (/proc utime+stime of the worker alone, its journal thread included: counted
  until its queue is empty), on minus off;
- after each log-on burst: the recorder storing the backlog (its own status in
  /livez, `writer.recorder`), its and the database's CPU per document;
- the RSS of the log-on proxy's process tree (main, worker, recorder, database)
  after the load;
- the recorder alone (bench.recorder_rate): realistic records through a journal
  into a fresh SecantusDB, with the production batch size and with batches of 100.

    .venv/bin/python -m bench.log_bench [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.load import concurrent, sequential, summary
from bench.recorder_rate import recorder_rate
from bench.servers import (
    ROOT,
    Proxy,
    cpu_seconds,
    database_pid,
    recorded,
    start_servers,
    stop_on_sigterm,
)

CONCURRENCY = 64
WARMUP = 50


class Phase:
    """What one proxy accumulates over the rounds."""

    def __init__(self, patience: float) -> None:
        # How long the recorder may take to store a phase's records.
        self.patience = patience
        self.sequential: list[float] = []
        self.latencies: list[float] = []
        self.requests = 0
        self.seconds = 0.0
        self.cpu_requests = 0
        self.cpu = 0.0
        self.catch_ups: list[dict[str, float]] = []


async def queue_empty(proxy: Proxy) -> None:
    """Until the worker's journal thread has taken every record (log on only)."""
    async with aiohttp.ClientSession() as http:
        while proxy.log_on and (await proxy.livez(http))["writer"]["queue_depth"]:
            await asyncio.sleep(0.01)


async def recorder_status(proxy: Proxy) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        return (await proxy.livez(http))["writer"]["recorder"] or {}


async def burst(proxy: Proxy, count: int, phase: Phase) -> None:
    worker = proxy.worker
    before: dict[str, Any] = {}
    if proxy.log_on:
        before = await recorder_status(proxy)
        database = database_pid(proxy.proc.pid)  # None on an external MONGODB_URI
        side_cpu = cpu_seconds(before["pid"]) + (cpu_seconds(database) if database else 0)
    cpu = cpu_seconds(worker)
    started = time.time()
    rps, latencies = await concurrent(proxy.url, count, CONCURRENCY)
    proxy.sent += count + CONCURRENCY
    await queue_empty(proxy)
    phase.cpu += cpu_seconds(worker) - cpu
    phase.cpu_requests += count + CONCURRENCY
    phase.requests += count
    phase.seconds += count / rps
    phase.latencies += latencies
    if not proxy.log_on:
        return
    ended = time.time()
    at_end = await recorder_status(proxy)
    try:
        final = await recorded(proxy, within=phase.patience)
    except TimeoutError as exc:
        # The figures above stand; the recorder's part is reported as what it is.
        phase.catch_ups.append({"requests": count + CONCURRENCY, "stuck": str(exc)[:2000]})
        return
    side_cpu = cpu_seconds(final["pid"]) + (cpu_seconds(database) if database else 0) - side_cpu
    stored = final["stored"] - before["stored"]
    backlog = final["stored"] - at_end["stored"]
    phase.catch_ups.append(
        {
            "requests": count + CONCURRENCY,
            "stored": stored,
            "burst_seconds": ended - started,
            # When the recorder's status said "all stored" (published about once a
            # second, so up to ~1 s late), counted from the end of the burst.
            "catch_up_seconds": max(0.0, final["at"] - ended),
            "backlog_at_end": backlog,
            "sustained_docs_per_s": backlog / max(final["at"] - at_end["at"], 1e-9),
            "end_to_end_docs_per_s": stored / max(final["at"] - started, 1e-9),
            "recorder_and_db_cpu_us_per_doc": side_cpu / max(stored, 1) * 1e6,
            "lost": final["lost"],
            "bodies_dropped": final["bodies_dropped"],
        }
    )


async def proxied(args: argparse.Namespace) -> dict[str, Any]:
    servers = await start_servers(off=False, on=True)
    phases = {"off": Phase(args.patience), "on": Phase(args.patience)}
    try:
        for round_ in range(args.rounds):
            order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
            for name in order:
                proxy = servers.proxies[name]
                phases[name].sequential += await sequential(proxy.url, args.sequential, WARMUP)
                proxy.sent += args.sequential + WARMUP
                if proxy.log_on:
                    try:
                        await recorded(proxy, within=args.patience)
                    except TimeoutError as exc:
                        phases[name].catch_ups.append({"stuck": f"after sequential: {exc}"[:2000]})
            for name in order:
                await burst(servers.proxies[name], args.requests, phases[name])
        memory = servers.proxies["on"].tree_rss_mb()
    finally:
        servers.stop()
    off, on = phases["off"], phases["on"]
    rps_off, rps_on = off.requests / off.seconds, on.requests / on.seconds
    cpu_off, cpu_on = off.cpu / off.cpu_requests * 1e6, on.cpu / on.cpu_requests * 1e6
    return {
        "rounds": args.rounds,
        "sequential_ms": summary(off.sequential, on.sequential),
        "concurrency64": {
            "rps_off": rps_off,
            "rps_on": rps_on,
            "on_vs_off_pct": rps_on / rps_off * 100,
            **summary(off.latencies, on.latencies),
        },
        "worker_cpu_us_per_request": {"off": cpu_off, "on": cpu_on, "added": cpu_on - cpu_off},
        "catch_ups": on.catch_ups,
        "tree_rss_mb_after_load": memory,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_before": os.getloadavg(),
    }
    results.update(await proxied(args))
    results["recorder_batches_of_100"] = await recorder_rate(
        args.documents, batch_max=100, within=args.within
    )
    results["recorder_defaults"] = await recorder_rate(args.default_documents, within=args.within)
    results["load_average_after"] = os.getloadavg()
    return results


def _rate_line(name: str, r: dict[str, Any]) -> str:
    state = "" if r["finished"] else f", GAVE UP after {r['seconds']:.0f} s"
    return (
        f"recorder alone, {name}: {r['docs_per_s']:.0f} documents/s "
        f"({r['stored']}/{r['records']} realistic records in {r['seconds']:.1f} s{state}; "
        f"recorder {r['recorder_cpu_us_per_doc']:.0f} us/doc, database "
        f"{r['database_cpu_us_per_doc']:.0f} us/doc; {len(r['outages'])} timeouts); "
        f"hand-off {r['handoff']['cpu_us_per_record']:.0f} us CPU/record"
    )


def report(r: dict[str, Any]) -> str:
    seq, c64, cpu = r["sequential_ms"], r["concurrency64"], r["worker_cpu_us_per_request"]
    mem = r["tree_rss_mb_after_load"]
    lines = [
        f"date: {r['date']}; load average before {r['load_average_before'][0]:.1f}, "
        f"after {r['load_average_after'][0]:.1f} (2 cores, shared with the database, "
        f"the proxies, the fake upstream and this client)",
        f"sequential small requests, log on vs off: added p50 {seq['added_p50']:.2f} ms, "
        f"p99 {seq['added_p99']:.2f} ms (off p99 {seq['direct_p99']:.2f}, "
        f"on p99 {seq['proxied_p99']:.2f})",
        f"concurrency 64: log off {c64['rps_off']:.0f} req/s, on {c64['rps_on']:.0f} req/s "
        f"({c64['on_vs_off_pct']:.0f} % of off); added p50 {c64['added_p50']:.2f} ms, "
        f"p99 {c64['added_p99']:.2f} ms",
        f"worker CPU per request: off {cpu['off']:.0f} us, on {cpu['on']:.0f} us "
        f"(added {cpu['added']:.0f} us)",
    ]
    for i, c in enumerate(r["catch_ups"]):
        if "stuck" in c:
            lines.append(f"burst {i + 1} with the log on: NOT STORED in time: {c['stuck']}")
            continue
        lines.append(
            f"burst {i + 1} with the log on: {c['requests']} requests in "
            f"{c['burst_seconds']:.1f} s, {c['backlog_at_end']} left to store at its end, all "
            f"stored {c['catch_up_seconds']:.1f} s later: recorder {c['sustained_docs_per_s']:.0f} "
            f"documents/s after the burst, {c['end_to_end_docs_per_s']:.0f}/s end to end; "
            f"recorder + database CPU {c['recorder_and_db_cpu_us_per_doc']:.0f} us/doc; "
            f"lost {c['lost']}, bodies dropped {c['bodies_dropped']}"
        )
    lines += [
        "RSS after the load, log on: "
        + ", ".join(f"{k} {v:.0f} MB" for k, v in mem.items() if k != "total")
        + f"; total {mem['total']:.0f} MB",
        _rate_line("batches of 100", r["recorder_batches_of_100"]),
        _rate_line("production batch size", r["recorder_defaults"]),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="request-log overhead benchmark")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "log.json")
    args = parser.parse_args()
    stop_on_sigterm()
    # Per round and per proxy: sequential requests, burst requests; then the
    # in-process recorder's records (batches of 100, then production batches).
    (
        args.rounds,
        args.sequential,
        args.requests,
        args.documents,
        args.default_documents,
        args.within,
        args.patience,
    ) = (1, 300, 2000, 300, 500, 15, 60) if args.quick else (2, 2000, 10000, 3000, 1000, 180, 300)
    results = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(report(results))


if __name__ == "__main__":
    main()
