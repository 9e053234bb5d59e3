"""Rolling update, proven, with more load: both pods replaced, 30 s streams.

Runs the simulation of bench/rollout.py (real `python app.py` pods behind a
readiness-aware load balancer, a Deployment's RollingUpdate played step by step)
against its own database (SecantusDB, or $MONGODB_URI) and fake upstream process,
prints the timeline and the checks, then throughput and latency figures, and writes
them to bench/results/rolling_update.json. Exits 1 if any request was cut, failed,
missing from the log, logged twice or recorded as incomplete.

    .venv/bin/python -m bench.rolling_update            # ~2 min
    .venv/bin/python -m bench.rolling_update --quick    # the test's scenario
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from bench.kube import manifest_prestop
from bench.lb import probe
from bench.rollout import BENCH_SCENARIO, TEST_SCENARIO, Scenario, free_port, simulate
from bench.rollout_outcome import Outcome
from bench.traffic import Result

ROOT = Path(__file__).resolve().parent.parent


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def figures(outcome: Outcome) -> dict[str, Any]:
    """Throughput and latency, for all short requests and for those that overlapped a
    pod's termination (from its preStop to its exit)."""
    windows = [(t.started_at, t.exited_at or outcome.seconds) for t in outcome.terminations]
    short = [r for r in outcome.results if r.kind != "long"]
    during = [r for r in short if any(r.started < end and r.ended > s for s, end in windows)]
    longs = [r.seconds for r in outcome.results if r.kind == "long"]
    first, last = min(r.started for r in short), max(r.ended for r in short)

    def ms(results: list[Result]) -> dict[str, float]:
        values = [r.seconds * 1000 for r in results]
        return {f"p{q}": round(pct(values, q), 1) for q in (50, 95, 99)} | {
            "max": round(max(values, default=float("nan")), 1)
        }

    return {
        "requests": len(outcome.results),
        "failed": len(outcome.failed()),
        "short_requests_per_s": round(len(short) / (last - first), 1),
        "short_latency_ms": ms(short),
        "short_latency_during_terminations_ms": ms(during),
        "long_streams": len(longs),
        "long_stream_s": {"min": round(min(longs), 2), "max": round(max(longs), 2)},
        "documents": sum(map(len, outcome.log.ids.values())),
    }


def start_database(storage: Path) -> tuple[str, subprocess.Popen[bytes] | None]:
    if os.environ.get("MONGODB_URI"):
        return os.environ["MONGODB_URI"], None
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "secantusd-py"),
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--storage-path", str(storage), "--log-level", "WARNING"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return f"mongodb://127.0.0.1:{port}", proc


async def run(scenario: Scenario, workdir: Path) -> Outcome:
    mongo_uri, database_proc = start_database(workdir / "db")
    up_port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_upstream", "--port", str(up_port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    database = f"rollout_{secrets.token_hex(4)}"
    try:
        deadline = time.monotonic() + 30
        while await probe(up_port, "/v1/models") is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake upstream did not start")
            await asyncio.sleep(0.1)
        return await simulate(
            scenario,
            upstream_url=f"http://127.0.0.1:{up_port}",
            mongo_uri=mongo_uri,
            database=database,
            workdir=workdir,
        )
    finally:
        if database_proc is None:  # a real MongoDB: leave nothing behind in it
            client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_uri)
            await client.drop_database(database)
            await client.close()
        for proc in (upstream, database_proc):
            if proc is not None:
                proc.terminate()
                proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description="rolling update under load")
    parser.add_argument("--quick", action="store_true", help="the test's smaller scenario")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "rolling_update.json"
    )
    args = parser.parse_args()
    scenario = TEST_SCENARIO if args.quick else BENCH_SCENARIO
    workdir = Path(tempfile.mkdtemp(prefix="rollout-"))
    try:
        outcome = asyncio.run(run(scenario, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _, settle, max_wait = manifest_prestop()
    print(outcome.render())
    numbers = figures(outcome)
    problems = outcome.problems()
    print(json.dumps(numbers, indent=2))
    print(
        f"(manifest preStop: settle {settle:g}s, max wait {max_wait:g}s; "
        f"scaled here to {scenario.budget.settle:g}s and {scenario.budget.prestop_max_wait:g}s)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                **numbers,
                "problems": problems,
                "findings": outcome.findings(),
                "timeline": [asdict(e) for e in outcome.timeline.events],
            },
            indent=2,
            default=str,
        )
    )
    if problems:
        print("PROBLEMS:\n" + "\n".join(problems[:50]))
        sys.exit(1)
    print("every request complete and logged exactly once")


if __name__ == "__main__":
    main()
