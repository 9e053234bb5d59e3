"""The log writer: batches, outages, crashes: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

import storage.writer
from storage.journal import Journal, encode_line
from storage.mongo import REQUESTS, connect, ensure_indexes
from storage.pricing import PriceTable
from storage.requests_repo import RequestsRepo
from storage.writer import LogWriter
from streaming.exchange import Exchange, Outcome
from tests.conftest import ROOT, free_port
from tests.storage.conftest import Relay

PRICES = PriceTable.load()


def make_exchange(n: int, body_size: int = 0) -> Exchange:
    body = {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": f"q{n}"}],
        "pad": "x" * body_size,
    }
    exchange = Exchange(
        method="POST",
        path="/v1/messages",
        query="",
        request_headers=[("x-api-key", "sk-secret")],
        request_body=json.dumps(body).encode(),
        request_json=body,
        model="claude-sonnet-4-5",
        request_id=f"{n:032x}",
    )
    exchange.status = 200
    exchange.response_body = b'{"type":"message","usage":{"input_tokens":10,"output_tokens":2}}'
    exchange.finish(Outcome.COMPLETED)
    return exchange


async def wait_for(predicate: Any, within: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_batches_are_written_exactly_once(db: AsyncDatabase[Any], tmp_path: Path) -> None:
    await ensure_indexes(db[REQUESTS], None)
    writer = LogWriter(db, Journal(tmp_path / "journal"), PRICES)
    writer.start()
    for n in range(60):
        writer.submit(make_exchange(n))
    for n in range(10):  # the same records again: must not duplicate
        writer.submit(make_exchange(n))

    async def all_written() -> bool:
        return await db[REQUESTS].count_documents({}) == 60 and writer.stats().queue_depth == 0

    await wait_for(all_written)
    await writer.close(5)
    assert await db[REQUESTS].count_documents({}) == 60
    assert writer.stats().journal_files == 0


async def test_database_down_then_back_loses_nothing(
    relay: Relay, db: AsyncDatabase[Any], tmp_path: Path
) -> None:
    client = connect(relay.uri)
    via_relay = client[db.name]
    writer = LogWriter(via_relay, Journal(tmp_path / "journal"), PRICES)
    writer.start()
    for n in range(20):
        writer.submit(make_exchange(n))
    await wait_for(lambda: _count(db, 20))

    await relay.cut()
    for n in range(20, 50):
        writer.submit(make_exchange(n))

    async def journaled() -> bool:
        return writer.stats().journaled >= 30

    await wait_for(journaled)
    assert writer.stats().journal_bytes > 0
    assert not writer.stats().database_up

    await relay.restore()
    await wait_for(lambda: _count(db, 50), within=40)

    async def journal_empty() -> bool:
        return writer.stats().journal_files == 0

    await wait_for(journal_empty)
    await writer.close(5)
    await client.close()
    ids = sorted(
        d["requestId"] for d in await db[REQUESTS].find({}, {"requestId": 1}).to_list(None)
    )
    assert ids == [f"{n:032x}" for n in range(50)]


async def _count(db: AsyncDatabase[Any], expected: int) -> bool:
    return await db[REQUESTS].count_documents({}) == expected


async def test_linger_gathers_records_into_one_batch(
    db: AsyncDatabase[Any], tmp_path: Path
) -> None:
    """Records arriving in quick succession share one insert (one writer iteration),
    and close() does not wait out the linger to write them."""
    seen: list[int] = []
    writer = LogWriter(
        db,
        Journal(tmp_path / "journal"),
        PRICES,
        linger=5.0,
        on_stats=lambda stats: seen.append(stats.written),
    )
    writer.start()
    writer.submit(make_exchange(0))  # after idle: written at once
    await wait_for(lambda: _count(db, 1))
    for n in range(1, 8):
        writer.submit(make_exchange(n))
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    assert await db[REQUESTS].count_documents({}) == 1, "written before the linger ended"
    loop = asyncio.get_running_loop()
    started = loop.time()
    await writer.close(10)
    assert loop.time() - started < 4, "close() waited for the linger"
    assert await db[REQUESTS].count_documents({}) == 8
    assert [w for w in seen if w > 1] in ([], [8]), seen


async def test_full_queue_spills_to_the_journal(db: AsyncDatabase[Any], tmp_path: Path) -> None:
    writer = LogWriter(db, Journal(tmp_path / "journal"), PRICES, queue_max=3)
    for n in range(5):  # not started: the queue fills at once
        writer.submit(make_exchange(n))
    assert writer.stats().queue_depth == 3 and writer.stats().journaled == 2
    # The overflow is journaled by a background task, never fsync'ed on the
    # request path.
    assert writer.stats().journal_files == 0

    async def spilled() -> bool:
        return writer.stats().journal_files == 1

    await wait_for(spilled)
    writer.start()
    await wait_for(lambda: _count(db, 5))
    await writer.close(5)
    assert writer.stats().journal_files == 0


async def test_overflow_beyond_a_queue_length_is_journaled_at_once(
    db: AsyncDatabase[Any], tmp_path: Path
) -> None:
    """If the spill task falls a whole queue behind, submit appends itself:
    memory stays bounded."""
    writer = LogWriter(db, Journal(tmp_path / "journal"), PRICES, queue_max=2)
    for n in range(5):  # no await in between: the spill task cannot run
        writer.submit(make_exchange(n))
    assert writer.stats().journal_files == 1 and writer.stats().journaled == 3
    writer.start()
    await wait_for(lambda: _count(db, 5))
    await writer.close(5)


async def test_close_with_the_database_gone_journals_every_record(tmp_path: Path) -> None:
    gone = AsyncMongoClient(f"mongodb://127.0.0.1:{free_port()}", serverSelectionTimeoutMS=200)
    db = gone["gone"]
    writer = LogWriter(db, Journal(tmp_path / "journal"), PRICES, queue_max=2)
    for n in range(4):
        writer.submit(make_exchange(n))
    await writer.close(2)
    journaled = [
        d["requestId"] for f in Journal(tmp_path / "journal").files() for d in Journal.read(f)
    ]
    assert sorted(set(journaled)) == [f"{n:032x}" for n in range(4)]
    await gone.close()


async def test_close_flushes_queue(db: AsyncDatabase[Any], tmp_path: Path) -> None:
    writer = LogWriter(db, Journal(tmp_path / "journal"), PRICES)
    for n in range(30):
        writer.submit(make_exchange(n))
    await writer.close(10)  # never started: close alone must write everything
    assert await db[REQUESTS].count_documents({}) == 30


async def test_close_lets_a_batch_being_inserted_finish(
    db: AsyncDatabase[Any], tmp_path: Path
) -> None:
    """Cancelling an insert midway would push its batch into the journal, which in
    Kubernetes is deleted with the pod; close() waits for it instead."""
    writer = LogWriter(db, Journal(tmp_path / "journal"), PRICES)
    insert_many = writer._requests.insert_many
    started = asyncio.Event()

    async def slow_insert(*args: Any, **kwargs: Any) -> Any:
        started.set()
        await asyncio.sleep(0.5)
        return await insert_many(*args, **kwargs)

    writer._requests.insert_many = slow_insert  # type: ignore[method-assign]
    journaled: list[int] = []
    append = writer._journal.append
    writer._journal.append = lambda docs: (journaled.append(len(docs)), append(docs))[1]  # type: ignore[method-assign]
    writer.start()
    for n in range(10):
        writer.submit(make_exchange(n))
    await started.wait()
    for n in range(10, 15):  # queued behind the running batch
        writer.submit(make_exchange(n))
    await writer.close(10)
    assert await db[REQUESTS].count_documents({}) == 15
    assert journaled == []  # straight to MongoDB, never through the journal


KILLED_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, {root!r})
    from storage.journal import Journal
    from storage.mongo import connect
    from storage.pricing import PriceTable
    from storage.writer import LogWriter
    from tests.storage.test_writer import make_exchange

    async def main():
        db = connect("mongodb://127.0.0.1:{dead_port}")["unreachable"]
        writer = LogWriter(db, Journal({journal!r}), PriceTable.load())
        writer.start()
        for n in range(25):
            writer.submit(make_exchange(n))
        while writer.stats().journaled < 25:
            await asyncio.sleep(0.05)
        print("journaled", flush=True)
        await asyncio.sleep(60)  # killed here, before any replay could happen

    asyncio.run(main())
    """
)


async def test_process_killed_before_replay_loses_nothing(
    db: AsyncDatabase[Any], tmp_path: Path
) -> None:
    journal_dir = tmp_path / "journal"
    script = KILLED_WRITER.format(root=str(ROOT), dead_port=free_port(), journal=str(journal_dir))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    assert line.strip() == b"journaled"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    # The next start (another pid) replays what the dead process left.
    writer = LogWriter(db, Journal(journal_dir), PRICES)
    writer.start()
    await wait_for(lambda: _count(db, 25))
    await writer.close(5)
    assert list(journal_dir.iterdir()) == []


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append([{"_id": "a", "n": 1}, {"_id": "b", "n": 2}])
    journal.close()
    file = journal.files()[0]
    with file.path.open("ab") as handle:
        handle.write(encode_line({"_id": "c"})[:-7])  # a crash mid-write
    with file.path.open("r+b") as handle:  # and a flipped byte in line 2
        data = handle.read().replace(b'"b"', b'"x"')
        handle.seek(0)
        handle.write(data)
    assert [d["_id"] for d in Journal.read(file)] == ["a"]


async def test_large_bodies_go_to_gridfs_and_come_back(
    db: AsyncDatabase[Any], tmp_path: Path
) -> None:
    big = make_exchange(7, body_size=17 * 1024 * 1024)  # over MongoDB's 16 MB document limit
    writer = LogWriter(db, Journal(tmp_path / "journal"), PRICES)
    writer.submit(big)
    await writer.close(60)
    stored = await db[REQUESTS].find_one({"requestId": big.request_id})
    assert stored is not None and stored["request"]["body"] is None
    assert stored["request"]["bodyRef"] == f"{big.request_id}:request"
    assert stored["usage"]["input_tokens"] == 10  # summary fields stay in the document
    full = await RequestsRepo(db).get(big.request_id)
    assert full is not None
    assert len(full["request"]["body"]["pad"]) == 17 * 1024 * 1024


async def test_retention_ttl_index_follows_the_setting(db: AsyncDatabase[Any]) -> None:
    async def ttl() -> Any:
        indexes = await (await db[REQUESTS].list_indexes()).to_list(None)
        return next(
            (ix.get("expireAfterSeconds") for ix in indexes if ix["name"] == "timestamp_ttl"), None
        )

    await ensure_indexes(db[REQUESTS], 30)
    assert await ttl() == 30 * 86400
    await ensure_indexes(db[REQUESTS], 7)
    assert await ttl() == 7 * 86400
    await ensure_indexes(db[REQUESTS], None)
    assert await ttl() is None
    names = {ix["name"] for ix in await (await db[REQUESTS].list_indexes()).to_list(None)}
    assert {"timestamp_desc", "requestId_unique", "model_time", "org_time", "session_time"} <= names


def test_live_siblings_files_are_not_replayed_but_dead_ones_are(tmp_path: Path) -> None:
    """Ownership is a held lock, not a PID: PIDs repeat after a container restart."""
    alive, other = Journal(tmp_path), Journal(tmp_path)
    alive.append([{"_id": "a"}])
    alive.seal()
    assert [f.owner for f in other.replayable()] == []  # its owner still holds the lock
    assert [f.owner for f in alive.replayable()] == [alive.owner]
    alive.close()  # the owner is gone (as after a crash, the lock is released)
    assert [f.owner for f in other.replayable()] == [alive.owner]


async def test_one_odd_record_never_costs_the_batch(
    db: AsyncDatabase[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value BSON refuses (lone surrogate from the upstream, an integer past 64
    bits) or a document that cannot be built: every record is still stored."""
    writer = LogWriter(db, Journal(tmp_path / "journal"), PRICES)
    exchanges = [make_exchange(n) for n in range(6)]
    exchanges[1].request_headers = [*exchanges[1].request_headers, ("x-note", "a\ud800b")]
    exchanges[2].ttfb_ms = 2.0**70
    build = storage.writer.build_document

    def build_or_fail(exchange: Exchange, prices: PriceTable) -> dict[str, Any]:
        if exchange is exchanges[3]:  # stands for any bug in document building
            raise KeyError("boom")
        return build(exchange, prices)

    monkeypatch.setattr(storage.writer, "build_document", build_or_fail)
    for exchange in exchanges:
        writer.submit(exchange)
    await writer.close(10)
    stored = {d["requestId"]: d async for d in db[REQUESTS].find({})}
    assert sorted(stored) == sorted(e.request_id for e in exchanges)
    assert "recordError" in stored[exchanges[3].request_id]
    assert stored[exchanges[3].request_id]["request"]["headers"] != [["x-api-key", "sk-secret"]]
    assert "recordError" not in stored[exchanges[0].request_id]
    assert ["x-note", "a\ufffdb"] in stored[exchanges[1].request_id]["request"]["headers"]
    assert stored[exchanges[2].request_id]["timeToFirstByte"] == str(2**70)
    assert stored[exchanges[0].request_id]["usage"]["input_tokens"] == 10
