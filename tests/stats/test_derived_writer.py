"""The derived-collection writer: folding in slices never changes what is counted,
batch tags are checked, and only a refused guarded upsert counts as "applied"."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from bench.stats_data import documents
from stats.derived_writer import DUPLICATE_KEY, FOLD_CHUNK, BatchTag, guarded_update
from stats.rollup_writer import rollup_writer
from stats.rollups import ROLLUPS, fold

START = datetime(2026, 11, 1, tzinfo=UTC)
COUNT = 3 * FOLD_CHUNK + 7
RID = "0123456789abcdef"


async def _daily_requests(db: AsyncDatabase[Any]) -> int:
    rows = await db[ROLLUPS].find({"tier": "d", "cuboid": ""}).to_list(None)
    return sum(int(row.get("requests", 0)) for row in rows)


async def test_a_batch_folded_in_slices_counts_every_document(db: AsyncDatabase[Any]) -> None:
    docs = list(documents(COUNT, START, timedelta(hours=3), seed=7))
    writer = rollup_writer(db[ROLLUPS])
    assert await writer.apply(docs, BatchTag(RID, 1)) == len(fold(docs))
    assert await db[ROLLUPS].count_documents({}) == len(fold(docs))
    assert await _daily_requests(db) == COUNT


async def test_cancelled_while_folding_writes_nothing_and_the_retry_counts_once(
    db: AsyncDatabase[Any],
) -> None:
    docs = list(documents(COUNT, START, timedelta(hours=3), seed=8))
    writer = rollup_writer(db[ROLLUPS])
    task = asyncio.create_task(writer.apply(docs, BatchTag(RID, 1)))
    await asyncio.sleep(0)  # the task folds its first slice and yields
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await db[ROLLUPS].count_documents({}) == 0
    assert await writer.apply(docs, BatchTag(RID, 1)) == len(fold(docs))
    assert await _daily_requests(db) == COUNT


async def test_without_a_tag_every_call_counts(db: AsyncDatabase[Any]) -> None:
    docs = list(documents(5, START, timedelta(minutes=1), seed=9))
    writer = rollup_writer(db[ROLLUPS])
    await writer.apply(docs)
    await writer.apply(docs)
    assert await _daily_requests(db) == 10
    assert await db[ROLLUPS].count_documents({"applied": {"$exists": True}}) == 0


@pytest.mark.parametrize(
    "recorder",
    ["0123456789A", "0123456789ABCDEF", "0123456789a", "0" * 33, "0123456789ab.d", "$0123456789ab"],
)
def test_recorder_ids_must_be_12_to_32_lowercase_hex_digits(recorder: str) -> None:
    with pytest.raises(ValueError, match="recorder"):
        BatchTag(recorder, 1)


@pytest.mark.parametrize("seq", [-1, True, 1.0, "1", 2**63])
def test_seq_must_be_a_non_negative_int64(seq: Any) -> None:
    with pytest.raises(ValueError, match="seq"):
        BatchTag(RID, seq)


def test_bounds_of_a_valid_tag() -> None:
    assert BatchTag("0" * 12, 0).field == "applied.000000000000"
    assert BatchTag("f" * 32, 2**63 - 1).seq == 2**63 - 1


def test_the_guarded_update_adds_the_delta_and_the_mark_in_one_upsert() -> None:
    (doc,) = documents(1, START, timedelta(minutes=1))
    delta = fold([doc])[0]
    update = guarded_update(delta, BatchTag(RID, 7))
    assert update._filter == {"_id": delta.id, f"applied.{RID}": {"$not": {"$gte": 7}}}
    assert update._doc == {**delta.change(), "$set": {f"applied.{RID}": 7}}
    assert update._upsert is True


class _Racing:
    """The rollups, where another recorder's upsert of the same brand-new
    documents wins the race: on the first bulk_write, those updates get the
    duplicate key error without having been applied (what the server answers
    when both insert at once), the others land."""

    def __init__(self, collection: AsyncCollection[Any], other: BatchTag) -> None:
        self._collection = collection
        self._other = other
        self.raced = 0

    async def bulk_write(self, requests: list[UpdateOne], **kwargs: Any) -> Any:
        if self.raced:
            return await self._collection.bulk_write(requests, **kwargs)
        lost = list(range(0, len(requests), 2))
        self.raced = len(lost)
        for index in lost:  # the winner's insert, with its own mark and no counts
            update = requests[index]
            await self._collection.insert_one(
                {
                    "_id": update._filter["_id"],
                    **update._doc["$setOnInsert"],
                    "applied": {self._other.recorder: self._other.seq},
                }
            )
        landed = [r for i, r in enumerate(requests) if i not in lost]
        result = await self._collection.bulk_write(landed, ordered=False)
        raise BulkWriteError(
            {
                "writeErrors": [
                    {
                        "index": i,
                        "code": DUPLICATE_KEY,
                        "keyPattern": {"_id": 1},
                        "errmsg": "E11000",
                    }
                    for i in lost
                ],
                "writeConcernErrors": [],
                "nMatched": result.matched_count,
                "nUpserted": result.upserted_count,
            }
        )


async def test_a_lost_insert_race_is_retried_not_taken_for_applied(
    db: AsyncDatabase[Any],
) -> None:
    docs = list(documents(40, START, timedelta(minutes=30), seed=10))
    racing = _Racing(db[ROLLUPS], BatchTag("ffffffffffff", 1))
    writer = rollup_writer(racing)  # type: ignore[arg-type]
    assert await writer.apply(docs, BatchTag(RID, 1)) == len(fold(docs))
    assert racing.raced > 0
    assert await _daily_requests(db) == 40
    marked = await db[ROLLUPS].count_documents({f"applied.{RID}": 1})
    assert marked == len(fold(docs))


async def test_a_duplicate_on_another_unique_index_raises(db: AsyncDatabase[Any]) -> None:
    """Only a collision on `_id` can mean "already applied"."""
    await db[ROLLUPS].create_index("cuboid", unique=True, name="one_per_cuboid")
    docs = list(documents(1, START, timedelta(minutes=1), seed=11))
    with pytest.raises(BulkWriteError) as raised:
        await rollup_writer(db[ROLLUPS]).apply(docs, BatchTag(RID, 1))
    assert {e["code"] for e in raised.value.details["writeErrors"]} == {DUPLICATE_KEY}


class _WriteConcernFailing:
    def __init__(self, collection: AsyncCollection[Any]) -> None:
        self._collection = collection

    async def bulk_write(self, requests: list[UpdateOne], **kwargs: Any) -> Any:
        result = await self._collection.bulk_write(requests, **kwargs)
        raise BulkWriteError(
            {
                "writeErrors": [],
                "writeConcernErrors": [{"code": 64, "errmsg": "waiting for replication"}],
                "nMatched": result.matched_count,
                "nUpserted": result.upserted_count,
            }
        )


async def test_a_write_concern_error_raises(db: AsyncDatabase[Any]) -> None:
    docs = list(documents(3, START, timedelta(minutes=1), seed=12))
    writer = rollup_writer(_WriteConcernFailing(db[ROLLUPS]))  # type: ignore[arg-type]
    with pytest.raises(BulkWriteError):
        await writer.apply(docs, BatchTag(RID, 1))


async def test_an_empty_batch_writes_nothing(db: AsyncDatabase[Any]) -> None:
    assert await rollup_writer(db[ROLLUPS]).apply([], BatchTag(RID, 1)) == 0
    assert await db[ROLLUPS].count_documents({}) == 0
