"""The request list's first window is sized from the log's recent pace (the
quarter-hour rollups), so a sparse log is read in one window and a busy one in a narrow one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from stats.rollups import ROLLUPS, fold
from storage import list_plan as lp
from storage import queries as q
from storage.list_pace import Pace
from storage.mongo import REQUESTS, ensure_indexes, ensure_rollup_indexes
from storage.requests_repo import RequestsRepo

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)


def test_the_window_holds_the_rows_wanted_at_the_recent_pace() -> None:
    # 2,400 requests a day: 51 rows (half again) take 45.9 minutes.
    assert lp.paced_window(2400, 51) == timedelta(hours=24) * (1.5 * 51 / 2400)
    assert lp.paced_window(0, 51) == lp.FIRST_WINDOW  # nothing lately: grow from the default
    assert lp.paced_window(10**9, 51) == lp.MIN_FIRST_WINDOW
    assert lp.paced_window(1, 51) == lp.MAX_FIRST_WINDOW
    # A read of thousands starts with a window for PACED_ROWS and grows from there.
    assert lp.paced_window(2400, 10_001) == lp.paced_window(2400, lp.PACED_ROWS)


@pytest.mark.parametrize(
    ("f", "cuboid", "field", "counter"),
    [
        (q.RequestFilter(), "", None, "requests"),
        (q.RequestFilter(model="m", organization="o"), "m", ("model", "m"), "requests"),
        (q.RequestFilter(organization="o", streaming=True), "o", ("org", "o"), "requests"),
        (q.RequestFilter(status="error"), "", None, "errors"),
        (q.RequestFilter(status="2xx", words=("x",)), "", None, "requests"),
    ],
    ids=repr,
)
def test_the_pace_is_the_filters_own_when_the_rollups_have_it(
    f: q.RequestFilter, cuboid: str, field: tuple[str, str] | None, counter: str
) -> None:
    where, summed = lp.pace_query(f, NOW)
    assert summed == counter
    expected = {"tier": "q", "cuboid": cuboid, "t": {"$gte": NOW.replace(minute=0) - lp_hours()}}
    if field is not None:
        expected[field[0]] = field[1]
    assert where == expected


def lp_hours() -> timedelta:
    return timedelta(hours=lp.PACE_HOURS)


def sparse_docs(quiet: timedelta = timedelta(0)) -> list[dict[str, Any]]:
    """Three requests an hour over 20 hours, the newest `quiet` before now."""
    return [
        {
            "_id": f"{i:032x}",
            "requestId": f"{i:032x}",
            "timestamp": NOW - quiet - timedelta(minutes=20 * i + 1),
            "model": "m",
            "statusCode": 200,
            "outcome": "completed",
        }
        for i in range(60)
    ]


async def probes(db: AsyncDatabase[Any], monkeypatch: pytest.MonkeyPatch) -> int:
    repo = RequestsRepo(db)
    reads: list[int] = []
    aggregate = repo._aggregate

    async def counted(pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        reads.append(1)
        return await aggregate(pipeline)

    monkeypatch.setattr(repo, "_aggregate", counted)
    page = await repo.list_page(q.RequestFilter(), NOW, limit=50)
    assert [r["requestId"] for r in page.rows] == [f"{i:032x}" for i in range(50)]
    return len(reads)


def test_a_read_from_now_steps_over_the_quiet_stretch() -> None:
    quarters = [NOW.replace(minute=0) - timedelta(hours=h) for h in (9, 6, 7)]
    # The newest counted quarter-hour ended six and a quarter hours ago.
    assert lp.quiet_stretch(quarters, NOW) == timedelta(hours=6, minutes=15)
    assert lp.quiet_stretch([], NOW) == timedelta(0)
    assert lp.quiet_stretch([NOW + timedelta(hours=2)], NOW) == timedelta(0)  # a fast clock


@pytest.mark.parametrize("quiet", [timedelta(0), timedelta(hours=5)])
async def test_a_sparse_log_is_read_in_one_window(
    db: AsyncDatabase[Any], monkeypatch: pytest.MonkeyPatch, quiet: timedelta
) -> None:
    """Even when nothing was logged for hours before the page is read."""
    await ensure_indexes(db[REQUESTS], None)
    await ensure_rollup_indexes(db[ROLLUPS])
    docs = sparse_docs(quiet)
    await db[REQUESTS].insert_many(docs)
    without_pace = await probes(db, monkeypatch)
    await db[ROLLUPS].bulk_write([delta.update() for delta in fold(docs)])
    assert await probes(db, monkeypatch) == 1
    assert without_pace >= 4  # 2 minutes, 8, 32, ... back from now


@pytest.mark.parametrize(
    ("status", "counter"),
    [
        (None, "requests"),
        ("2xx", "requests"),
        ("error", "errors"),
        ("5xx", "status.5xx"),
        ("4xx", "status.4xx"),
        ("503", "status.5xx"),
        ("429", "status.4xx"),
    ],
)
def test_an_error_list_is_paced_by_its_own_class(status: str | None, counter: str) -> None:
    """A 5xx list is paced by the 5xx count (the rollups keep one per class), not
    by every failure: its first window is sized for its own rows."""
    assert lp.pace_counter(status) == counter
    assert lp.pace_query(q.RequestFilter(status=status), NOW)[1] == counter


def test_a_counter_is_read_by_its_path() -> None:
    document = {"requests": 7, "status": {"5xx": 2}}
    assert [lp.counted(document, c) for c in ("requests", "status.5xx", "status.4xx")] == [7, 2, 0]
    assert lp.counted({"status": None}, "status.5xx") == 0


def test_the_quiet_stretch_to_the_minute() -> None:
    where, _ = lp.pace_query(q.RequestFilter(model="m"), NOW)
    quarter = NOW - timedelta(hours=3)
    assert lp.minutes_query(where, quarter) == {
        **where,
        "tier": "m",
        "t": {"$gte": quarter, "$lt": quarter + lp.PACE_BUCKET},
    }
    minutes = [quarter + timedelta(minutes=m) for m in (0, 1)]
    assert lp.quiet_stretch(minutes, NOW, timedelta(minutes=1)) == timedelta(hours=2, minutes=58)


def steady_docs(per_minute: int, stop: datetime) -> list[dict[str, Any]]:
    """`per_minute` requests a minute for the 24 hours before `stop`, newest first."""
    step = timedelta(minutes=1) / per_minute
    return [
        {
            "_id": f"{i:032x}",
            "requestId": f"{i:032x}",
            "timestamp": stop - step * (i + 1),
            "model": "m",
            "statusCode": 200,
            "outcome": "completed",
        }
        for i in range(per_minute * 24 * 60)
    ]


async def test_a_busy_log_that_stopped_early_in_a_quarter_is_read_in_one_window(
    db: AsyncDatabase[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six requests a minute (a first window of ~13 minutes), the last one a minute
    into a quarter-hour three hours ago: stepping over the quiet stretch only to the
    end of that quarter (14 minutes) would read an empty window first, then one
    four times too wide. The minute rollups of the newest quarter say where it ends."""
    await ensure_indexes(db[REQUESTS], None)
    await ensure_rollup_indexes(db[ROLLUPS])
    stop = NOW.replace(minute=15) - timedelta(hours=3) + timedelta(minutes=1)
    docs = steady_docs(6, stop)
    await db[ROLLUPS].bulk_write([delta.update() for delta in fold(docs)])
    await db[REQUESTS].insert_many(docs[:600])  # the list reads the newest hundred at most
    assert await probes(db, monkeypatch) == 1


async def test_the_pace_is_read_once_per_instant(
    db: AsyncDatabase[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read going on in several calls at one `now` (a conversation search in
    chunks) reads the quarter-hour rollups once; a later `now` reads them again."""
    await ensure_rollup_indexes(db[ROLLUPS])
    docs = sparse_docs(timedelta(hours=2))
    await db[ROLLUPS].bulk_write([delta.update() for delta in fold(docs)])
    pace = Pace(db[ROLLUPS])
    tiers: list[str] = []
    find = AsyncCollection.find

    def watched(self: AsyncCollection[Any], where: dict[str, Any], *a: Any, **kw: Any) -> Any:
        tiers.append(where["tier"])
        return find(self, where, *a, **kw)

    monkeypatch.setattr(AsyncCollection, "find", watched)
    first = await pace.first_window(q.RequestFilter(), NOW, 51, True)
    assert first[1] >= timedelta(hours=2)  # the quiet stretch stepped over
    assert await pace.first_window(q.RequestFilter(), NOW, 51, False) == (first[0], timedelta(0))
    assert tiers == ["q", "m"]  # the second call: no rollup read at all
    await pace.first_window(q.RequestFilter(model="m"), NOW, 51, False)
    await pace.first_window(q.RequestFilter(), NOW + timedelta(minutes=1), 51, False)
    assert tiers == ["q", "m", "q", "q"]
