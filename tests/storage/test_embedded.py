"""The embedded development database (storage/embedded.py) stays small and keeps up.

Started for real, as `make run` starts it, then written to: its command line caps the
cache and switches the oplog off, its environment carries the allocator settings, its
resident memory stays bounded while ~100 MB of records go in and while large
documents pass through, and batches of records shaped like the recorder's are stored
without stalling it. Measured numbers, with and without the settings, are next to
the bounds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from storage.embedded import CACHE_SIZE, MALLOC_ENV, SERVER_FLAGS, EmbeddedDB, start_embedded

MB = 1024 * 1024

# Measured on Linux x86-64, Python 3.11, SecantusDB 0.7.0b3 (the server holds ~51 MB
# right after start), 4 to 8 runs each:
# peak VmRSS while write_records runs: 116-143 MB as configured; 253-290 MB with
# SecantusDB's 1 GB cache and oplog, with or without MALLOC_ENV.
RSS_BOUND_MB = 180
# VmRSS growth over pass_large_documents: 16-21 MB as configured; 49-57 MB without
# MALLOC_ENV.
LARGE_GROWTH_BOUND_MB = 32

RECORD_BYTES = 8 * 1024  # about one request record with its bodies
RECORDS = 12_000  # ~96 MB
# The largest record the proxy stores inline (storage/bodies.py's LARGE_BODY_BYTES;
# bigger bodies go to GridFS in 255 kB chunks).
LARGE_DOCUMENT_BYTES = 4 * MB
LARGE_DOCUMENTS = 12


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # reported in kB
    raise AssertionError(f"no VmRSS for pid {pid}")


def size_mb(size: str) -> float:
    """A WiredTiger size such as 128M or 1G in MB."""
    match = re.fullmatch(r"(\d+)([KMG])", size)
    assert match, f"unexpected cache size {size!r}"
    return int(match[1]) * {"K": 1 / 1024, "M": 1, "G": 1024}[match[2]]


def proc_argv(pid: int) -> list[str]:
    return [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]


def proc_environ(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode().partition("=")[::2] for e in entries if e)


def payload(size: int) -> str:
    # Random, so neither WiredTiger's block compression nor string interning makes
    # the documents cheaper than real request bodies.
    return os.urandom(size // 2).hex()


def write_records(uri: str, pid: int) -> float:
    """Indexed inserts in batches, as the recorder writes; returns the server's peak
    RSS in MB, sampled after each batch."""
    peak = vm_rss_mb(pid)
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    try:
        requests = client["embedded_test"]["requests"]
        requests.create_index([("timestamp", -1)])
        requests.create_index([("model", 1), ("timestamp", -1)])
        batch = 50
        for start in range(0, RECORDS, batch):
            requests.insert_many(
                {"_id": n, "timestamp": n, "model": f"m{n % 5}", "body": payload(RECORD_BYTES)}
                for n in range(start, start + batch)
            )
            peak = max(peak, vm_rss_mb(pid))
        assert requests.count_documents({}) == RECORDS
    finally:
        client.close()
    return peak


def pass_large_documents(uri: str, pid: int) -> float:
    """Writes and reads back large documents; returns the server's RSS growth in MB
    (its peak over the whole pass against what it held before)."""
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    try:
        requests = client["embedded_test"]["large"]
        requests.insert_one({"_id": "warm-up"})  # the collection and its files exist
        before = peak = vm_rss_mb(pid)
        for n in range(LARGE_DOCUMENTS):
            requests.insert_one({"_id": n, "body": payload(LARGE_DOCUMENT_BYTES)})
            peak = max(peak, vm_rss_mb(pid))
        for n in range(LARGE_DOCUMENTS):
            found = requests.find_one({"_id": n})
            assert found is not None and len(found["body"]) == LARGE_DOCUMENT_BYTES
            peak = max(peak, vm_rss_mb(pid))
    finally:
        client.close()
    return peak - before


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedDB]:
    db = start_embedded(str(tmp_path))
    try:
        yield db
    finally:
        db.stop()


def test_server_runs_with_a_capped_cache_and_no_oplog(embedded: EmbeddedDB) -> None:
    argv = proc_argv(embedded.process.pid)
    assert SERVER_FLAGS == ("--standalone", "--cache-size", CACHE_SIZE)
    # No replica-set advertisement, hence no oplog (see storage/embedded.py).
    assert "--standalone" in argv, argv
    assert "--cache-size" in argv, argv
    assert argv[argv.index("--cache-size") + 1] == CACHE_SIZE, argv
    # Well below SecantusDB's 1 GB default; above 128 MB, which the recorder's batches
    # stalled (see storage/embedded.py).
    assert 128 < size_mb(CACHE_SIZE) <= 1024 / 4


def test_server_runs_with_the_allocator_settings(embedded: EmbeddedDB) -> None:
    environ = proc_environ(embedded.process.pid)
    assert set(MALLOC_ENV) == {"MALLOC_MMAP_THRESHOLD_", "MALLOC_ARENA_MAX"}
    for name, value in MALLOC_ENV.items():
        assert environ.get(name) == value, f"{name}={environ.get(name)!r}, expected {value}"


def test_caller_environment_cannot_undo_the_allocator_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "64")
    db = start_embedded(str(tmp_path))
    try:
        assert proc_environ(db.process.pid)["MALLOC_ARENA_MAX"] == MALLOC_ENV["MALLOC_ARENA_MAX"]
    finally:
        db.stop()


def test_memory_stays_bounded_while_records_are_written(embedded: EmbeddedDB) -> None:
    peak = write_records(embedded.uri, embedded.process.pid)
    assert peak < RSS_BOUND_MB, f"embedded database peaked at {peak:.0f} MB RSS"


def test_large_documents_leave_no_heap_behind(embedded: EmbeddedDB) -> None:
    growth = pass_large_documents(embedded.uri, embedded.process.pid)
    assert growth < LARGE_GROWTH_BOUND_MB, f"RSS grew by {growth:.0f} MB"


def test_batches_of_records_do_not_stall_it(embedded: EmbeddedDB) -> None:
    """Records of ~8 kB in batches larger than SecantusDB's 4 MB insert transaction,
    the shape that pins the most cache per transaction. With the oplog on and a
    cache below ~96 MB the server retries such a transaction without end and this
    times out."""
    client: MongoClient[dict[str, Any]] = MongoClient(embedded.uri, timeoutMS=60_000)
    try:
        requests = client["embedded_test"]["requests"]
        requests.create_index([("timestamp", -1)])
        batch = 2048  # 16 MB
        for start in range(0, 2 * batch, batch):
            requests.insert_many(
                {"_id": n, "timestamp": n, "body": payload(RECORD_BYTES)}
                for n in range(start, start + batch)
            )
        assert requests.count_documents({}) == 2 * batch
    finally:
        client.close()
