"""Time buckets and range decomposition, checked against zoneinfo wall clocks."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from stats.timebuckets import (
    DAY,
    HOUR,
    MINUTE,
    QUARTER,
    TimeError,
    bucket_starts,
    decompose,
    finest_common_tier,
    local_midnight,
    zone,
)

NY = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
KATHMANDU = ZoneInfo("Asia/Kathmandu")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_utc_days_come_from_the_daily_tier() -> None:
    bounds = bucket_starts(utc(2026, 11, 1, 5), utc(2026, 11, 4), 1440, zone("UTC"))
    assert bounds == [utc(2026, 11, d) for d in range(1, 5)]
    assert finest_common_tier(bounds) == DAY


def test_local_days_follow_dst_and_come_from_hours() -> None:
    # New York leaves DST on 2026-11-01: that local day is 25 hours long.
    bounds = bucket_starts(utc(2026, 10, 31, 12), utc(2026, 11, 2, 12), 1440, NY)
    assert [b.astimezone(NY).hour for b in bounds] == [0, 0, 0, 0]
    assert [b.astimezone(NY).day for b in bounds] == [31, 1, 2, 3]
    assert bounds[2] - bounds[1] == timedelta(hours=25)
    assert finest_common_tier(bounds) == HOUR


def test_half_and_quarter_hour_zones_use_finer_tiers() -> None:
    days = bucket_starts(utc(2026, 11, 1), utc(2026, 11, 3), 1440, KOLKATA)
    assert all(b.astimezone(KOLKATA).time().isoformat() == "00:00:00" for b in days)
    assert finest_common_tier(days) == QUARTER
    hours = bucket_starts(utc(2026, 11, 1), utc(2026, 11, 1, 6), 60, KATHMANDU)
    assert all(b.astimezone(KATHMANDU).minute == 0 for b in hours)
    assert finest_common_tier(hours) == QUARTER
    assert finest_common_tier(bucket_starts(utc(2026, 11, 1), utc(2026, 11, 1, 1), 1, NY)) == MINUTE


def test_an_hour_repeated_when_clocks_go_back_is_two_buckets() -> None:
    bounds = bucket_starts(utc(2026, 11, 1, 4), utc(2026, 11, 1, 8), 60, NY)
    labels = [b.astimezone(NY).strftime("%H:%M") for b in bounds]
    assert labels == ["00:00", "01:00", "01:00", "02:00", "03:00"]
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(bounds))


@pytest.mark.parametrize("minutes", [1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440])
@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
def test_buckets_cover_the_range_and_start_on_the_local_clock(minutes: int, tz: str) -> None:
    zone_info = ZoneInfo(tz)
    rng = random.Random(f"{minutes}{tz}")
    for _ in range(20):
        start = utc(2026, 1, 1) + timedelta(seconds=rng.randrange(366 * 86400))
        end = start + timedelta(seconds=rng.randrange(60, 3 * 86400))
        bounds = bucket_starts(start, end, minutes, zone_info)
        assert bounds[0] <= start < bounds[1]
        assert bounds[-2] < end <= bounds[-1]
        assert bounds == sorted(set(bounds))
        for b in bounds:
            local = b.astimezone(zone_info)
            minute_of_day = local.hour * 60 + local.minute
            # Lord Howe shifts by 30 min: a multi-hour bucket may start off-grid
            # only on its DST change day.
            if tz != "Australia/Lord_Howe":
                assert minute_of_day % min(minutes, 1440) == 0 or minutes == 1440


@pytest.mark.parametrize(
    ("start", "end"),
    [
        # Found by Schemathesis: `start=-1&end=0` (epoch ms) answered 500.
        (utc(1970, 1, 1) - timedelta(milliseconds=1), utc(1970, 1, 1)),
        # A range inside one second that starts on a bucket boundary.
        (utc(2026, 3, 1, 10) + timedelta(milliseconds=200), utc(2026, 3, 1, 10, 0, 0, 700_000)),
        (utc(1969, 7, 20, 20, 17, 40, 500_000), utc(1969, 7, 20, 20, 17, 41)),
    ],
)
@pytest.mark.parametrize("minutes", [1, 60])
def test_sub_second_and_pre_1970_ranges_get_a_covering_bucket(
    start: datetime, end: datetime, minutes: int
) -> None:
    bounds = bucket_starts(start, end, minutes, ZoneInfo("UTC"))
    assert bounds[0] <= start < bounds[1]
    assert bounds[-2] < end <= bounds[-1]


def test_decompose_covers_exactly_with_few_segments() -> None:
    rng = random.Random(7)
    for _ in range(300):
        start = utc(2026, 1, 1) + timedelta(seconds=rng.randrange(200 * 86400))
        end = start + timedelta(seconds=rng.randrange(1, 40 * 86400))
        segments = decompose(start, end)
        assert segments[0].start == start.replace(second=0, microsecond=0)
        assert segments[-1].end >= end
        assert (segments[-1].end - end) < timedelta(minutes=1)
        for a, b in itertools.pairwise(segments):
            assert a.end == b.start
        for s in segments:
            assert s.start < s.end
            assert int(s.start.timestamp()) % s.tier.seconds == 0
            assert int(s.end.timestamp()) % s.tier.seconds == 0
        assert len(segments) <= 7  # m, q, h, d, h, q, m
    thirty_days = decompose(utc(2026, 10, 1, 13, 7), utc(2026, 10, 31, 9, 59))
    assert [s.tier for s in thirty_days] == [MINUTE, QUARTER, HOUR, DAY, HOUR, QUARTER, MINUTE]


def test_bad_inputs_name_the_parameter() -> None:
    with pytest.raises(TimeError, match="tz"):
        zone("Mars/Olympus_Mons")
    with pytest.raises(TimeError, match="bucket"):
        bucket_starts(utc(2026, 1, 1), utc(2026, 1, 2), 7, zone("UTC"))
    with pytest.raises(TimeError, match="end"):
        bucket_starts(utc(2026, 1, 2), utc(2026, 1, 1), 60, zone("UTC"))
    with pytest.raises(TimeError, match="more than"):
        bucket_starts(utc(2026, 1, 1), utc(2027, 1, 1), 1, zone("UTC"))


def test_local_midnight() -> None:
    assert local_midnight(utc(2026, 11, 25, 3), NY) == utc(2026, 11, 24, 5)
