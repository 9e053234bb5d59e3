"""Dashboard page latency as the log grows: 10k, 100k and 1M requests over 30 days.

    .venv/bin/python -m bench.dashboard_bench                  # 10k, 100k, 1M
    .venv/bin/python -m bench.dashboard_bench --sizes 10000,100000 --runs 20
    .venv/bin/python -m bench.dashboard_bench --quick          # 2,000 requests, a smoke run
    .venv/bin/python -m bench.dashboard_bench --load-only --sizes 1000000
    .venv/bin/python -m bench.dashboard_bench --sizes 1000000 --pages overview

Each size's database is the stats benchmark's log (`bench.stats_data`), made
Claude Code traffic (`dashboard_documents`: sessions with subagents and
compactions, one conversation of 2,000 requests, ~25 KB request bodies, a 1 MB
and a 5 MB body), loaded through the recorder's storing path into a development
database (SecantusDB) under `bench/results/dashboard-db/<size>/`, and reused by
later runs (a manifest names what it holds; `--reload` loads afresh). The log
ends when it was loaded, so the pages' default ranges find it.

Then `python app.py` runs on it with DASHBOARD_PASSWORD and
`STATS_ZONES=Asia/Kolkata` (a database loaded before the local-day rollups
existed gets them backfilled first, as `recording.rebuild_rollups --zones`
would), and every page is
fetched over HTTP with Basic auth (bench.dashboard_pages): time to the
response's headers (first byte) and to its last byte, median and p95 of
`--runs` calls after two warm-up calls. Targets (issue 15): the first byte of
every page within 100 ms, the request list and a request detail within 50 ms,
a conversation of 2,000 requests within 500 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from bench.dashboard_pages import PASSWORD, Timing, measure, report
from bench.database import start_database
from bench.servers import free_port, stop_on_sigterm, wait_listening, wait_ready, worker_pid
from bench.session_traffic import ConversationTraffic
from bench.stats_data import dashboard_documents
from recording.quarantine import Quarantine
from recording.rebuild_rollups import rebuild_zones
from recording.store import RecordStore
from stats.derived_writer import BatchTag
from stats.rollups import ROLLUPS
from stats.timebuckets import zone_tiers
from storage.embedded import server_env
from storage.mongo import REQUESTS, ensure_all_indexes

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "results" / "dashboard-db"
# Bumped whenever dashboard_documents changes what it generates: a cached
# database of another version is loaded again.
GENERATOR_VERSION = 1
SPAN = timedelta(days=30)
BATCH = 500
DATABASE = "bench"
# The proxy's STATS_ZONES: the zone of the half-hour-zone Overview measured.
ZONES = ("Asia/Kolkata",)
LOAD_CACHE = "4G"
# How long the development database may take to open a stored database.
DATABASE_OPEN_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a loaded database holds (its manifest)."""

    count: int
    start: datetime
    end: datetime
    long_id: str
    large_ids: list[str]
    sample_id: str
    words: list[str]  # vocabulary words by falling frequency: common, middling, rare
    project: str
    load_seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "version": GENERATOR_VERSION,
            "count": self.count,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "long_id": self.long_id,
            "large_ids": self.large_ids,
            "sample_id": self.sample_id,
            "words": self.words,
            "project": self.project,
            "load_seconds": self.load_seconds,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Loaded:
        return cls(
            count=raw["count"],
            start=datetime.fromisoformat(raw["start"]),
            end=datetime.fromisoformat(raw["end"]),
            long_id=raw["long_id"],
            large_ids=list(raw["large_ids"]),
            sample_id=raw["sample_id"],
            words=list(raw["words"]),
            project=raw["project"],
            load_seconds=raw["load_seconds"],
        )


def _client(uri: str) -> AsyncMongoClient[Any]:
    # Generous timeouts: the single-threaded development server answers no
    # heartbeat while it works through a big bulk, and pymongo would cancel it.
    return AsyncMongoClient(
        uri, tz_aware=True, connectTimeoutMS=120_000, serverSelectionTimeoutMS=120_000
    )


async def load(uri: str, count: int, quarantine: Path, progress: Path | None = None) -> Loaded:
    """`count` requests ending now, through the recorder's storing path.

    With `progress`, a load cut short (the 1M load takes about an hour) goes on
    where it stopped: the file keeps the log's end and the batch tag's recorder,
    the generator is deterministic for both, so the batches already stored are
    generated again and skipped, and the one cut short is stored again under
    its own tag (its inserted documents are duplicates, its rollups and
    summaries land once)."""
    client = _client(uri)
    db = client[DATABASE]
    await ensure_all_indexes(db, None)
    store = RecordStore(db, Quarantine(quarantine, 64 * 1024 * 1024), ZONES)
    resumed = _progress(progress)
    if resumed is not None:
        recorder, end = resumed
        done = await db[REQUESTS].estimated_document_count()
        skip = done // BATCH
        print(f"  resuming after {skip * BATCH:,} stored requests", flush=True)
    else:
        recorder = secrets.token_hex(8)
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        skip = 0
        _begin_progress(progress, recorder, end)
    start = end - SPAN
    traffic = ConversationTraffic(count, count)
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    seq, sample = 0, ""
    for document in dashboard_documents(count, start, SPAN, seed=count, traffic=traffic):
        batch.append(document)
        if len(batch) == BATCH:
            seq += 1
            sample = batch[BATCH // 2]["requestId"]
            if seq > skip:
                await _store(store, batch, BatchTag(recorder, seq))
            batch = []
            if seq % 100 == 0:
                rate = (seq - skip) * BATCH / (time.perf_counter() - started)
                print(f"  {seq * BATCH:,}/{count:,} stored ({rate:.0f}/s)", flush=True)
    if batch:
        sample = sample or batch[len(batch) // 2]["requestId"]
        await _store(store, batch, BatchTag(recorder, seq + 1))
    seconds = time.perf_counter() - started
    await client.close()
    if traffic.long_id is None or len(traffic.large_ids) < 2:
        raise RuntimeError("the generator made no long conversation or no large body")
    words = traffic.vocab.words
    return Loaded(
        count=count,
        start=start,
        end=end,
        long_id=traffic.long_id,
        large_ids=traffic.large_ids,
        sample_id=sample,
        words=[words[0], words[len(words) // 20], words[-1]],
        project=traffic.long.project if traffic.long else "",
        load_seconds=seconds,
    )


def _begin_progress(path: Path | None, recorder: str, end: datetime) -> None:
    if path is not None:
        path.write_text(json.dumps({"recorder": recorder, "end": end.isoformat()}))


def _progress(path: Path | None) -> tuple[str, datetime] | None:
    """The recorder id and log end of a load cut short, if `path` holds them."""
    if path is None:
        return None
    try:
        raw = json.loads(path.read_text())
        return raw["recorder"], datetime.fromisoformat(raw["end"])
    except (OSError, ValueError, KeyError):
        return None


async def _store(store: RecordStore, batch: list[dict[str, Any]], tag: BatchTag) -> None:
    result = await store.store(batch, tag)
    # Duplicates: the batch a cut-short load was storing, stored again.
    if result.inserted + result.duplicates != len(batch) or result.quarantined:
        raise RuntimeError(f"batch {tag.seq}: {result}")


async def build_indexes(uri: str) -> float:
    """Every index the proxy wants, built now on a database loaded before it
    asked for them (the proxy would build them at start-up, slowly)."""
    started = time.perf_counter()
    client = _client(uri)
    try:
        await ensure_all_indexes(client[DATABASE], None)
    finally:
        await client.close()
    return time.perf_counter() - started


async def ensure_zone_days(uri: str) -> float | None:
    """The local-day and local-hour rollups of ZONES, backfilled from the log
    when the database was loaded without them (as `recording.rebuild_rollups
    --zones` would); returns the seconds that took, None when they were there."""
    client = _client(uri)
    try:
        db = client[DATABASE]
        tiers = zone_tiers(ZONES[0])  # a database loaded before local hours lacks theirs
        if all([await db[ROLLUPS].find_one({"tier": t}, {"_id": 1}) for t in tiers]):
            return None
        started = time.perf_counter()
        # No batch marks: nothing replays the load's batches against these.
        read, written = await rebuild_zones(db, ZONES, marks={})
        seconds = time.perf_counter() - started
        print(
            f"  local days and hours of {', '.join(ZONES)}: {written:,} documents from {read:,} "
            f"requests in {seconds:.0f} s",
            flush=True,
        )
        return seconds
    finally:
        await client.close()


def _manifest(folder: Path) -> Loaded | None:
    try:
        raw = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return Loaded.from_json(raw) if raw.get("version") == GENERATOR_VERSION else None


def _loading_database(storage: str, port: int) -> subprocess.Popen[bytes]:
    """The development database with a cache of LOAD_CACHE for the load: with the
    shipped 256 MB, every insert's index entries (the words index alone grows
    by ~80 per request) land on pages evicted long ago, and a 1M load took
    hours. The pages are measured on a server started as `make run` starts it."""
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "secantusd-py"),
            *("--port", str(port), "--storage-path", storage, "--log-level", "WARNING"),
            *("--standalone", "--cache-size", LOAD_CACHE),
        ],
        env=server_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _load_folder(folder: Path, count: int) -> Loaded:
    port = free_port()
    db_proc = _loading_database(str(folder / "db"), port)
    try:
        await asyncio.sleep(3)
        print(f"loading {count:,} requests into {folder}", flush=True)
        progress = folder / "loading.json"
        loaded = await load(f"mongodb://127.0.0.1:{port}", count, folder / "quarantine", progress)
        _save_manifest(folder, loaded)
        progress.unlink()
        return loaded
    finally:
        db_proc.terminate()
        db_proc.wait(600)


async def one_size(
    count: int,
    runs: int,
    folder: Path,
    loaded: Loaded | None,
    *,
    load_only: bool,
    only: str = "",
) -> dict[str, Any]:
    """Serves `folder`'s database (loading it first when `loaded` is None) and
    measures the pages on it."""
    if loaded is None:
        loaded = await _load_folder(folder, count)
    if load_only:
        return {"count": count, "load_seconds": loaded.load_seconds}
    port = free_port()
    db_proc = start_database(str(folder / "db"), port)
    proxy = None
    uri = f"mongodb://127.0.0.1:{port}"
    try:
        opened = await wait_listening(port, DATABASE_OPEN_SECONDS)
        print(f"  the database opened in {opened:.0f} s", flush=True)
        index_seconds = await build_indexes(uri)
        zone_seconds = await ensure_zone_days(uri)
        proxy_port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SANIC_")},
            "PORT": str(proxy_port),
            "MONGODB_URI": uri,
            "MONGODB_DATABASE": DATABASE,
            "DATA_DIR": str(folder / "proxy-data"),
            "DASHBOARD_PASSWORD": PASSWORD,
            "LOG_LEVEL": "WARNING",
            "STATS_ZONES": ",".join(ZONES),
        }
        proxy = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")], env=env, start_new_session=True
        )
        url = f"http://127.0.0.1:{proxy_port}"
        await wait_ready(url + "/health", within=120)
        timings = await measure(url, loaded, runs, [worker_pid(proxy.pid), db_proc.pid], only)
        return {
            "count": count,
            "load_seconds": loaded.load_seconds,
            "index_seconds": index_seconds,
            "zone_backfill_seconds": zone_seconds,
            "data_end": loaded.end.isoformat(),
            "measured_at": datetime.now(UTC).isoformat(),
            "pages": {name: t.to_json() for name, t in timings.items()},
        }
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(60)
        db_proc.terminate()
        db_proc.wait(120)


def _save_manifest(folder: Path, loaded: Loaded) -> None:
    # Written once the load is complete: a load cut short is done again.
    (folder / "manifest.json").write_text(json.dumps(loaded.to_json(), indent=2))


def _fresh(folder: Path, reload: bool) -> Loaded | None:
    """The cached database's manifest, or None after emptying the folder (kept
    when a load was cut short: it resumes)."""
    loaded = None if reload else _manifest(folder)
    if loaded is None and not reload and (folder / "loading.json").exists():
        return None
    if loaded is None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    return loaded


def _timings(result: dict[str, Any]) -> dict[str, Timing]:
    return {name: Timing.from_json(raw) for name, raw in result["pages"].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description="dashboard page latency vs log size")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--runs", type=int, default=20, help="timed calls per page")
    parser.add_argument("--quick", action="store_true", help="--sizes 2000 --runs 5")
    parser.add_argument("--reload", action="store_true", help="load the databases afresh")
    parser.add_argument("--load-only", action="store_true", help="load (or check), no pages")
    parser.add_argument("--pages", default="", help="only the pages whose name holds this")
    parser.add_argument("--data", type=Path, default=DATA, help="where the databases are kept")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "dashboard.json")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.runs = "2000", 5
    stop_on_sigterm()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    for size in args.sizes.split(","):
        count = int(size)
        folder = args.data / str(count)
        loaded = _fresh(folder, args.reload)
        result = asyncio.run(
            one_size(count, args.runs, folder, loaded, load_only=args.load_only, only=args.pages)
        )
        results.append(result)
        # Saved and shown after each size: the 1M load takes a while.
        args.out.write_text(json.dumps(results, indent=2))
        if not args.load_only:
            measured = [(r["count"], _timings(r)) for r in results]
            print(report(measured), flush=True)
        else:
            print(f"{count:,}: loaded in {result['load_seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
