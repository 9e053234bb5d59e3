"""Exactly-once derived collections: however a batch's derived update is repeated,
cut short or raced by other recorders, the rollups and conversation summaries
end equal to what `recording.rebuild_rollups` computes from the request documents
(the brute force), and the batch marks never reach the API."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pymongo import AsyncMongoClient, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect

from bench.stats_data import documents
from conversations.repo import ConversationsRepo
from conversations.summary_writer import summary_writer
from recording.rebuild_rollups import applied_marks, rebuild, rebuild_conversations
from stats.derived_writer import APPLIED, BatchTag
from stats.rollup_writer import rollup_writer
from stats.rollups import ROLLUPS
from stats.service import StatsService
from storage.mongo import CONVERSATIONS, REQUESTS, connect

START = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
A = "a1a1a1a1a1a1a1a1"
B = "b2b2b2b2b2b2"


def _requests(count: int, start: datetime, span: timedelta, seed: int) -> list[dict[str, Any]]:
    """Request documents with what both the rollups and the summaries read."""
    rng = random.Random(seed)
    out = []
    for doc in documents(count, start, span, seed):
        doc["messageCount"] = rng.randrange(1, 40)
        doc["response"]["completedAt"] = doc["timestamp"] + timedelta(
            milliseconds=doc["responseTime"]
        )
        doc["conversation"] = {
            "id": f"conv-{rng.randrange(5)}",
            "thread": rng.choice(("main", "main", "subagent", "auxiliary")),
            "projectPath": rng.choice(("/src/alpha", "/src/beta")),
            "prompt": f"prompt {doc['requestId'][:8]}",
            "error": None if doc["statusCode"] == 200 else {"type": "overloaded_error"},
        }
        out.append(doc)
    return out


class Recorder:
    """What the recorder does with a batch: the request documents are stored,
    then the derived collections take the batch under its tag."""

    def __init__(self, db: AsyncDatabase[Any], recorder: str) -> None:
        self.db = db
        self.recorder = recorder
        self.rollups = rollup_writer(db[ROLLUPS])
        self.summaries = summary_writer(db[CONVERSATIONS])

    async def store(self, docs: list[dict[str, Any]]) -> None:
        await self.db[REQUESTS].insert_many([dict(d) for d in docs])

    async def apply(self, docs: list[dict[str, Any]], seq: int) -> int:
        tag = BatchTag(self.recorder, seq)
        return await self.rollups.apply(docs, tag) + await self.summaries.apply(docs, tag)


def _rounded(value: Any) -> Any:
    """Float sums differ in their last bits with the order of addition."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


async def _derived(db: AsyncDatabase[Any]) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {}
    for name in (ROLLUPS, CONVERSATIONS):
        async for doc in db[name].find({}, {APPLIED: 0}):
            if "models" in doc:
                doc["models"] = sorted(doc["models"])  # a set
            state[f"{name}/{doc['_id']}"] = _rounded(doc)
    return state


async def _assert_equals_the_brute_force(db: AsyncDatabase[Any]) -> None:
    kept = await _derived(db)
    assert kept
    await rebuild(db)
    await rebuild_conversations(db)
    assert kept == await _derived(db)


async def _daily_requests(db: AsyncDatabase[Any]) -> int:
    rows = await db[ROLLUPS].find({"tier": "d", "cuboid": ""}).to_list(None)
    return sum(int(row.get("requests", 0)) for row in rows)


@pytest.mark.parametrize("times", [2, 3])
async def test_the_same_batch_applied_again_counts_once(db: AsyncDatabase[Any], times: int) -> None:
    recorder = Recorder(db, A)
    first = _requests(30, START, timedelta(hours=2), seed=1)
    second = _requests(30, START + timedelta(minutes=30), timedelta(hours=2), seed=2)
    await recorder.store(first + second)
    assert await recorder.apply(first, 1) > 0
    for _ in range(times - 1):
        assert await recorder.apply(first, 1) == 0
    assert await recorder.apply(second, 2) > 0
    for _ in range(times - 1):
        assert await recorder.apply(second, 2) == 0
    assert await _daily_requests(db) == 60
    await _assert_equals_the_brute_force(db)


class _CutShort:
    """A derived collection whose next bulk_write reaches the server with only
    some of its updates, then fails on the network: the process died, or the
    connection dropped, part-way through an unordered bulk. Each update is one
    document's whole delta with its mark, so a target has all of it or none:
    which targets the cut leaves written is all there is to vary."""

    def __init__(
        self, collection: AsyncCollection[Any], landed: Callable[[list[UpdateOne]], list[UpdateOne]]
    ) -> None:
        self._collection = collection
        self._landed = landed
        self.armed = True
        self.landed = 0
        self.total = 0

    async def bulk_write(self, requests: list[UpdateOne], **kwargs: Any) -> Any:
        if not self.armed:
            return await self._collection.bulk_write(requests, **kwargs)
        self.armed = False
        landed = self._landed(requests)
        self.landed, self.total = len(landed), len(requests)
        if landed:
            await self._collection.bulk_write(landed, ordered=False)
        raise AutoReconnect("connection reset mid-batch")


CUTS: dict[str, Callable[[list[UpdateOne]], list[UpdateOne]]] = {
    "first-half": lambda ops: ops[: len(ops) // 2],
    "random-subset": lambda ops: random.Random(5).sample(ops, len(ops) // 3),
    "all-but-one": lambda ops: ops[1:],
    "none": lambda ops: [],
}


@pytest.mark.parametrize("cut", list(CUTS))
async def test_a_batch_cut_part_way_is_completed_by_its_retry(
    db: AsyncDatabase[Any], cut: str
) -> None:
    recorder = Recorder(db, A)
    earlier = _requests(25, START, timedelta(hours=3), seed=3)
    batch = _requests(40, START + timedelta(minutes=20), timedelta(hours=3), seed=4)
    await recorder.store(earlier + batch)
    await recorder.apply(earlier, 1)  # so the batch meets marks of an older seq too

    tag = BatchTag(A, 2)
    for name, make in ((ROLLUPS, rollup_writer), (CONVERSATIONS, summary_writer)):
        cut_short = _CutShort(db[name], CUTS[cut])
        with pytest.raises(AutoReconnect):
            await make(cut_short).apply(batch, tag)  # type: ignore[operator]
        # The cut left the batch in some targets only (or in none).
        assert cut_short.landed < cut_short.total
        assert await db[name].count_documents({f"{APPLIED}.{A}": 2}) == cut_short.landed

    # The restarted recorder retries the same batch (twice, for good measure).
    assert await recorder.apply(batch, 2) > 0
    assert await recorder.apply(batch, 2) == 0
    assert await _daily_requests(db) == 65
    await _assert_equals_the_brute_force(db)


@pytest.fixture
async def second_client(mongo_uri: str) -> AsyncIterator[AsyncMongoClient[Any]]:
    client: AsyncMongoClient[Any] = connect(mongo_uri, timeout=120)
    yield client
    await client.close()


async def test_two_recorders_racing_on_the_same_buckets_count_everything_once(
    db: AsyncDatabase[Any], second_client: AsyncMongoClient[Any]
) -> None:
    """Each round both recorders apply a batch to the same new buckets (a fresh
    minute, the same conversations) at once, from two clients, then each retries
    its batch (a crash after the update), also at once."""
    one = Recorder(db, A)
    two = Recorder(second_client[db.name], B)
    stored: list[dict[str, Any]] = []
    for round_ in range(12):
        minute = START + timedelta(minutes=round_)
        mine = _requests(8, minute, timedelta(seconds=50), seed=100 + round_)
        theirs = _requests(8, minute, timedelta(seconds=50), seed=200 + round_)
        stored += mine + theirs
        await asyncio.gather(one.store(mine), two.store(theirs))
        seq = 10 + round_
        firsts = await asyncio.gather(one.apply(mine, seq), two.apply(theirs, seq))
        assert all(firsts)
        assert await asyncio.gather(one.apply(mine, seq), two.apply(theirs, seq)) == [0, 0]
    assert await _daily_requests(db) == len(stored)
    summaries = await db[CONVERSATIONS].find({}).to_list(None)
    assert sum(s["requestCount"] for s in summaries) == len(stored)
    await _assert_equals_the_brute_force(db)


async def test_an_older_seq_from_the_same_recorder_is_ignored(db: AsyncDatabase[Any]) -> None:
    recorder = Recorder(db, A)
    newer = _requests(12, START, timedelta(seconds=30), seed=6)
    # A late, older batch landing in exactly the same buckets and conversations.
    older = []
    for n, doc in enumerate(_requests(12, START, timedelta(seconds=30), seed=6)):
        doc["_id"] = doc["requestId"] = f"late-{n}"
        older.append(doc)
    await recorder.store(newer)
    assert await recorder.apply(newer, 5) > 0
    assert await recorder.apply(older, 3) == 0
    assert await recorder.apply(older, 5) == 0  # the same seq again, too
    assert await _daily_requests(db) == 12
    await _assert_equals_the_brute_force(db)  # the older batch's requests are not stored
    later = _requests(6, START + timedelta(seconds=40), timedelta(seconds=10), seed=7)
    await recorder.store(later)
    assert await recorder.apply(later, 6) > 0  # the next seq is counted
    assert await _daily_requests(db) == 18


async def test_a_rebuild_keeps_the_marks_so_traffic_after_it_stays_exact(
    db: AsyncDatabase[Any],
) -> None:
    one, two = Recorder(db, A), Recorder(db, B)
    batches = [
        _requests(15, START + timedelta(minutes=5 * n), timedelta(hours=1), n) for n in range(4)
    ]
    for docs in batches[:3]:
        await one.store(docs)
    await one.apply(batches[0], 1)
    await one.apply(batches[1], 2)  # applied, but the recorder died before it knew
    await two.summaries.apply(batches[2], BatchTag(B, 7))  # its rollups not yet

    assert await applied_marks(db) == {A: 2, B: 7}
    await rebuild(db)
    await rebuild_conversations(db)
    for name in (ROLLUPS, CONVERSATIONS):
        marks = await db[name].distinct(APPLIED)
        assert marks == [{A: 2, B: 7}], name

    # The restarted recorders retry their unfinished batches, then go on.
    assert await one.apply(batches[1], 2) == 0
    assert await two.apply(batches[2], 7) == 0
    await one.store(batches[3])
    assert await one.apply(batches[3], 3) > 0
    assert await _daily_requests(db) == 60
    await _assert_equals_the_brute_force(db)


async def test_a_rebuild_without_marks_writes_none(db: AsyncDatabase[Any]) -> None:
    docs = _requests(10, START, timedelta(hours=1), seed=8)
    await db[REQUESTS].insert_many(docs)
    await rebuild(db)
    await rebuild_conversations(db)
    for name in (ROLLUPS, CONVERSATIONS):
        assert await db[name].count_documents({}) > 0
        assert await db[name].count_documents({APPLIED: {"$exists": True}}) == 0


async def test_the_marks_never_reach_the_api(db: AsyncDatabase[Any]) -> None:
    recorder = Recorder(db, A)
    docs = _requests(40, START, timedelta(hours=6), seed=9)
    await recorder.store(docs)
    await recorder.apply(docs, 1)
    for name in (ROLLUPS, CONVERSATIONS):  # the marks are there to leak
        assert await db[name].count_documents({f"{APPLIED}.{A}": 1}) > 0

    stats = StatsService(db)
    tz = ZoneInfo("Europe/Paris")
    end = START + timedelta(hours=6)
    outputs: list[Any] = [
        await stats.organizations(),
        await stats.usage(None, None, None, None),
    ]
    for model, org in [(None, None), ("claude-haiku-4-5-20251001", None), (None, "org-beta")]:
        outputs += [
            await stats.usage(START, end, model, org),
            await stats.daily(START, end, tz, model, org),
            await stats.hourly(START, end, 15, tz, model, org),
            await stats.models(START, end, model, org),
            await stats.latency(START, end, model, org),
            await stats.rate_limits(START, end, 60, tz, org),
        ]
    repo = ConversationsRepo(db)
    outputs += [
        await repo.page(1, 50),
        await repo.page(1, 50, model="haiku"),
        await repo.page(1, 50, project="/src/beta"),
    ]
    assert outputs[-1][1] > 0 and outputs[1]["total_requests"] == 40
    text = json.dumps(outputs, default=str)
    assert APPLIED not in text and A not in text


async def test_the_latest_rate_limit_state_is_the_same_however_requests_are_batched(
    db: AsyncDatabase[Any],
) -> None:
    """Snapshots within one second: the fold ranks them to the millisecond, as
    MongoDB's `$max` does, so one batch and three give the same state."""
    recorder = Recorder(db, A)
    docs = _requests(3, START, timedelta(seconds=3), seed=10)
    second = START + timedelta(seconds=5)
    for doc, model, ms in zip(docs, ("m-y", "m-x", "m-y"), (0, 900, 950), strict=True):
        doc.update(
            model=model, organizationId="org-alpha", timestamp=second + timedelta(milliseconds=ms)
        )
    await recorder.store(docs)
    for seq, doc in enumerate(docs, 1):
        await recorder.apply([doc], seq)
    latest = await StatsService(db).rate_limits(
        START, START + timedelta(minutes=1), 1, UTC_ZONE, None
    )
    assert latest["latest"][0]["timestamp"] == "2026-11-03T08:00:05.950000Z"
    await _assert_equals_the_brute_force(db)
