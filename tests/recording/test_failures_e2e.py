"""The recorder's promises against real processes and a database the test may
break: nothing lost, exactly once, never slowing a stream.

Each test runs `python app.py` (tests.conftest.start_proxy) on a PRIVATE
SecantusDB server (tests.recording.servers), also when MONGODB_URI names a
real MongoDB: these tests freeze the database, start it late, and SIGKILL or
freeze the recorder, which nobody else's server may suffer. Most of their run
time is the proxy starting (three Python processes importing the app).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from stats.rollups import ROLLUPS
from stats.timebuckets import TIERS
from storage.mongo import (
    CONVERSATION_TTL_INDEX,
    CONVERSATIONS,
    REQUESTS,
    TTL_INDEX,
    _conversation_models,
    _request_models,
    _rollup_models,
    connect,
)
from tests.conftest import ProxyProcess, free_port
from tests.fake_upstream import FakeUpstream
from tests.recording.servers import (
    SecantusServer,
    is_recorder,
    journal_ids,
    kill_recorder,
    launch,
    live_workers,
    recorder_pid,
    sigterm_pending,
    start_secantus,
    wait_exit,
    wait_writer,
)

# Serial (make test's second phase): requests timed against a stalled database.
pytestmark = pytest.mark.serial

DATABASE = "failures_e2e"
MODEL = "claude-sonnet-4-5-20250929"
STREAM_EVENTS = 23  # tests/fixtures/streams/tool_use.sse
FLUSH_TIMEOUT = 3.0
MONGODB_TIMEOUT = 2.0
# What SIGTERM → exit may take beyond the recorder's flush deadline, with the
# database down: the workers' exit (~2 s measured), the database operation the
# recorder is in when told to stop (MONGODB_TIMEOUT), closing its client
# (MONGODB_TIMEOUT when stalled), the processes' own exit.
EXIT_MARGIN = 2 * MONGODB_TIMEOUT + 4.0


# ---- traffic ------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    request_id: str
    status: int
    seconds: float
    upstream_seconds: float  # what the fake upstream itself spends on it
    complete: bool  # a stream ended with message_stop, a JSON body is a message


async def _send(http: aiohttp.ClientSession, url: str, n: int, delay_ms: int) -> Answer:
    """Request `n`: even ones stream tool_use (events `delay_ms` apart), odd ones
    get JSON; two in three carry a Claude Code session, the rest group by prompt."""
    stream = n % 2 == 0
    body = {
        "model": MODEL,
        "max_tokens": 100,
        "stream": stream,
        "messages": [{"role": "user", "content": f"question {n % 11}"}],
    }
    headers = {
        "content-type": "application/json",
        "x-api-key": "sk-ant-failures-e2e",
        "x-fake": "sse:tool_use" if stream else "json:text_basic",
    }
    if stream and delay_ms:
        headers["x-fake-delay-ms"] = str(delay_ms)
    if n % 3:
        headers["x-claude-code-session-id"] = f"session-{n % 5}"
    started = time.monotonic()
    async with http.post(f"{url}/v1/messages", data=json.dumps(body), headers=headers) as resp:
        raw = await resp.read()
        request_id = resp.headers.get("x-proxy-request-id", "")
        status = resp.status
    seconds = time.monotonic() - started
    if stream:
        complete = raw.rstrip().endswith(b'data: {"type":"message_stop"}')
    else:
        complete = json.loads(raw).get("type") == "message"
    upstream_seconds = (STREAM_EVENTS - 1) * delay_ms / 1000 if stream else 0.0
    return Answer(request_id, status, seconds, upstream_seconds, complete)


async def traffic(
    url: str,
    count: int,
    *,
    concurrency: int,
    first: int = 0,
    spread: float = 0.0,
    delay_ms: int = 0,
) -> list[Answer]:
    """`count` requests, at most `concurrency` at once; with `spread`, request i
    starts no earlier than `spread * i / count` seconds in (traffic that lasts)."""
    gate = asyncio.Semaphore(concurrency)
    start = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:

        async def one(i: int) -> Answer:
            await asyncio.sleep(max(0.0, start + spread * i / count - time.monotonic()))
            async with gate:
                return await _send(http, url, first + i, delay_ms)

        answers = await asyncio.gather(*(one(i) for i in range(count)))
    bad = [a for a in answers if a.status != 200 or not a.complete or not a.request_id]
    assert not bad, f"{len(bad)} requests failed, e.g. {bad[:3]}"
    assert len({a.request_id for a in answers}) == count
    return answers


def ids(answers: Iterable[Answer]) -> list[str]:
    return [a.request_id for a in answers]


# ---- what the database holds --------------------------------------------------------
async def wait_stored(db: AsyncDatabase[Any], expected: list[str], within: float) -> None:
    """Until the request log holds every id of `expected` exactly once and nothing
    else (`within` 0: it must already)."""
    deadline = time.monotonic() + within
    want = Counter(expected)
    while True:
        docs = await db[REQUESTS].find({}, {"requestId": 1}).to_list(None)
        got = Counter(d["requestId"] for d in docs)
        assert all(d["_id"] == d["requestId"] for d in docs)
        if got == want:
            return
        if time.monotonic() >= deadline:
            missing, extra = want - got, got - want
            raise AssertionError(
                f"{len(docs)} documents for {len(expected)} requests: {len(missing)} missing "
                f"(e.g. {list(missing)[:3]}), {len(extra)} unexpected or repeated "
                f"(e.g. {list(extra)[:3]})"
            )
        await asyncio.sleep(0.2)


async def wait_caught_up(proxy: ProxyProcess, within: float) -> None:
    """Until the recorder has finished every batch: documents appear when a
    batch's insert returns, its rollups and summaries only when the batch ends,
    so the derived data is compared once nothing is pending."""
    await wait_writer(
        proxy,
        lambda w: (
            w.get("database_up") is True
            and w.get("pending_batch") is None
            and w.get("backlog_bytes") == 0
        ),
        within,
        "the recorder caught up",
    )


async def assert_derived_equal_brute_force(db: AsyncDatabase[Any]) -> None:
    """Rollup totals (cuboid "", every tier) and conversation summaries equal
    what the request documents add up to: each request counted exactly once."""
    docs = await db[REQUESTS].find({}, {"usage": 1, "conversation.id": 1}).to_list(None)
    usage = [d.get("usage") or {} for d in docs]
    want = {
        "requests": len(docs),
        "input": sum(u.get("input_tokens", 0) for u in usage),
        "output": sum(u.get("output_tokens", 0) for u in usage),
    }
    assert want["input"] > 0 and want["output"] > 0
    for tier in TIERS:
        rows = await db[ROLLUPS].find({"tier": tier.name, "cuboid": ""}).to_list(None)
        got = {name: sum(int(row.get(name, 0)) for row in rows) for name in want}
        assert got == want, f"tier {tier.name}"
    per_conversation = Counter(
        d["conversation"]["id"]
        for d in docs
        if isinstance((d.get("conversation") or {}).get("id"), str)
    )
    assert per_conversation, "no request was grouped into a conversation"
    summaries = await db[CONVERSATIONS].find({}, {"requestCount": 1}).to_list(None)
    assert {s["_id"]: s["requestCount"] for s in summaries} == dict(per_conversation)


# ---- the proxy and its recorder ----------------------------------------------------
def proxy_env(upstream: FakeUpstream, uri: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "ANTHROPIC_FORWARD_URL": upstream.url,
        "MONGODB_URI": uri,
        "MONGODB_DATABASE": DATABASE,
        "MONGODB_TIMEOUT": str(MONGODB_TIMEOUT),
        "DATA_DIR": str(data_dir),
        "WRITER_FLUSH_TIMEOUT": str(FLUSH_TIMEOUT),
        "GRACEFUL_SHUTDOWN_TIMEOUT": "1",
        **extra,
    }


def metric(text: str, name: str) -> float:
    samples = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)]
    assert samples, f"{name} is not in /metrics"
    return sum(samples)


# ---- the tests ----------------------------------------------------------------------
StartServer = Callable[..., SecantusServer]
StartProxy = Callable[..., ProxyProcess]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[StartServer]:
    """Starts private servers (`port=`: on that one); kills them all at the end."""
    started: list[SecantusServer] = []

    def start(port: int | None = None) -> SecantusServer:
        started.append(start_secantus(tmp_path, port))
        return started[-1]

    yield start
    for server in started:
        server.kill()  # its data dies with the test: no need to wait for a clean stop


@pytest.fixture
def proxies(tmp_path: Path, upstream: FakeUpstream, servers: StartServer) -> Iterator[StartProxy]:
    """Starts proxies on `tmp_path/data`; stops them all at the end, before the
    servers (this fixture depends on theirs), so a recorder can still flush."""
    started: list[ProxyProcess] = []

    def start(uri: str, **extra: str) -> ProxyProcess:
        started.append(launch(tmp_path, proxy_env(upstream, uri, tmp_path / "data", **extra)))
        return started[-1]

    yield start
    for proxy in started:
        proxy.stop()


async def test_recorder_sigkilled_mid_batch_under_traffic(
    servers: StartServer, proxies: StartProxy, tmp_path: Path
) -> None:
    """Three SIGKILLs of the recorder under traffic, each with a batch in
    progress: every request stored once, counted once in the derived data."""
    seed = random.randrange(1 << 30)
    print(f"seed {seed}")  # shown on failure: the pauses before each kill
    server = servers()
    proxy = proxies(server.uri, SANIC_WORKERS="2")
    kills = asyncio.create_task(kill_recorder(tmp_path / "data", 3, random.Random(seed)))
    try:
        async with connect(server.uri, timeout=5) as client:
            answers = await traffic(proxy.url, 400, concurrency=16, spread=8.0, delay_ms=10)
            print(f"kills with a pending batch: {await kills} of 3")
            db = client[DATABASE]
            await wait_stored(db, ids(answers), within=45)
            await wait_caught_up(proxy, 15)
            await assert_derived_equal_brute_force(db)
            # Whole records, not stubs: every stream was folded into its message.
            assert await db[REQUESTS].count_documents({"stopReason": "tool_use"}) == 200
            assert await db[REQUESTS].count_documents({"stopReason": "end_turn"}) == 200
        writer = await wait_writer(
            proxy, lambda w: (w.get("recorder") or {}).get("starts", 0) >= 4, 10, "4 starts"
        )
        assert writer["recorder"]["quarantined"] == 0
        async with aiohttp.ClientSession() as http, http.get(f"{proxy.url}/metrics") as resp:
            metrics = await resp.text()
        assert metric(metrics, "claude_proxy_log_records_lost_total") == 0
        assert metric(metrics, "claude_proxy_log_bodies_dropped_total") == 0
    finally:
        kills.cancel()


async def test_stalled_database_never_slows_a_request(
    servers: StartServer, proxies: StartProxy
) -> None:
    """A SIGSTOPped database costs the clients nothing; once resumed it gets
    everything, once."""
    server = servers()
    proxy = proxies(server.uri)
    health: list[tuple[int, float]] = []

    async def poll_health() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            while True:
                started = time.monotonic()
                async with http.get(f"{proxy.url}/health") as resp:
                    health.append((resp.status, time.monotonic() - started))
                await asyncio.sleep(0.1)

    poller: asyncio.Task[None] | None = None
    try:
        async with connect(server.uri, timeout=5) as client:
            db = client[DATABASE]
            # Stored first, so the stall hits connections the recorder already holds.
            warm = await traffic(proxy.url, 4, concurrency=4)
            await wait_stored(db, ids(warm), within=20)
            server.sigstop()
            stalled_at = time.monotonic()
            poller = asyncio.create_task(poll_health())
            answers = await traffic(proxy.url, 100, concurrency=16, first=4, delay_ms=10)
            slow = [a for a in answers if a.seconds > a.upstream_seconds + 2.0]
            assert not slow, f"{len(slow)} requests slowed by the stalled database: {slow[:3]}"
            within = stalled_at + 15 - time.monotonic()
            await wait_writer(proxy, lambda w: w["database_up"] is False, within, "database down")
            assert not poller.done(), poller  # it raised: /health failed or hung
            poller.cancel()
            assert len(health) > 5
            assert all(status == 200 and took < 2.0 for status, took in health), health
            server.sigcont()
            await wait_stored(db, ids(warm + answers), within=30)
            await wait_caught_up(proxy, 15)
            await assert_derived_equal_brute_force(db)
    finally:
        if poller is not None:
            poller.cancel()
        server.sigcont()


async def test_late_database_gets_every_record_and_index(
    servers: StartServer, proxies: StartProxy
) -> None:
    """No database at start-up: served anyway, then stored and indexed (TTL
    included) once one listens."""
    port = free_port()
    uri = f"mongodb://127.0.0.1:{port}"
    proxy = proxies(uri, LOG_RETENTION_DAYS="3")
    answers = await traffic(proxy.url, 20, concurrency=8)
    await wait_writer(proxy, lambda w: w.get("database_up") is False, 15, "database down")
    servers(port)
    async with connect(uri, timeout=5) as client:
        db = client[DATABASE]
        await wait_stored(db, ids(answers), within=40)
        wanted = {
            REQUESTS: _request_models(),
            ROLLUPS: _rollup_models(),
            CONVERSATIONS: _conversation_models(),
        }
        found = {
            name: {ix["name"]: ix for ix in await (await db[name].list_indexes()).to_list(None)}
            for name in wanted
        }
    for name, models in wanted.items():
        for spec in (model.document for model in models):
            assert spec["name"] in found[name], f"{name}: index {spec['name']} missing"
            assert dict(found[name][spec["name"]]["key"]) == dict(spec["key"])
    assert found[REQUESTS]["requestId_unique"].get("unique") is True
    ttl = found[REQUESTS][TTL_INDEX]
    assert dict(ttl["key"]) == {"timestamp": 1} and ttl["expireAfterSeconds"] == 259200
    assert found[CONVERSATIONS][CONVERSATION_TTL_INDEX]["expireAfterSeconds"] == 259200


async def test_sigterm_stores_everything_before_exit(
    servers: StartServer, proxies: StartProxy, tmp_path: Path
) -> None:
    """The recorder is stopped after the last worker exited, and stores what is
    left before the proxy exits."""
    server = servers()
    proxy = proxies(server.uri, SANIC_WORKERS="2")
    recorder = await recorder_pid(tmp_path / "data", other_than=None)
    try:
        # Frozen from before the traffic until its stop signal is waiting: all 50
        # are still in the journal then, and only the recorder's stop stores them.
        os.kill(recorder, signal.SIGSTOP)
        answers = await traffic(proxy.url, 50, concurrency=10)
        proxy.signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while not sigterm_pending(recorder):
            assert time.monotonic() < deadline, "the recorder was never told to stop"
            await asyncio.sleep(0.01)
        assert live_workers(proxy) == [], "the recorder was stopped before the workers"
        os.kill(recorder, signal.SIGCONT)
        code, _ = wait_exit(proxy, FLUSH_TIMEOUT + EXIT_MARGIN)
        assert code == 0, proxy.log()[-3000:]
        async with connect(server.uri, timeout=5) as client:
            await wait_stored(client[DATABASE], ids(answers), within=0)
            await assert_derived_equal_brute_force(client[DATABASE])
    finally:
        if is_recorder(recorder):
            os.kill(recorder, signal.SIGCONT)


async def test_sigterm_with_the_database_stalled_keeps_the_journal(
    servers: StartServer, proxies: StartProxy, tmp_path: Path
) -> None:
    """A stalled database (rather than one refusing connections) is the harder
    case for the exit deadline: every operation hangs until its own timeout,
    and what the recorder sent may still be applied once the database resumes."""
    server = servers()
    proxy = proxies(server.uri)
    try:
        async with connect(server.uri, timeout=5) as client:
            warm = await traffic(proxy.url, 5, concurrency=5)
            await wait_stored(client[DATABASE], ids(warm), within=20)
        server.sigstop()
        down = await traffic(proxy.url, 30, concurrency=8, first=5)
        proxy.signal(signal.SIGTERM)
        code, took = wait_exit(proxy, FLUSH_TIMEOUT + EXIT_MARGIN)
        assert code == 0, proxy.log()[-3000:]
        print(f"exited {took:.1f}s after SIGTERM")
        left = journal_ids(tmp_path / "data")
        assert set(ids(down)) <= left, f"{len(set(ids(down)) - left)} records not in the journal"
        server.sigcont()
        again = proxies(server.uri)  # the same DATA_DIR
        async with connect(server.uri, timeout=5) as client:
            await wait_stored(client[DATABASE], ids(warm + down), within=30)
            await wait_caught_up(again, 15)
            await assert_derived_equal_brute_force(client[DATABASE])
    finally:
        server.sigcont()
