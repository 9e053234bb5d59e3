"""Request-log cost: proxied traffic with logging on vs off, and the writer's
sustained documents per second into the local development database.

    .venv/bin/python -m bench.log_bench [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.database import start_database
from bench.proxy_bench import (
    ROOT,
    concurrent,
    cpu_seconds,
    free_port,
    sequential,
    spawn_servers,
    summary,
    wait_ready,
    worker_pid,
)
from storage.journal import Journal
from storage.mongo import REQUESTS, connect, ensure_indexes
from storage.pricing import PriceTable
from storage.writer import LogWriter
from streaming.exchange import Exchange, Outcome


async def proxied(log_on: bool, args: argparse.Namespace, data_dir: str) -> dict[str, Any]:
    servers = spawn_servers({"REQUEST_LOG": "true" if log_on else "false", "DATA_DIR": data_dir})
    try:
        await wait_ready(servers.upstream_url + "/v1/models")
        await wait_ready(servers.proxy_url + "/livez", within=60)
        seq = await sequential(servers.proxy_url, args.sequential)
        if log_on:
            await writer_caught_up(servers.proxy_url)
        worker = worker_pid(servers.proxy.pid)
        cpu_before = cpu_seconds(worker)
        started = time.perf_counter()
        rps, lat = await concurrent(servers.proxy_url, args.requests, 64)
        burst = time.perf_counter() - started
        cpu_us = (cpu_seconds(worker) - cpu_before) / args.requests * 1e6
        result = {"sequential": seq, "rps": rps, "latencies": lat, "cpu_us_per_request": cpu_us}
        if log_on:
            # The burst outruns the database: records wait in the queue and the
            # journal. The whole cost is only paid once every one is stored.
            await writer_caught_up(servers.proxy_url)
            total = time.perf_counter() - started
            result["recorded_rps"] = args.requests / total
            result["catch_up_seconds"] = total - burst
            result["cpu_us_until_recorded"] = (
                (cpu_seconds(worker) - cpu_before) / args.requests * 1e6
            )
        return result
    finally:
        servers.stop()


async def writer_caught_up(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(url + "/livez") as resp:
                writer = (await resp.json())["writer"]
            if writer["queue_depth"] == 0 and writer["journal_files"] == 0:
                return
            await asyncio.sleep(0.2)


def exchange(n: int, message: dict[str, Any]) -> Exchange:
    body = {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 1024,
        "stream": True,
        "messages": [{"role": "user", "content": f"question {n} " * 20}],
    }
    ex = Exchange(
        method="POST",
        path="/v1/messages",
        query="beta=true",
        request_headers=[("x-api-key", "sk-bench"), ("content-type", "application/json")],
        request_body=json.dumps(body).encode(),
        request_json=body,
        model=body["model"],
        stream_requested=True,
    )
    ex.status, ex.is_sse, ex.message, ex.stream_complete = 200, True, message, True
    ex.finish(Outcome.COMPLETED)
    return ex


async def writer_rate(count: int) -> tuple[float, float]:
    """(documents/s sustained by the writer, seconds) into a fresh SecantusDB."""
    storage = tempfile.mkdtemp(prefix="bench-db-")
    port = free_port()
    db_proc = start_database(storage, port)
    try:
        await asyncio.sleep(3)
        client = connect(f"mongodb://127.0.0.1:{port}")
        db = client["bench"]
        await ensure_indexes(db[REQUESTS], None)
        message = json.loads((ROOT / "tests/fixtures/streams/tool_use.json").read_text())
        exchanges = [exchange(n, message) for n in range(count)]
        writer = LogWriter(db, Journal(Path(storage) / "journal"), PriceTable.load())
        writer.start()
        start = time.perf_counter()
        for ex in exchanges:
            # Keep the queue fed but below its bound: a full queue spills to the
            # journal (replayed later), which is not the path measured here.
            while writer.stats().queue_depth >= 5_000:
                await asyncio.sleep(0.01)
            writer.submit(ex)
        # The writer's own counter: polling count_documents would scan the growing
        # collection on the single-threaded development server and slow the writer.
        while writer.stats().written < count:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - start
        await writer.close(30)
        stored = await db[REQUESTS].count_documents({})
        assert stored == count and writer.stats().journaled == 0, (stored, writer.stats())
        await client.close()
        return count / elapsed, elapsed
    finally:
        db_proc.terminate()
        db_proc.wait(30)
        shutil.rmtree(storage, ignore_errors=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = tempfile.mkdtemp(prefix="bench-data-")
    try:
        off = await proxied(False, args, data_dir)
        on = await proxied(True, args, data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    rate, seconds = await writer_rate(args.documents)
    return {
        "rps_off": off["rps"],
        "rps_on": on["rps"],
        "throughput_cost_pct": (1 - on["rps"] / off["rps"]) * 100,
        "worker_cpu_us_off": off["cpu_us_per_request"],
        "worker_cpu_us_on": on["cpu_us_per_request"],
        "recorded_rps_on": on["recorded_rps"],
        "catch_up_seconds": on["catch_up_seconds"],
        "worker_cpu_us_until_recorded": on["cpu_us_until_recorded"],
        "sequential_ms": summary(off["sequential"], on["sequential"]),
        "concurrency64_ms": summary(off["latencies"], on["latencies"]),
        "writer_docs_per_s": rate,
        "writer_docs": args.documents,
        "writer_seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="request-log overhead benchmark")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "log.json")
    args = parser.parse_args()
    args.sequential, args.requests, args.documents = (
        (200, 2000, 2000) if args.quick else (2000, 20000, 20000)
    )
    results = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    seq, c64 = results["sequential_ms"], results["concurrency64_ms"]
    print(
        f"logging off: {results['rps_off']:.0f} req/s, on: {results['rps_on']:.0f} req/s "
        f"(cost {results['throughput_cost_pct']:.1f}% of throughput, the embedded database "
        f"sharing the 2 cores included)\n"
        f"with logging on, every record stored {results['catch_up_seconds']:.1f} s after the "
        f"burst: {results['recorded_rps_on']:.0f} req/s recorded end to end; worker CPU "
        f"{results['worker_cpu_us_until_recorded']:.0f} us/request until then\n"
        f"proxy worker CPU per request: off {results['worker_cpu_us_off']:.0f} us, "
        f"on {results['worker_cpu_us_on']:.0f} us "
        f"(+{(results['worker_cpu_us_on'] / results['worker_cpu_us_off'] - 1) * 100:.0f}%)\n"
        f"added by logging, sequential: p50 {seq['added_p50']:.2f} ms, "
        f"p99 {seq['added_p99']:.2f} ms; "
        f"at concurrency 64: p50 {c64['added_p50']:.2f} ms, p99 {c64['added_p99']:.2f} ms\n"
        f"writer: {results['writer_docs_per_s']:.0f} documents/s sustained "
        f"({results['writer_docs']} realistic documents in {results['writer_seconds']:.1f} s)"
    )


if __name__ == "__main__":
    main()
