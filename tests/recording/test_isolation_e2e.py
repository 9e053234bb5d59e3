"""The worker's memory and event loop stay isolated from recording, measured from outside.

Each test runs the proxy as a real process (`python app.py`) and watches its
serving worker through /proc (the recorder `python -m recording` is another child
of the same main process and is never the one measured). The fake upstream runs
as a process of its own, so the client's timings are not the upstream's GIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from stats.rollups import ROLLUPS
from storage.mongo import REQUESTS, connect
from tests.conftest import ROOT, ProxyProcess, free_port, start_proxy, wait_http
from tests.fake_upstream import big_chunks, long_stream
from tests.storage.conftest import Relay

# Serial (make test's second phase): stream gaps and /health under 200 ms, RSS.
pytestmark = pytest.mark.serial

MIB = 1024 * 1024
MESSAGES = "/v1/messages"
FILE_CONTENT = "/v1/files/file_011CNha8iCJcU1wXNR6q4V8w/content"
MODEL = "claude-sonnet-4-5-20250929"


# ---- measuring the worker from outside -----------------------------------------------


def children(manager: int) -> list[tuple[int, list[bytes]]]:
    path = Path(f"/proc/{manager}/task/{manager}/children")
    return [
        (int(pid), Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"))
        for pid in path.read_text().split()
    ]


def worker_pid(manager: int) -> int:
    """The process serving requests: Sanic's spawned worker, not the recorder
    (`python -m recording`), SecantusDB or multiprocessing's helpers, which Sanic
    does not name."""
    found = [
        pid
        for pid, _ in children(manager)
        if b"SANIC_WORKER_NAME=Sanic-Server" in Path(f"/proc/{pid}/environ").read_bytes()
    ]
    assert len(found) == 1, f"expected one worker under {manager}, found {found}"
    return found[0]


def recorder_pid(manager: int) -> int:
    found = [pid for pid, args in children(manager) if args[1:3] == [b"-m", b"recording"]]
    assert len(found) == 1, f"expected one recorder under {manager}, found {found}"
    return found[0]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def tree_bytes(directory: Path) -> int:
    """Every file under `directory` (segments, locks), as the disk holds them."""
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


class Peak:
    """The highest value of `sample()`, taken every few ms on a thread of its own,
    so a busy client loop cannot miss a peak."""

    def __init__(self, sample: Callable[[], float], every: float = 0.01) -> None:
        self._sample = sample
        self._every = every
        self.baseline = self.peak = sample()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.peak = max(self.peak, self._sample())

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())

    @property
    def growth(self) -> float:
        return self.peak - self.baseline


@cache
def big_digest(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in big_chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


# ---- fixtures and clients ------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    """tests.fake_upstream as its own process: producing 200 MB, or reading 5 MB
    bodies, must not compete with the client for this process's GIL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_upstream", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(port, "/v1/models")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
async def logdb(mongo_uri: str, database_name: str) -> AsyncIterator[AsyncDatabase[Any]]:
    client = connect(mongo_uri)
    yield client[database_name]
    await client.drop_database(database_name)
    await client.close()


Launch = Callable[..., ProxyProcess]


@pytest.fixture
def launch(
    tmp_path: Path, upstream_url: str, mongo_uri: str, logdb: AsyncDatabase[Any]
) -> Iterator[Launch]:
    """Start the proxy on the test's database (`MONGODB_URI` may be overridden); it is
    stopped after the test."""
    started: list[ProxyProcess] = []

    def run(**env: str) -> ProxyProcess:
        base = {"ANTHROPIC_FORWARD_URL": upstream_url, "MONGODB_URI": mongo_uri}
        base |= {"MONGODB_DATABASE": logdb.name, "LOG_LEVEL": "WARNING"}
        started.append(start_proxy(tmp_path, base | env))
        return started[-1]

    yield run
    for proxy in started:
        proxy.stop()


async def eventually(check: Callable[[], Awaitable[Any]], within: float) -> Any:
    """`await check()` until it returns something truthy; the last value otherwise."""
    deadline = time.monotonic() + within
    while not (value := await check()) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return value


async def stored(
    db: AsyncDatabase[Any], ids: list[str], within: float = 30.0
) -> dict[str, dict[str, Any]]:
    """The documents of `ids` once the recorder stored them all (bodies left out)."""

    async def found() -> list[dict[str, Any]]:
        query = db[REQUESTS].find({"_id": {"$in": ids}}, {"request.body": 0, "response.body": 0})
        docs = await query.to_list()
        return docs if len(docs) == len(ids) else []

    docs = {doc["_id"]: doc for doc in await eventually(found, within)}
    assert docs, f"not all of {ids} were stored within {within}s"
    return docs


async def download(
    http: aiohttp.ClientSession,
    proxy: ProxyProcess,
    size: int,
    *,
    pace: float = 0.0,
    together: asyncio.Barrier | None = None,
) -> tuple[str, int, str]:
    """GET a `big:` body through the proxy, a 64 KiB read at a time, sleeping `pace`
    after each MiB (and after the first read, waiting for the other downloads at
    `together`); returns the request id, the bytes received and their sha256."""
    digest = hashlib.sha256()
    received = 0
    async with http.get(proxy.url + FILE_CONTENT, headers={"x-fake": f"big:{size}"}) as resp:
        assert resp.status == 200
        assert "content-length" not in resp.headers  # relayed chunked, as the upstream sent it
        while chunk := await resp.content.read(64 * 1024):
            digest.update(chunk)
            if pace and (received + len(chunk)) // MIB > received // MIB:
                await asyncio.sleep(pace)
            received += len(chunk)
            if together is not None:
                await together.wait()
                together = None
        return resp.headers["x-proxy-request-id"], received, digest.hexdigest()


def small_buffers() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        read_bufsize=64 * 1024, timeout=aiohttp.ClientTimeout(total=120, sock_read=30)
    )


def messages_body(system: str, text: str) -> bytes:
    message = {"role": "user", "content": text}
    return json.dumps(
        {"model": MODEL, "max_tokens": 64, "system": system, "messages": [message]}
    ).encode()


# ---- 1. a slow reader of a large non-SSE body ------------------------------------------


async def test_slow_reader_of_200mb_keeps_the_worker_flat(
    launch: Launch, logdb: AsyncDatabase[Any]
) -> None:
    size = 200 * MIB
    proxy = launch()
    worker = worker_pid(proxy.proc.pid)
    async with small_buffers() as http:
        # The first large relay allocates what every later one reuses (buffers, the
        # journal's first segment): growth is measured past that.
        await download(http, proxy, 24 * MIB)
        await asyncio.sleep(0.5)
        with Peak(lambda: rss_mb(worker)) as rss:
            request_id, received, digest = await download(http, proxy, size, pace=0.01)
    assert received == size and digest == big_digest(size)
    # LOG_BODY_MAX_BYTES (16 MiB) is what the capture may hold; the rest is relayed only.
    assert rss.growth < 48, f"worker RSS grew {rss.growth:.1f} MB (from {rss.baseline:.0f})"
    doc = (await stored(logdb, [request_id]))[request_id]
    assert doc["response"]["bodyClipped"] is True
    assert doc["response"]["bodyBytes"] == size
    assert doc["statusCode"] == 200 and doc["outcome"] == "completed"


# ---- 2. the per-worker capture budget --------------------------------------------------


async def test_concurrent_downloads_stay_within_the_capture_budget(
    launch: Launch, logdb: AsyncDatabase[Any]
) -> None:
    size, cap = 3 * MIB, 2 * MIB
    proxy = launch(LOG_CAPTURE_BUDGET_BYTES=str(4 * MIB), LOG_BODY_MAX_BYTES=str(cap))
    worker = worker_pid(proxy.proc.pid)
    async with small_buffers() as http:
        await download(http, proxy, size)
        await asyncio.sleep(0.5)
        with Peak(lambda: rss_mb(worker)) as rss:
            together = asyncio.Barrier(8)
            results = await asyncio.gather(
                *(download(http, proxy, size, together=together) for _ in range(8))
            )
    assert [(n, d) for _, n, d in results] == [(size, big_digest(size))] * 8
    assert rss.growth < 40, f"worker RSS grew {rss.growth:.1f} MB (from {rss.baseline:.0f})"
    ids = [request_id for request_id, _, _ in results]
    docs = await stored(logdb, ids)
    sent = b"".join(big_chunks(size))
    kept_sizes = []
    for request_id in ids:
        response = docs[request_id]["response"]
        assert response["bodyClipped"] is True and response["bodyBytes"] == size
        body = await logdb[REQUESTS].find_one({"_id": request_id}, {"response.body": 1})
        kept = body["response"]["body"].encode()  # the pattern's bytes are ASCII
        # What was captured is the body's beginning, within the per-response cap.
        assert len(kept) <= cap and sent.startswith(kept)
        kept_sizes.append(len(kept))
    # All eight were open at once (each waited for the others after its first read)
    # and together could hold 4 MiB: some were clipped below their own 2 MiB cap,
    # which without the budget none is (a read is at most 256 KiB).
    assert min(kept_sizes) < cap - 256 * 1024, kept_sizes


# ---- 3. content-driven work never runs on the worker -----------------------------------


@dataclass
class Stalls:
    gaps: list[float] = field(default_factory=list)  # between a stream's arrivals, s
    health: list[float] = field(default_factory=list)  # /health's answer times, s
    ids: list[str] = field(default_factory=list)  # the bodies' request ids


async def under_streams(proxy: ProxyProcess, bodies: list[bytes], streams: int) -> Stalls:
    """Send `bodies` at once while `streams` streams of an event every 20 ms are
    open and /health is asked every 20 ms; what the clients waited."""
    stalls = Stalls()
    done = threading.Event()
    statuses: set[int] = set()
    events = 150

    async def stream(started: asyncio.Event) -> None:
        data = messages_body("", "stream please")
        headers = {"x-fake": f"long:{events}:20"}
        async with client.post(proxy.url + MESSAGES, data=data, headers=headers) as resp:
            received, last = b"", None
            async for chunk in resp.content.iter_any():
                now = time.monotonic()
                if last is not None:
                    stalls.gaps.append(now - last)
                received, last = received + chunk, now
                started.set()
        assert received == b"".join(long_stream(events))  # relayed whole, byte for byte

    def poll_health() -> None:
        # A thread with a blocking client: a busy moment of this test's own event
        # loop must not count as the worker's.
        connection = HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        while not done.wait(0.02):
            start = time.monotonic()
            connection.request("GET", "/health")
            with connection.getresponse() as resp:
                resp.read()
            stalls.health.append(time.monotonic() - start)
            statuses.add(resp.status)
        connection.close()

    async def send(body: bytes) -> str:
        headers = {"x-fake": "json:text_basic"}
        async with client.post(proxy.url + MESSAGES, data=body, headers=headers) as resp:
            assert resp.status == 200
            await resp.read()
            return resp.headers["x-proxy-request-id"]

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client:
        starts = [asyncio.Event() for _ in range(streams)]
        tasks = [asyncio.create_task(stream(started)) for started in starts]
        await asyncio.wait_for(asyncio.gather(*(started.wait() for started in starts)), 10)
        poller = threading.Thread(target=poll_health, daemon=True)
        poller.start()
        try:
            stalls.ids = await asyncio.gather(*(send(body) for body in bodies))
            await asyncio.gather(*tasks)
        finally:
            done.set()
            poller.join()
    assert statuses == {200} and stalls.health, statuses
    return stalls


async def test_adversarial_and_huge_bodies_do_not_stall_streams(
    launch: Launch, logdb: AsyncDatabase[Any]
) -> None:
    proxy = launch()
    # The prompt that once froze a worker for seconds: a working-directory label,
    # then a megabyte of blanks with no line end.
    adversarial = messages_body("working directory: x" + " \t" * (MIB // 2), "hi")
    # A long session's body: 5 MB of turns of 20 KB (tool results, files read). What
    # parsing many more, smaller values costs the worker is the test after this one.
    turns = [{"role": role, "content": "t" * 20480} for role in ["user", "assistant"] * 128]
    huge = json.dumps({"model": MODEL, "max_tokens": 64, "messages": turns}).encode()
    stalls = await under_streams(proxy, [adversarial] * 4 + [huge] * 4, streams=8)
    p99 = pct(stalls.gaps, 99)
    assert p99 < 0.2, f"p99 gap {p99 * 1000:.0f} ms, max {max(stalls.gaps) * 1000:.0f}"
    assert max(stalls.health) < 0.2, f"/health took up to {max(stalls.health) * 1000:.0f} ms"
    docs = await stored(logdb, stalls.ids, within=60)
    assert all(doc["outcome"] == "completed" for doc in docs.values())


async def test_a_body_of_many_small_json_values_does_not_stall_streams(launch: Launch) -> None:
    # The recorder need not store it: it is the worker's stall that is measured.
    proxy = launch(WRITER_FLUSH_TIMEOUT="1")
    blocks = b",".join([b'{"type":"text","text":""}'] * 800_000)  # 20 MB
    body = b'{"model":"%s","max_tokens":64,"messages":[{"role":"user","content":[%s]}]}' % (
        MODEL.encode(),
        blocks,
    )
    stalls = await under_streams(proxy, [body], streams=2)
    assert max(stalls.gaps) < 0.2, f"a stream stalled {max(stalls.gaps) * 1000:.0f} ms"
    assert max(stalls.health) < 0.2, f"/health took up to {max(stalls.health) * 1000:.0f} ms"


# ---- 4. the journal cap during an outage -----------------------------------------------


async def writer_when(
    http: aiohttp.ClientSession, proxy: ProxyProcess, ready: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """/livez's `writer` once `ready(writer)` (the recorder publishes once a second)."""

    async def check() -> dict[str, Any] | None:
        async with http.get(proxy.url + "/livez") as resp:
            writer = (await resp.json())["writer"]
        return writer if ready(writer) else None

    writer = await eventually(check, 10)
    assert writer, "/livez never showed the expected writer state"
    return writer


async def metric(http: aiohttp.ClientSession, proxy: ProxyProcess, name: str) -> float:
    async with http.get(proxy.url + "/metrics") as resp:
        text = await resp.text()
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{.*}})? (\S+)$", text, re.MULTILINE))


async def test_journal_stays_capped_through_an_outage_then_drains(
    launch: Launch, tmp_path: Path, mongo_uri: str, logdb: AsyncDatabase[Any]
) -> None:
    count, segment, cap = 60, 256 * 1024, 4 * MIB
    # Nothing listens on the port until the relay opens it, forwarding to the
    # session's database (SecantusDB, or the real MongoDB of MONGODB_URI).
    target = urlsplit(mongo_uri.split(",")[0])
    relay = Relay(target.hostname or "127.0.0.1", target.port or 27017)
    relay.port = free_port()
    proxy = launch(
        MONGODB_URI=relay.uri,
        MONGODB_TIMEOUT="1",
        JOURNAL_MAX_BYTES=str(cap),
        JOURNAL_SEGMENT_BYTES=str(segment),
        SANIC_WORKERS="1",
    )
    body = messages_body("", "z" * 200_000)
    # A record journaled without its bodies is ~2.5 KB: to reach the cap itself within
    # 60 requests, each carries a long query, which the record keeps twice (the query
    # and the upstream URL).
    url = proxy.url + MESSAGES + "?pad=" + "q" * 7000
    ids: list[str] = []
    try:
        async with aiohttp.ClientSession() as http:
            with Peak(lambda: tree_bytes(tmp_path / "data" / "journal"), 0.005) as disk:
                for _ in range(count):
                    async with http.post(
                        url, data=body, headers={"x-fake": "json:text_basic"}
                    ) as resp:
                        assert resp.status == 200  # forwarding never waits on recording
                        ids.append(resp.headers["x-proxy-request-id"])
                writer = await writer_when(
                    http, proxy, lambda w: w["journaled"] + w["lost"] == count
                )
            assert writer["bodies_dropped"] > 0 and writer["lost"] > 0, writer
            assert disk.peak <= cap + 1 * segment, f"journal reached {disk.peak} bytes"
            await writer_when(http, proxy, lambda w: w["database_up"] is False)

            async def exported() -> bool:
                lost = await metric(http, proxy, "claude_proxy_log_records_lost_total")
                dropped = await metric(http, proxy, "claude_proxy_log_bodies_dropped_total")
                return (lost, dropped) == (writer["lost"], writer["bodies_dropped"])

            assert await eventually(exported, 5), "/metrics disagrees with /livez"

            await relay.start()

            async def all_stored() -> bool:
                return await logdb[REQUESTS].count_documents({}) == writer["journaled"]

            assert await eventually(all_stored, 45), "the backlog was not stored"
            # Each record counted once by the recorder, and once in the rollups.
            done = await writer_when(http, proxy, lambda w: w["written"] == writer["journaled"])
            assert done["recorder"]["duplicates"] == 0, done
        daily = logdb[ROLLUPS].find({"tier": "d", "cuboid": ""}, {"requests": 1})
        assert sum([doc.get("requests", 0) async for doc in daily]) == writer["journaled"]
        projection = {"request.body": 1, "request.bodyBytes": 1, "bodiesDropped": 1}
        docs = {doc["_id"]: doc async for doc in logdb[REQUESTS].find({}, projection)}
        assert set(docs) <= set(ids) and len(docs) + writer["lost"] == count
        # In the order sent: bodies while under 90 % of the cap, then without
        # bodies, then lost once the cap itself is reached.
        kinds = []
        for request_id in ids:
            doc = docs.get(request_id)
            if doc is None:
                kinds.append("lost")
            elif doc.get("bodiesDropped") == "journal_full":
                assert not doc["request"].get("body") and doc["request"]["bodyBytes"] == 0
                kinds.append("dropped")
            else:
                assert doc["request"]["bodyBytes"] == len(body)
                kinds.append("kept")
        assert kinds == sorted(kinds, key=["kept", "dropped", "lost"].index), kinds
        assert kinds.count("dropped") == writer["bodies_dropped"]
    finally:
        await asyncio.to_thread(proxy.stop)  # the relay serves the recorder meanwhile
        await relay.cut()


# ---- the recorder never outlives the proxy ---------------------------------------------


def has_exited(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie has exited; only its reaper is missing


async def test_recorder_stops_when_the_proxy_dies_without_stopping_it(launch: Launch) -> None:
    proxy = launch()
    recorder = recorder_pid(proxy.proc.pid)
    # The main process and its workers, as a SIGKILL of the pod's main process or
    # a failed start leaves them; the recorder runs in a session of its own.
    os.killpg(proxy.proc.pid, signal.SIGKILL)
    proxy.proc.wait(10)

    async def gone() -> bool:
        return has_exited(recorder)

    exited = await eventually(gone, 10)
    if not exited:
        os.kill(recorder, signal.SIGKILL)
    assert exited, "the recorder outlived the proxy that started it"
