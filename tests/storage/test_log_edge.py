"""The log's edge (storage.log_edge): the end of the newest minute the rollups
counted a request in, found coarsest tier first in a few small indexed reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from stats.rollups import ROLLUPS, fold
from storage import log_edge as le
from storage.mongo import ensure_rollup_indexes

NOW = datetime(2026, 11, 20, 12, 30, 40, tzinfo=UTC)


def requests_at(*times: datetime) -> list[dict[str, Any]]:
    return [
        {
            "requestId": f"{i:032x}",
            "timestamp": at,
            "model": "m",
            "statusCode": 200,
            "outcome": "completed",
        }
        for i, at in enumerate(times)
    ]


async def rolled_up(db: AsyncDatabase[Any], *times: datetime) -> AsyncCollection[Any]:
    await ensure_rollup_indexes(db[ROLLUPS])
    if times:
        await db[ROLLUPS].bulk_write([d.update() for d in fold(requests_at(*times))])
    return db[ROLLUPS]


def counting_finds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each `find` on the rollups appends how many documents it returned."""
    found: list[int] = []
    find = AsyncCollection.find

    def counted(self: AsyncCollection[Any], *a: Any, **kw: Any) -> Any:
        cursor = find(self, *a, **kw)
        to_list = cursor.to_list

        async def listed(length: int | None = None) -> list[Any]:
            docs = await to_list(length)
            found.append(len(docs))
            return docs

        cursor.to_list = listed  # type: ignore[method-assign]
        return cursor

    monkeypatch.setattr(AsyncCollection, "find", counted)
    return found


async def test_the_edge_is_the_end_of_the_newest_counted_minute(
    db: AsyncDatabase[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Busy a day and a half ago, one request 7 h 13 min ago, a few weeks back too.
    newest = NOW - timedelta(hours=7, minutes=13, seconds=20)
    busy = [NOW - timedelta(days=1, hours=12, minutes=m) for m in range(0, 600, 7)]
    old = [NOW - timedelta(days=d) for d in (9, 20, 31)]
    rollups = await rolled_up(db, newest, *busy, *old)
    reads = counting_finds(monkeypatch)
    edge = await le.log_edge(rollups, NOW)
    assert edge == newest.replace(second=0) + timedelta(minutes=1)
    # One read per tier, each within the newest counted bucket of the one before:
    # never more documents than a month of days, a day of hours, an hour of
    # quarters and a quarter of minutes.
    assert len(reads) == 4 and sum(reads) <= 33 + 24 + 4 + 15


async def test_a_request_ahead_of_the_clock_is_the_edge(db: AsyncDatabase[Any]) -> None:
    ahead = NOW + timedelta(hours=2, minutes=5)
    rollups = await rolled_up(db, NOW - timedelta(hours=3), ahead)
    assert await le.log_edge(rollups, NOW) == ahead.replace(second=0) + timedelta(minutes=1)


@pytest.mark.parametrize(
    "times",
    [(), (NOW - timedelta(days=le.EDGE_DAYS + 2),)],
    ids=["no rollups", "only older than EDGE_DAYS"],
)
async def test_no_edge_without_a_recent_count(
    db: AsyncDatabase[Any], times: tuple[datetime, ...]
) -> None:
    assert await le.log_edge(await rolled_up(db, *times), NOW) is None


async def test_a_missing_finer_tier_ends_at_the_coarser_bucket(db: AsyncDatabase[Any]) -> None:
    """Rollups being repaired (the minute tier of the newest hour not written yet):
    the edge is the end of the newest counted hour, never None nor a guess inside it."""
    at = NOW - timedelta(hours=5, minutes=20)
    rollups = await rolled_up(db, at)
    await rollups.delete_many({"tier": "m"})
    hour = at.replace(minute=0, second=0)
    assert await le.log_edge(rollups, NOW) == hour + timedelta(hours=1) - timedelta(minutes=45)
    await rollups.delete_many({"tier": "q"})
    assert await le.log_edge(rollups, NOW) == hour + timedelta(hours=1)


async def test_empty_buckets_do_not_count(db: AsyncDatabase[Any]) -> None:
    """A rollup whose count is zero (or not a number) is no request."""
    rollups = await rolled_up(db, NOW - timedelta(hours=30))
    later = NOW - timedelta(hours=2)
    for tier, seconds in (("d", 86400), ("h", 3600), ("q", 900), ("m", 60)):
        t = datetime.fromtimestamp(int(later.timestamp()) // seconds * seconds, UTC)
        await rollups.insert_one({"tier": tier, "cuboid": "", "t": t, "requests": 0})
    edge = await le.log_edge(rollups, NOW)
    assert edge == (NOW - timedelta(hours=30)).replace(second=0) + timedelta(minutes=1)


async def test_an_unreadable_rollup_collection_gives_no_edge(
    db: AsyncDatabase[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rollups = await rolled_up(db, NOW - timedelta(hours=1))

    def failing(*_a: Any, **_kw: Any) -> Any:
        raise PyMongoError("down")

    monkeypatch.setattr(AsyncCollection, "find", failing)
    assert await le.log_edge(rollups, NOW) is None


def test_the_queries_are_index_ranges_on_tier_cuboid_and_time() -> None:
    first = le.first_query(NOW)
    assert first == {
        "tier": "d",
        "cuboid": "",
        "t": {"$gte": datetime(2026, 11, 20, tzinfo=UTC) - timedelta(days=le.EDGE_DAYS)},
    }
    hour = datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert le.within(le.TIERS[1], hour, le.TIERS[2]) == {
        "tier": "q",
        "cuboid": "",
        "t": {"$gte": hour, "$lt": hour + timedelta(hours=1)},
    }
