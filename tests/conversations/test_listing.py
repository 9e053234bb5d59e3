"""The newest conversation summaries (conversations.listing) are read in ranges of
last activity near the rows wanted, also when the log has been quiet for hours:
the first range starts from the log's edge (the rollups), not from now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from conversations import listing
from stats.rollups import ROLLUPS, fold
from storage.mongo import CONVERSATIONS, ensure_all_indexes

NOW = datetime.now(UTC).replace(microsecond=0)


def summary(n: int, at: datetime) -> dict[str, Any]:
    return {"_id": f"conv-{n:04d}", "lastActivity": at, "startTime": at, "requestCount": 1}


def request(n: int, at: datetime) -> dict[str, Any]:
    return {"requestId": f"{n:032x}", "timestamp": at, "model": "m", "statusCode": 200}


def captured_windows(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The `lastActivity` condition of each summary read."""
    windows: list[dict[str, Any]] = []
    aggregate = AsyncCollection.aggregate

    async def capturing(self: AsyncCollection[Any], pipeline: Any, *a: Any, **kw: Any) -> Any:
        if self.name == CONVERSATIONS:
            windows.append(pipeline[0]["$match"]["lastActivity"])
        return await aggregate(self, pipeline, *a, **kw)

    monkeypatch.setattr(AsyncCollection, "aggregate", capturing)
    return windows


def inside(at: datetime, window: dict[str, Any]) -> bool:
    return window.get("$gte", datetime.min.replace(tzinfo=UTC)) <= at < window["$lt"]


@pytest.mark.parametrize("rollups", [True, False], ids=["with rollups", "without"])
async def test_a_quiet_log_is_read_near_its_newest_rows(
    db: AsyncDatabase[Any], monkeypatch: pytest.MonkeyPatch, rollups: bool
) -> None:
    """A summary every 15 minutes for four days, the newest ten hours ago. With
    the rollups, the ranges read hold little more than the 51 rows wanted; without
    them (an old log, rollups lost) the list is still right, read from now in
    ranges that grow across the quiet stretch."""
    await ensure_all_indexes(db, None)
    times = [NOW - timedelta(hours=10, minutes=15 * n) for n in range(400)]
    await db[CONVERSATIONS].insert_many([summary(n, at) for n, at in enumerate(times)])
    if rollups:
        deltas = fold([request(n, at) for n, at in enumerate(times)])
        await db[ROLLUPS].bulk_write([d.update() for d in deltas])
    windows = captured_windows(monkeypatch)
    docs = await listing.newest(db, 51)
    assert [d["_id"] for d in docs] == [f"conv-{n:04d}" for n in range(51)]
    in_ranges = sum(inside(at, w) for at in times for w in windows)
    if rollups:
        assert in_ranges <= 51 * 1.5 and len(windows) <= 3
        assert windows[0]["$lt"] == NOW + listing.SKEW or windows[0]["$lt"] > NOW
    else:
        # From now: 6 h (empty), 24 h (empty), then 96 h: most of the four days.
        assert in_ranges > 300


async def test_ranges_from_a_place_and_with_a_residual_filter(
    db: AsyncDatabase[Any],
) -> None:
    """From a place (keyset), ties at its instant first; a model filter checked on
    what each range found still fills the page from older ranges."""
    await ensure_all_indexes(db, None)
    at = NOW - timedelta(days=2)
    docs = [summary(n, at if n < 5 else at - timedelta(hours=n)) for n in range(40)]
    for n, doc in enumerate(docs):
        doc["models"] = ["claude-opus-5"] if n % 4 == 0 else ["claude-haiku-5-5"]
    await db[CONVERSATIONS].insert_many(docs)
    after = await listing.newest(db, 6, before=listing.Place(at, "conv-0002"))
    assert [d["_id"] for d in after] == [
        "conv-0003",
        "conv-0004",
        *(f"conv-{n:04d}" for n in range(5, 9)),
    ]
    opus = await listing.newest(db, 5, matching={"models": {"$regex": "opus"}})
    assert [d["_id"] for d in opus] == [f"conv-{n:04d}" for n in range(0, 20, 4)]


def test_the_first_range_reaches_past_the_quiet_stretch() -> None:
    upper = NOW + listing.SKEW
    edge = NOW - timedelta(hours=10)
    assert listing.first_range(upper, edge) == upper - edge + listing.FIRST_SPAN
    assert listing.first_range(upper, None) == listing.FIRST_SPAN
    assert listing.first_range(upper, upper + timedelta(hours=1)) == listing.FIRST_SPAN


def test_the_next_range_grows_by_what_the_last_found() -> None:
    span = timedelta(hours=6)
    assert listing.next_range(span, 0, 51) == span * listing.MAX_GROWTH
    assert listing.next_range(span, 25, 26) == span * (26 / 25)
    assert listing.next_range(span, 50, 10) == span  # never narrower
    assert listing.next_range(span, 1, 1000) == span * listing.MAX_GROWTH
