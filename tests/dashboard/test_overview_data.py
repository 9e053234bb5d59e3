"""The Overview's data on a real database (no browser): the same numbers as the
stats routes for its range, in a bounded number of round trips whatever the
number of models, and rate-limit headroom the zone does not change."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from bench.stats_data import documents
from dashboard.overview import TOP_MODELS, load_overview
from dashboard.timerange import parse_range
from stats.cumulative import SignedPlan
from stats.rollups import ROLLUPS, fold
from stats.service import PER_MODEL_QUERY_COST, StatsService
from stats.tiling import ReadPlan
from stats.timebuckets import MINUTE, bucket_starts, ceil_to, floor_to
from storage.mongo import connect, ensure_rollup_indexes

NOW = datetime(2026, 12, 6, 18, 47, 30, tzinfo=UTC)
VARIANTS = (
    {},
    {"range": "30d", "tz": "UTC"},
    {"range": "30d", "tz": "Asia/Kolkata"},
    {"range": "7d", "bucket": "hour", "tz": "America/New_York"},
)


class Counting:
    """A collection that counts the commands sent through it."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if name in ("find", "aggregate", "find_one", "count_documents", "distinct"):
            self.calls += 1
        return attr


class CountingDb:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.rollups = Counting(db[ROLLUPS])

    def __getitem__(self, name: str) -> Any:
        assert name == ROLLUPS
        return self.rollups


async def _log(db: AsyncDatabase[Any], requests: list[dict[str, Any]]) -> None:
    await ensure_rollup_indexes(db[ROLLUPS])
    await db[ROLLUPS].bulk_write([d.update() for d in fold(requests)])


@pytest.fixture
async def logged_db(mongo_uri: str) -> AsyncIterator[AsyncDatabase[Any]]:
    client = connect(mongo_uri, timeout=60)
    db = client[f"test_overview_{uuid.uuid4().hex[:12]}"]
    try:
        await _log(db, list(documents(600, NOW - timedelta(days=32), timedelta(days=32), seed=4)))
        yield db
    finally:
        await client.drop_database(db.name)
        await client.close()


async def _round_trips(db: AsyncDatabase[Any], args: dict[str, str]) -> int:
    counting = CountingDb(db)
    await load_overview(StatsService(counting), parse_range(args, NOW))  # type: ignore[arg-type]
    return counting.rollups.calls


def _planned(args: dict[str, str]) -> int:
    rng = parse_range(args, NOW)
    boundaries = bucket_starts(rng.start, rng.end, rng.minutes, rng.tz)
    totals = (floor_to(rng.start, MINUTE), ceil_to(rng.end, MINUTE))
    plan = SignedPlan.of(sorted({*boundaries, *totals}), PER_MODEL_QUERY_COST)
    return len(plan.reads) + len(ReadPlan.of(totals).reads)


async def test_the_overview_is_a_few_reads_whatever_the_models(
    logged_db: AsyncDatabase[Any],
) -> None:
    before = {str(args): await _round_trips(logged_db, args) for args in VARIANTS}
    # Eight more models: one query per series would add a query per top model.
    extra = list(documents(200, NOW - timedelta(days=2), timedelta(days=2), seed=9))
    for n, d in enumerate(extra):
        d["model"] = f"claude-extra-{n % 8}"
    await _log(logged_db, extra)
    for args in VARIANTS:
        trips = await _round_trips(logged_db, args)
        assert trips == before[str(args)] == _planned(args)
    # A UTC page is at most seven reads of each cuboid (minutes, quarters, hours
    # at both edges, days inside).
    assert await _round_trips(logged_db, {"range": "30d", "tz": "UTC"}) <= 14


@pytest.mark.parametrize("args", VARIANTS, ids=lambda a: "-".join(a.values()) or "default")
async def test_the_overview_states_what_the_stats_routes_return(
    logged_db: AsyncDatabase[Any], args: dict[str, str]
) -> None:
    stats = StatsService(logged_db)
    rng = parse_range(args, NOW)
    data = await load_overview(stats, rng)
    models = (await stats.models(rng.start, rng.end, None, None))["modelStats"]
    assert data["models"] == models and len(models) >= 2
    assert data["latency"] == (await stats.latency(rng.start, rng.end, None, None))["latency"]
    limits = await stats.rate_limits(rng.start, rng.end, 60, rng.tz, None)
    shown = [(r.organization, r.requests_remaining, r.at) for r in data["rate_limits"]]
    assert shown == [
        (r["organizationId"], r["requestsRemaining"], datetime.fromtimestamp(r["ts"] / 1000, UTC))
        for r in limits["latest"]
    ]
    assert len(shown) == 2

    async def series(model: str | None) -> list[dict[str, Any]]:
        if rng.bucket == "day":
            return (await stats.daily(rng.start, rng.end, rng.tz, model, None))["dailyStats"]
        hourly = await stats.hourly(rng.start, rng.end, 60, rng.tz, model, None)
        return hourly["hourlyStats"]

    charts = {c.key: c.chart for c in data["charts"]}
    total = await series(None)
    for key in ("tokens", "requests", "errors"):
        assert charts[key].total == sum(r[key] for r in total) > (0 if key != "errors" else -1)
    top = [m["model"] for m in models[:TOP_MODELS]]
    per_model = {m: await series(m) for m in top}
    requests = charts["requests"]
    for model, rows in per_model.items():
        drawn = [b for b in requests.bars if b.title.split(" · ")[1].startswith(f"{model}: ")]
        assert len(drawn) == sum(1 for r in rows if r["requests"] > 0)


async def test_headroom_is_the_same_in_every_zone(logged_db: AsyncDatabase[Any]) -> None:
    stats = StatsService(logged_db)
    seen = []
    for tz in ("UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns"):
        data = await load_overview(stats, parse_range({"range": "30d", "tz": tz}, NOW))
        seen.append(data["rate_limits"])
    assert seen[0] and all(s == seen[0] for s in seen)
