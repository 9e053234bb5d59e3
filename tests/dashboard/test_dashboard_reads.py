"""What the Overview and the Requests page read (no browser): the Overview's
rate-limit headroom from daily rollups whatever the page's zone, the request
list's filter menus from their own cuboid's daily rollups."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from dashboard.overview import load_overview
from dashboard.requests_page import filter_options
from dashboard.timerange import parse_range
from stats.rollups import ROLLUPS, fold
from storage.mongo import connect, ensure_rollup_indexes

NOW = datetime(2026, 12, 6, 18, 0, tzinfo=UTC)


class RecordingStats:
    """A StatsService that answers empty and remembers the zones it was asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def models(self, *args: Any) -> dict[str, Any]:
        return {"modelStats": [{"model": "m1", "requests": 1, "tokens": 1}]}

    async def latency(self, *args: Any) -> dict[str, Any]:
        return {"latency": []}

    async def rate_limits(
        self, start: datetime, end: datetime, minutes: int, tz: ZoneInfo, org: str | None
    ) -> dict[str, Any]:
        self.calls.append(("rate_limits", (minutes, tz.key)))
        return {"latest": [], "buckets": []}

    async def daily(self, start: Any, end: Any, tz: ZoneInfo, *args: Any) -> dict[str, Any]:
        self.calls.append(("daily", tz.key))
        return {"dailyStats": []}

    async def hourly(self, start: Any, end: Any, minutes: int, tz: ZoneInfo, *a: Any) -> Any:
        self.calls.append(("hourly", tz.key))
        return {"hourlyStats": []}

    async def usage(self, *args: Any) -> dict[str, Any]:
        return {"total_requests": 0}


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/New_York", "UTC"])
async def test_the_overview_reads_headroom_by_utc_days_and_series_in_its_zone(
    zone: str,
) -> None:
    stats = RecordingStats()
    rng = parse_range({"range": "30d", "tz": zone}, NOW)
    await load_overview(stats, rng)  # type: ignore[arg-type]
    assert ("rate_limits", (1440, "UTC")) in stats.calls
    series = [tz for name, tz in stats.calls if name in ("daily", "hourly")]
    assert series and set(series) == {zone}


@pytest.fixture
async def rollups_db(mongo_uri: str) -> AsyncIterator[AsyncDatabase[Any]]:
    client = connect(mongo_uri)
    name = f"test_reads_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


async def test_the_filter_menus_list_the_models_and_organizations_logged(
    rollups_db: AsyncDatabase[Any],
) -> None:
    rng = random.Random(5)
    models = [f"claude-model-{i}" for i in range(4)]
    orgs = ["org-a", "org-b", None]
    docs = [
        {
            "requestId": f"{i:032x}",
            "timestamp": NOW - timedelta(days=rng.randrange(40), minutes=i),
            "model": models[i % 4],
            "organizationId": orgs[i % 3],
            "statusCode": 200,
            "outcome": "completed",
            "tokens": 1,
        }
        for i in range(60)
    ]
    await ensure_rollup_indexes(rollups_db[ROLLUPS])
    await rollups_db[ROLLUPS].bulk_write([d.update() for d in fold(docs)])
    options = await filter_options(rollups_db)
    assert options.models == models
    assert options.organizations == ["org-a", "org-b"]
