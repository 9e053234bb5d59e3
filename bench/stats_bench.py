"""Stats endpoint latency as the log grows: 10k, 100k and 1M requests over 30 days.

    .venv/bin/python -m bench.stats_bench            # 10k, 100k, 1M (loading 1M takes minutes)
    .venv/bin/python -m bench.stats_bench --sizes 10000,100000
    .venv/bin/python -m bench.stats_bench --quick    # 2,000 requests, a smoke run

Each size gets a fresh development database (SecantusDB, its own process), loaded
through the recorder's storing path (`recording.store.RecordStore.store`: request
documents plus rollup and conversation-summary upserts, one tagged batch at a
time, in time order as the recorder sees them). Then the proxy
(`app.py`) is started on it and every stats endpoint is asked for the whole
30-day range over HTTP; the figure is the median of several calls.
Target: every endpoint ≤ 250 ms, and the 1M figure at most twice the 10k figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from pymongo import AsyncMongoClient

from bench.database import start_database
from bench.servers import free_port, wait_ready
from bench.stats_data import documents
from recording.quarantine import Quarantine
from recording.store import RecordStore
from stats.derived_writer import BatchTag
from stats.rollups import ROLLUPS
from storage.mongo import ensure_all_indexes

ROOT = Path(__file__).resolve().parent.parent
END = datetime(2026, 11, 1, tzinfo=UTC)
START = END - timedelta(days=30)
BATCH = 1000
RUNS = 7


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


RANGE = {"start": str(_ms(START)), "end": str(_ms(END))}
QUERIES: list[tuple[str, str, dict[str, str]]] = [
    ("stats", "/api/stats", {"start_date": RANGE["start"], "end_date": RANGE["end"]}),
    (
        "stats (model+org)",
        "/api/stats",
        {**RANGE, "model": "claude-haiku-4-5-20251001", "org": "org-beta"},
    ),
    ("dashboard (daily, UTC)", "/api/stats/dashboard", RANGE),
    ("dashboard (daily, New York)", "/api/stats/dashboard", {**RANGE, "tz": "America/New_York"}),
    ("hourly (720 buckets)", "/api/stats/hourly", RANGE),
    (
        "hourly (org, Kolkata)",
        "/api/stats/hourly",
        {**RANGE, "org": "org-alpha", "tz": "Asia/Kolkata"},
    ),
    ("models", "/api/stats/models", RANGE),
    ("organizations", "/api/stats/organizations", {}),
    ("latency", "/api/stats/latency", RANGE),
    ("ratelimits (hourly)", "/api/stats/ratelimits", RANGE),
]


async def load(uri: str, count: int, quarantine: Path) -> dict[str, Any]:
    # Generous timeouts: the single-threaded development server answers no
    # heartbeat while it works through a big bulk, and pymongo would cancel it.
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        uri, tz_aware=True, connectTimeoutMS=60000, serverSelectionTimeoutMS=60000
    )
    db = client["bench"]
    await ensure_all_indexes(db, None)
    store = RecordStore(db, Quarantine(quarantine, 64 * 1024 * 1024))
    recorder = secrets.token_hex(8)
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    seq = 0
    for document in documents(count, START, END - START, seed=count):
        batch.append(document)
        if len(batch) == BATCH:
            seq += 1
            await _store(store, batch, BatchTag(recorder, seq))
            batch = []
    if batch:
        await _store(store, batch, BatchTag(recorder, seq + 1))
    seconds = time.perf_counter() - started
    tiers = {}
    for tier in ("m", "q", "h", "d"):  # one aggregate per tier, index-backed
        rows = await (
            await db[ROLLUPS].aggregate([{"$match": {"tier": tier}}, {"$count": "n"}])
        ).to_list(None)
        tiers[tier] = rows[0]["n"] if rows else 0
    await client.close()
    return {"load_seconds": seconds, "docs_per_s": count / seconds, "rollups": tiers}


async def _store(store: RecordStore, batch: list[dict[str, Any]], tag: BatchTag) -> None:
    result = await store.store(batch, tag)
    if result.inserted != len(batch):
        raise RuntimeError(f"batch {tag.seq}: {result}")


async def measure(url: str) -> dict[str, float]:
    results: dict[str, float] = {}
    async with aiohttp.ClientSession() as http:
        for name, path, params in QUERIES:
            timings = []
            for _ in range(RUNS):
                started = time.perf_counter()
                async with http.get(url + path, params=params) as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"{path}: {resp.status} {body[:200]!r}")
                timings.append((time.perf_counter() - started) * 1000)
            results[name] = statistics.median(timings)
    return results


async def one_size(count: int) -> dict[str, Any]:
    storage = tempfile.mkdtemp(prefix="bench-stats-")
    port = free_port()
    db_proc = start_database(storage + "/db", port)
    proxy = None
    try:
        await asyncio.sleep(3)
        uri = f"mongodb://127.0.0.1:{port}"
        loaded = await load(uri, count, Path(storage) / "quarantine")
        proxy_port = free_port()
        env = {
            **os.environ,
            "PORT": str(proxy_port),
            "MONGODB_URI": uri,
            "MONGODB_DATABASE": "bench",
            "DATA_DIR": storage + "/data",
            "LOG_LEVEL": "WARNING",
        }
        proxy = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")], env=env, start_new_session=True
        )
        url = f"http://127.0.0.1:{proxy_port}"
        await wait_ready(url + "/health", within=60)
        return {"count": count, **loaded, "latency_ms": await measure(url)}
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(60)
        db_proc.terminate()
        db_proc.wait(60)
        shutil.rmtree(storage, ignore_errors=True)


def report(results: list[dict[str, Any]]) -> str:
    names = [name for name, _, _ in QUERIES]
    header = "| endpoint (30-day range) | " + " | ".join(f"{r['count']:,} req" for r in results)
    lines = [header + " |", "| --- |" + " ---: |" * len(results)]
    for name in names:
        lines.append(
            f"| {name} | " + " | ".join(f"{r['latency_ms'][name]:.0f} ms" for r in results) + " |"
        )
    lines.append("")
    for r in results:
        tiers = ", ".join(f"{k}={v:,}" for k, v in r["rollups"].items())
        lines.append(
            f"{r['count']:,} requests: loaded in {r['load_seconds']:.0f} s "
            f"({r['docs_per_s']:.0f} docs/s incl. rollups); rollup documents {tiers}"
        )
    if len(results) > 1:
        first, last = results[0], results[-1]
        worst = max(last["latency_ms"][n] / first["latency_ms"][n] for n in names)
        slowest = max(max(r["latency_ms"].values()) for r in results)
        lines.append(
            f"largest/smallest ratio (worst endpoint): {worst:.2f}x (target ≤ 2x); "
            f"slowest answer: {slowest:.0f} ms (target ≤ 250 ms)"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="stats latency vs log size")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--quick", action="store_true", help="--sizes 2000, a smoke run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "stats.json")
    args = parser.parse_args()
    if args.quick:
        args.sizes = "2000"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    for size in args.sizes.split(","):
        results.append(asyncio.run(one_size(int(size))))
        # Saved and shown after each size: the 1M load takes a while.
        args.out.write_text(json.dumps(results, indent=2))
        print(report(results), flush=True)


if __name__ == "__main__":
    main()
