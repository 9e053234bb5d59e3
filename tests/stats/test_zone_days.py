"""Local-day rollups (`STATS_ZONES`) and the Overview folded from them equal what
the UTC tiers give, in zones with half-hour, 45-minute and DST-shifting days."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bench.stats_data import documents
from stats import pipelines as p
from stats.cumulative import SignedPlan
from stats.overview_fold import Overview, fold_overview
from stats.rollups import UNKNOWN_MODEL
from stats.service import PER_MODEL_QUERY_COST
from stats.tiling import ReadPlan
from stats.timebuckets import (
    MINUTE,
    bucket_starts,
    ceil_to,
    floor_to,
    zone_day_tier,
    zone_hour_tier,
)
from stats.zone_days import ZoneDayPlan, day_filter, local_tier, utc_breakpoints
from tests.stats.odd_zones import ODD_ZONES, SPAN, START
from tests.stats.rollup_memory import assert_same_overview, find, rollup_documents

ZONES = ODD_ZONES


@pytest.fixture(scope="module")
def requests() -> list[dict[str, Any]]:
    docs = list(documents(1500, START, SPAN, seed=22))
    docs[7].update(model=None, organizationId=None)
    return docs


@pytest.fixture(scope="module")
def rollups(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return rollup_documents(requests, ZONES)


def _counted(
    requests: list[dict[str, Any]],
    rollups: list[dict[str, Any]],
    tier: str,
    bucket: Callable[[datetime], datetime],
) -> list[dict[str, Any]]:
    """The per-model documents of `tier`, checked to hold the requests and tokens
    of each (local bucket start, model) counted from the requests themselves."""
    want: Counter[tuple[datetime, str]] = Counter()
    tokens: Counter[tuple[datetime, str]] = Counter()
    for r in requests:
        key = (bucket(r["timestamp"]), r["model"] or UNKNOWN_MODEL)
        want[key] += 1
        tokens[key] += r["tokens"] or 0
    documents = [d for d in rollups if d["tier"] == tier and d["cuboid"] == "m"]
    assert {(d["t"], d["model"]): d["requests"] for d in documents} == dict(want)
    assert {(d["t"], d["model"]): d.get("tokens", 0) for d in documents} == dict(tokens)
    return documents


@pytest.mark.parametrize("tz", ZONES)
def test_a_local_day_document_counts_the_requests_of_that_local_day(
    requests: list[dict[str, Any]], rollups: list[dict[str, Any]], tz: str
) -> None:
    zone = ZoneInfo(tz)

    def midnight(at: datetime) -> datetime:
        local = at.astimezone(zone)
        return datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(UTC)

    days = _counted(requests, rollups, zone_day_tier(tz), midnight)
    assert len({d["t"] for d in days}) >= 4  # the span's local days, a 25-hour one in DST zones


@pytest.mark.parametrize("tz", ZONES)
def test_a_local_hour_document_counts_the_requests_of_that_local_hour(
    requests: list[dict[str, Any]], rollups: list[dict[str, Any]], tz: str
) -> None:
    zone = ZoneInfo(tz)

    def hour(at: datetime) -> datetime:
        # The wall-clock hour, its fold kept: the hour that repeats is two hours.
        return at.astimezone(zone).replace(minute=0, second=0, microsecond=0).astimezone(UTC)

    hours = _counted(requests, rollups, zone_hour_tier(tz), hour)
    offset = START.astimezone(zone).utcoffset()
    assert offset is not None
    if offset.seconds % 3600:  # hours that are not UTC hours
        assert all(d["t"].minute for d in hours)


def _overview_from_utc(
    rollups: list[dict[str, Any]], boundaries: list[datetime], totals: tuple[datetime, datetime]
) -> Overview:
    plan = SignedPlan.plain(sorted({*boundaries, *totals}))
    return fold_overview(
        _read(rollups, plan.reads),
        plan,
        boundaries,
        totals,
        _snapshots(rollups, totals),
        ReadPlan.of(totals),
    )


def _read(rollups: list[dict[str, Any]], reads: Any) -> list[dict[str, Any]]:
    out = []
    for r in reads:
        out.extend(find(rollups, p.rollup_filter(r.tier, r.start, r.end, by_model=True)))
    return out


def _snapshots(
    rollups: list[dict[str, Any]], totals: tuple[datetime, datetime]
) -> list[dict[str, Any]]:
    out = []
    for r in ReadPlan.of(totals).reads:
        out.extend(find(rollups, p.snapshots(r)))
    return out


@pytest.mark.parametrize("minutes", [1440, 60])
@pytest.mark.parametrize("tz", ZONES)
def test_the_overview_from_local_days_is_the_overview_from_utc_tiers(
    rollups: list[dict[str, Any]], tz: str, minutes: int
) -> None:
    """As `StatsService._zone_overview` folds it: series from the local days (or
    hours), totals and latency from the UTC tiers over the range's edges."""
    zone = ZoneInfo(tz)
    tier = zone_day_tier(tz) if minutes == 1440 else zone_hour_tier(tz)
    rng = random.Random(f"zone days {tz} {minutes}")
    for attempt in range(12):
        start = START + timedelta(minutes=rng.randrange(-300, 2 * 1440))
        if attempt < 2:  # the range starts at a local midnight
            start = bucket_starts(start, start + timedelta(hours=1), 1440, zone)[0]
        end = start + timedelta(minutes=rng.randrange(60, 3 * 1440))
        boundaries = bucket_starts(start, end, minutes, zone)
        if minutes == 60 and all(b.minute == 0 for b in boundaries):
            # Local hours that are UTC hours are read from the UTC tiers.
            assert local_tier(ZONES, zone, minutes, boundaries) is None
        else:
            assert local_tier(ZONES, zone, minutes, boundaries) == tier
        totals = (floor_to(start, MINUTE), ceil_to(end, MINUTE))
        plan = SignedPlan.of(utc_breakpoints(boundaries, totals), PER_MODEL_QUERY_COST)
        snapshots = _snapshots(rollups, totals)
        limits = ReadPlan.of(totals)
        whole = [boundaries[0], boundaries[-1]]
        utc = fold_overview(_read(rollups, plan.reads), plan, whole, totals, snapshots, limits)
        days = find(rollups, day_filter(tier, boundaries))
        local = fold_overview(
            days, ZoneDayPlan.of(tier, boundaries), boundaries, totals, (), limits
        )
        # Every request of the days shown is in their local-day documents.
        assert sum(b["requests"] for b in local.total) == utc.total[0]["requests"] > 0
        got = Overview(
            boundaries, utc.models, utc.latency, local.total, local.per_model, utc.rate_limits
        )
        assert_same_overview(got, _overview_from_utc(rollups, boundaries, totals))


def _days(tz: ZoneInfo, start: datetime = START) -> list[datetime]:
    return bucket_starts(start, start + timedelta(days=30), 1440, tz)


def test_only_day_buckets_in_a_listed_zone_read_local_days() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    new_york = ZoneInfo("America/New_York")
    assert local_tier(("Asia/Kolkata",), kolkata, 1440, _days(kolkata)) == "d@Asia/Kolkata"
    assert local_tier(("Asia/Kolkata",), kolkata, 30, _days(kolkata)) is None
    assert local_tier(("Asia/Kolkata",), new_york, 1440, _days(new_york)) is None
    assert local_tier((), kolkata, 1440, _days(kolkata)) is None


def _hours(tz: ZoneInfo, start: datetime = START) -> list[datetime]:
    return bucket_starts(start, start + timedelta(days=7), 60, tz)


def test_hour_buckets_read_local_hours_only_where_they_are_not_utc_hours() -> None:
    kolkata, colombo = ZoneInfo("Asia/Kolkata"), ZoneInfo("Asia/Colombo")
    new_york = ZoneInfo("America/New_York")
    listed = ("America/New_York", "Asia/Kolkata")
    assert local_tier(listed, kolkata, 60, _hours(kolkata)) == "h@Asia/Kolkata"
    assert local_tier(listed, colombo, 60, _hours(colombo)) == "h@Asia/Kolkata"
    assert local_tier(listed, new_york, 60, _hours(new_york)) is None  # UTC hours
    kathmandu, st_johns = ZoneInfo("Asia/Kathmandu"), ZoneInfo("America/St_Johns")
    assert local_tier(listed, kathmandu, 60, _hours(kathmandu)) is None  # +05:45
    assert local_tier(listed, st_johns, 60, _hours(st_johns)) is None
    assert local_tier((*listed, "America/St_Johns"), st_johns, 60, _hours(st_johns)) == (
        "h@America/St_Johns"
    )
    # Colombo's +06:00 hours of 2006 are not Kolkata's.
    then = datetime(2006, 3, 1, tzinfo=UTC)
    assert local_tier(listed, colombo, 60, _hours(colombo, then)) is None
    # Other bucket widths are read from the UTC tiers.
    quarters = bucket_starts(START, START + timedelta(days=1), 30, kolkata)
    assert local_tier(listed, kolkata, 30, quarters) is None


def test_a_zone_with_the_same_days_as_a_listed_one_reads_its_local_days() -> None:
    colombo, dhaka = ZoneInfo("Asia/Colombo"), ZoneInfo("Asia/Dhaka")
    listed = ("America/New_York", "Asia/Kolkata")
    assert local_tier(listed, colombo, 1440, _days(colombo)) == "d@Asia/Kolkata"
    assert local_tier(listed, dhaka, 1440, _days(dhaka)) is None  # +06:00
    # Toronto's days are New York's, across the end of DST (START is 3 days before).
    toronto = ZoneInfo("America/Toronto")
    assert local_tier(listed, toronto, 1440, _days(toronto)) == "d@America/New_York"
    # Colombo was +06:00 until April 2006: those days are not Kolkata's.
    then = datetime(2006, 3, 1, tzinfo=UTC)
    assert local_tier(listed, colombo, 1440, _days(colombo, then)) is None
    # Days of a zone whose offset differs only in part of the range are refused whole.
    london = ZoneInfo("Europe/London")
    lisbon = ZoneInfo("Europe/Lisbon")
    assert local_tier(("Europe/London",), lisbon, 1440, _days(lisbon)) == "d@Europe/London"
    assert local_tier(("Europe/London",), london, 1440, _days(london)) == "d@Europe/London"
    assert local_tier(("Europe/Paris",), london, 1440, _days(london)) is None


def test_a_local_day_counts_into_its_own_bucket_only() -> None:
    tier = zone_day_tier("Asia/Kolkata")
    start = datetime(2026, 11, 3, 6, 52, tzinfo=UTC)  # 12:22 in Kolkata
    boundaries = bucket_starts(start, start + timedelta(days=2), 1440, ZoneInfo("Asia/Kolkata"))
    assert boundaries[0] == datetime(2026, 11, 2, 18, 30, tzinfo=UTC)
    plan = ZoneDayPlan.of(tier, boundaries)
    for i, day in enumerate(boundaries[:-1]):
        assert plan.weights(tier, day) == ((i, 1),)
    assert plan.weights(tier, boundaries[-1]) == ()  # past the last bucket
    assert plan.weights(tier, boundaries[0] + timedelta(hours=1)) == ()  # not a local day
    assert plan.weights("d@America/New_York", boundaries[0]) == ()
    assert plan.weights("h", boundaries[0]) == ()
    # The UTC tiers are read for the totals and the days' parts outside them.
    end = start + timedelta(days=1, hours=3)
    assert utc_breakpoints(boundaries, (start, end)) == [boundaries[0], start, end, boundaries[-1]]
    assert utc_breakpoints(boundaries, (boundaries[0], boundaries[-1])) == [
        boundaries[0],
        boundaries[-1],
    ]
