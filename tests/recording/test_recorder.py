"""The recorder against a real database: journal → MongoDB exactly once, through
outages, crashes mid-batch, oversized and refused records."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect, BulkWriteError

from recording.checkpoint import Checkpoint
from recording.documents import build_record_document
from recording.handoff import encode_exchange
from recording.journal import JournalReader, JournalWriter, Record
from recording.quarantine import Quarantine
from recording.recorder import Recorder
from recording.store import RecordStore
from stats.rollups import ROLLUPS
from storage.bodies import BUCKET
from storage.mongo import REQUESTS, IndexKeeper, connect
from storage.pricing import PriceTable
from streaming.exchange import Exchange, Outcome
from tests.storage.conftest import Relay

PRICES = PriceTable.load()
MIB = 1024 * 1024


def make_exchange(n: int, text: str = "") -> Exchange:
    body = {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": f"question {n} {text}"}],
    }
    exchange = Exchange(
        method="POST",
        path="/v1/messages",
        query="",
        request_headers=[("x-api-key", "sk-secret"), ("content-type", "application/json")],
        request_body=json.dumps(body, ensure_ascii=False).encode(),
        request_json=body,
        model="claude-sonnet-4-5",
        request_id=f"{n:032x}",
    )
    exchange.status = 200
    reply = {
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": f"answer {n}"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10 + n, "output_tokens": 2},
    }
    exchange.response_chunks = [json.dumps(reply).encode()]
    exchange.response_headers = [("content-type", "application/json")]
    exchange.finish(Outcome.COMPLETED)
    return exchange


def hand_off(directory: Path, exchanges: list[Exchange]) -> None:
    writer = JournalWriter(
        directory,
        segment_bytes=64 * MIB,
        max_bytes=1024 * MIB,
        queue_bytes=256 * MIB,
        encode=encode_exchange,
    )
    writer.start()
    for exchange in exchanges:
        writer.submit(exchange, exchange.request_body, exchange.response_chunks)
    writer.close()


class Keeper:
    def __init__(self) -> None:
        self.resets = 0

    async def ensure(self) -> bool:
        return True

    def reset(self) -> None:
        self.resets += 1


def make_recorder(db: AsyncDatabase[Any], tmp: Path, *, batch_max: int = 500) -> Recorder:
    return Recorder(
        JournalReader(tmp / "journal"),
        Checkpoint.load(tmp / "checkpoint.json"),
        RecordStore(db, Quarantine(tmp / "quarantine", 64 * MIB)),
        Keeper(),
        lambda record: build_record_document(record, PRICES),
        batch_max=batch_max,
    )


async def drain(recorder: Recorder) -> int:
    total = 0
    while done := await recorder.step():
        total += done
    return total


async def rollup_requests(db: AsyncDatabase[Any]) -> int:
    docs = await db[ROLLUPS].find({"tier": "m", "cuboid": ""}).to_list(None)
    return sum(d.get("requests", 0) for d in docs)


async def rollup_input_tokens(db: AsyncDatabase[Any]) -> int:
    docs = await db[ROLLUPS].find({"tier": "d", "cuboid": ""}).to_list(None)
    return sum(d.get("input", 0) for d in docs)


async def test_journal_to_mongodb_exactly_once(db: AsyncDatabase[Any], tmp_path: Path) -> None:
    exchanges = [make_exchange(n) for n in range(120)]
    hand_off(tmp_path / "journal", exchanges)
    recorder = make_recorder(db, tmp_path, batch_max=50)
    assert recorder.reader.backlog(recorder.checkpoint.done) > 0
    assert await drain(recorder) == 120
    assert recorder.reader.backlog(recorder.checkpoint.done) == 0
    assert await db[REQUESTS].count_documents({}) == 120
    assert await rollup_requests(db) == 120
    assert await rollup_input_tokens(db) == sum(10 + n for n in range(120))
    assert recorder.checkpoint.pending is None and recorder.checkpoint.seq == 3
    # Everything stored: the journal keeps nothing of a writer that is gone.
    recorder._tidy()
    assert recorder.reader.size() == 0


async def test_crash_between_insert_and_counts_redoes_the_batch_once(
    db: AsyncDatabase[Any], tmp_path: Path
) -> None:
    hand_off(tmp_path / "journal", [make_exchange(n) for n in range(40)])
    first = make_recorder(db, tmp_path)
    store = first.store

    async def dies(documents: list[dict[str, Any]], tag: Any) -> int:
        raise AutoReconnect("connection lost after the insert landed")

    store._summaries.apply = dies  # type: ignore[method-assign]
    assert await first.step() == 0  # inserted, rollups counted, then "died"
    assert await db[REQUESTS].count_documents({}) == 40
    assert first.checkpoint.pending is not None

    # A new recorder process: the checkpoint names the batch to redo.
    second = make_recorder(db, tmp_path)
    assert second.checkpoint.pending == first.checkpoint.pending
    assert await drain(second) == 40
    assert await db[REQUESTS].count_documents({}) == 40
    assert await rollup_requests(db) == 40  # not 80
    summaries = await db["conversations"].find({}).to_list(None)
    assert sum(s["requestCount"] for s in summaries) == 40


async def test_outage_keeps_records_in_the_journal_then_stores_them(
    mongo_uri: str, database_name: str, tmp_path: Path
) -> None:
    from urllib.parse import urlsplit

    target = urlsplit(mongo_uri.split(",")[0])
    relay = Relay(target.hostname or "127.0.0.1", target.port or 27017)
    await relay.start()
    client = connect(relay.uri, timeout=2.0)
    db = client[database_name]
    try:
        hand_off(tmp_path / "journal", [make_exchange(n) for n in range(30)])
        recorder = make_recorder(db, tmp_path)
        await relay.cut()
        assert await recorder.step() == 0
        assert not recorder.database_up
        assert recorder.reader.size() > 0
        await relay.restore()
        recorder._down_until = 0.0
        assert await drain(recorder) == 30
        assert recorder.database_up
        assert await db[REQUESTS].count_documents({}) == 30
        assert await rollup_requests(db) == 30
    finally:
        await client.drop_database(database_name)
        await client.close()
        await relay.cut()


async def test_record_over_16_mib_in_bson_then_normal_ones(
    db: AsyncDatabase[Any], tmp_path: Path
) -> None:
    """Multi-byte text: under 16 Mi characters, over 16 MiB in UTF-8 and BSON."""
    big = make_exchange(0, text="é漢" * (3 * MIB))  # 6 Mi chars, ~15 MiB UTF-8 ... twice
    big.response_chunks = [
        json.dumps(
            {
                "type": "message",
                "content": [{"type": "text", "text": "漢" * (3 * MIB)}],
                "usage": {"input_tokens": 1, "output_tokens": 1},
            },
            ensure_ascii=False,
        ).encode()
    ]
    assert len(big.request_body) + len(big.response_chunks[0]) > 16 * MIB
    hand_off(tmp_path / "journal", [big] + [make_exchange(n) for n in range(1, 11)])
    recorder = make_recorder(db, tmp_path)
    assert await drain(recorder) == 11
    assert await db[REQUESTS].count_documents({}) == 11
    stored = await db[REQUESTS].find_one({"_id": big.request_id})
    assert stored is not None and stored["request"].get("bodyRef")
    assert await db[f"{BUCKET}.files"].count_documents({}) >= 1
    assert recorder.quarantined == 0


class RefusingCollection:
    """Answers insert_many as a server that refuses one document (write error
    121, document validation) and stores the rest."""

    def __init__(self, real: Any, refuse_id: str) -> None:
        self._real = real
        self._refuse = refuse_id

    async def insert_many(self, documents: list[dict[str, Any]], ordered: bool = True) -> None:
        keep = [d for d in documents if d["_id"] != self._refuse]
        index = next(i for i, d in enumerate(documents) if d["_id"] == self._refuse)
        await self._real.insert_many(keep, ordered=False)
        raise BulkWriteError(
            {
                "writeErrors": [{"index": index, "code": 121, "errmsg": "validation failed"}],
                "writeConcernErrors": [],
                "nInserted": len(keep),
            }
        )


async def test_refused_record_is_quarantined_and_never_blocks_the_rest(
    db: AsyncDatabase[Any], tmp_path: Path
) -> None:
    hand_off(tmp_path / "journal", [make_exchange(n) for n in range(10)])
    recorder = make_recorder(db, tmp_path)
    poison = f"{3:032x}"
    recorder.store._requests = RefusingCollection(db[REQUESTS], poison)  # type: ignore[assignment]
    assert await drain(recorder) == 10
    assert recorder.quarantined == 1
    assert await db[REQUESTS].count_documents({}) == 9
    assert await rollup_requests(db) == 9  # the refused record is not counted
    lines = (tmp_path / "quarantine").glob("*.jsonl")
    quarantined = [json.loads(line) for f in lines for line in f.read_text().splitlines()]
    assert [q["document"]["_id"] for q in quarantined] == [poison]
    assert recorder.checkpoint.pending is None  # nothing left blocked


async def test_indexes_are_ensured_before_each_batch_after_an_outage(
    db: AsyncDatabase[Any], tmp_path: Path
) -> None:
    hand_off(tmp_path / "journal", [make_exchange(n) for n in range(3)])
    recorder = make_recorder(db, tmp_path)
    recorder.indexes = IndexKeeper(db, retention_days=7)
    assert await drain(recorder) == 3
    names = {ix["name"] async for ix in await db[REQUESTS].list_indexes()}
    assert "timestamp_ttl" in names


@pytest.mark.parametrize("records", [1, 7])
async def test_records_read_back_carry_their_journal_positions(
    tmp_path: Path, records: int
) -> None:
    hand_off(tmp_path / "journal", [make_exchange(n) for n in range(records)])
    reader = JournalReader(tmp_path / "journal")
    (owner,) = reader.owners()
    from recording.journal import Position

    read: list[Record] = reader.read(owner, Position(0, 0), max_records=100, max_bytes=1 << 30)
    assert len(read) == records
    assert all(a.end == b.start for a, b in itertools.pairwise(read))


async def test_a_batch_failing_by_a_defect_is_quarantined_after_three_tries(
    db: AsyncDatabase[Any], tmp_path: Path
) -> None:
    hand_off(tmp_path / "journal", [make_exchange(n) for n in range(5)])
    recorder = make_recorder(db, tmp_path, batch_max=3)
    real = recorder.store.store
    calls = 0

    async def broken(documents: list[dict[str, Any]], tag: Any) -> Any:
        nonlocal calls
        calls += 1
        if tag.seq == 1:
            raise KeyError("a bug, not an outage")
        return await real(documents, tag)

    recorder.store.store = broken  # type: ignore[method-assign]
    for _ in range(3):
        recorder._down_until = 0.0
        await recorder.step()
    assert recorder.checkpoint.seq == 1 and recorder.quarantined == 3
    recorder._down_until = 0.0
    assert await drain(recorder) == 2
    assert await db[REQUESTS].count_documents({}) == 2
    assert len(list((tmp_path / "quarantine").glob("*.jsonl"))) == 1


async def test_stopping_gives_up_a_batch_stuck_on_a_stalled_database(
    db: AsyncDatabase[Any], tmp_path: Path
) -> None:
    """SIGTERM while a batch hangs (a stalled MongoDB, up to MONGODB_TIMEOUT):
    the batch is abandoned at once, kept pending in the checkpoint, and the flush
    window starts now; the redo then stores it exactly once."""
    import asyncio

    hand_off(tmp_path / "journal", [make_exchange(n) for n in range(4)])
    recorder = make_recorder(db, tmp_path)
    real = recorder.store.store
    hang = asyncio.Event()

    async def stalled(documents: list[dict[str, Any]], tag: Any) -> Any:
        hang.set()
        await asyncio.sleep(3600)

    recorder.store.store = stalled  # type: ignore[method-assign]
    stopping = asyncio.Event()
    running = asyncio.create_task(recorder.run(stopping))
    await asyncio.wait_for(hang.wait(), 10)
    stopping.set()
    await asyncio.wait_for(running, 2)  # not after the stall
    assert recorder.checkpoint.pending is not None
    recorder.store.store = real  # type: ignore[method-assign]
    assert await recorder.drain(10)
    assert await db[REQUESTS].count_documents({}) == 4
    assert await rollup_requests(db) == 4
