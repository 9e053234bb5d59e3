"""The derived-collection writer: folding in slices never changes what is counted."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from bench.stats_data import documents
from storage.derived_writer import FOLD_CHUNK
from storage.rollup_writer import rollup_writer
from storage.rollups import ROLLUPS, fold

START = datetime(2026, 11, 1, tzinfo=UTC)
COUNT = 3 * FOLD_CHUNK + 7


async def _daily_requests(db: AsyncDatabase[Any]) -> int:
    rows = await db[ROLLUPS].find({"tier": "d", "cuboid": ""}).to_list(None)
    return sum(int(row.get("requests", 0)) for row in rows)


async def test_a_batch_folded_in_slices_counts_every_document(db: AsyncDatabase[Any]) -> None:
    docs = list(documents(COUNT, START, timedelta(hours=3), seed=7))
    writer = rollup_writer(db[ROLLUPS])
    assert await writer.apply(docs)
    assert writer.pending == 0
    assert await db[ROLLUPS].count_documents({}) == len(fold(docs))
    assert await _daily_requests(db) == COUNT


async def test_cancelled_while_folding_still_counts_the_whole_batch(
    db: AsyncDatabase[Any],
) -> None:
    """The documents passed in are already stored: a cancellation between two
    slices must leave all of them in the pending deltas, not some."""
    docs = list(documents(COUNT, START, timedelta(hours=3), seed=8))
    writer = rollup_writer(db[ROLLUPS])
    task = asyncio.create_task(writer.apply(docs))
    await asyncio.sleep(0)  # the task folds its first slice and yields
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert writer.pending == len(fold(docs))
    assert await writer.apply([])
    assert await _daily_requests(db) == COUNT
