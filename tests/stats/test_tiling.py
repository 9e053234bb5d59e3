"""The read planner: display buckets tiled exactly by the coarsest rollups, and
the range reads that fetch the tiles."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from stats.tiling import MERGE_GAP_BUCKETS, ReadPlan, merge_reads, tile
from stats.timebuckets import DAY, HOUR, MINUTE, QUARTER, TIERS, Segment, bucket_starts, floor_to

ZONES = (
    "UTC",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/St_Johns",
    "America/New_York",
    "Australia/Lord_Howe",
)
# Coarser tiers of each tier, for "coarsest first".
COARSER = {t.name: TIERS[i + 1 :] for i, t in enumerate(TIERS)}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _buckets(segments: list[Segment]) -> list[tuple[str, datetime, datetime]]:
    """The single rollup buckets (tier, start, end) the segments hold."""
    out = []
    for s in segments:
        step = timedelta(seconds=s.tier.seconds)
        at = s.start
        while at < s.end:
            out.append((s.tier.name, at, at + step))
            at += step
    return out


def _check_tiling(breakpoints: list[datetime]) -> None:
    tiles = tile(breakpoints)
    buckets = _buckets(tiles)
    # No gap, no overlap: the buckets follow each other from first to last breakpoint.
    assert buckets[0][1] == breakpoints[0] and buckets[-1][2] == breakpoints[-1]
    for a, b in itertools.pairwise(buckets):
        assert a[2] == b[1]
    edges = set(breakpoints)
    for name, start, end in buckets:
        tier = next(t for t in TIERS if t.name == name)
        assert int(start.timestamp()) % tier.seconds == 0
        # No bucket straddles a breakpoint...
        inside = [b for b in breakpoints if start < b < end]
        assert not inside, (name, start, inside)
        # ...and none could be coarser: the bucket of every coarser tier around it
        # crosses a breakpoint (or the first/last one).
        low = max(b for b in breakpoints if b <= start)
        high = min(b for b in breakpoints if b >= end)
        for coarser in COARSER[name]:
            around = floor_to(start, coarser)
            assert around < low or around + timedelta(seconds=coarser.seconds) > high, (
                name,
                start,
                coarser.name,
            )
    assert edges <= {b[1] for b in buckets} | {buckets[-1][2]}


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("minutes", [15, 60, 1440])
def test_display_buckets_are_tiled_exactly_coarsest_first(tz: str, minutes: int) -> None:
    zone = ZoneInfo(tz)
    rng = random.Random(f"{tz}{minutes}")
    for _ in range(15):
        # Around DST changes too: March, April, October and November of 2026.
        start = utc(2026, rng.choice((3, 4, 10, 11)), 1) + timedelta(
            seconds=rng.randrange(30 * 86400)
        )
        end = start + timedelta(seconds=rng.randrange(60, 5 * 86400))
        boundaries = bucket_starts(start, end, minutes, zone)
        _check_tiling(boundaries)
        # With a totals range's minute edges among the breakpoints as well.
        extra = {floor_to(start, MINUTE), floor_to(end, MINUTE) + timedelta(minutes=1)}
        _check_tiling(sorted(set(boundaries) | {e for e in extra if e <= boundaries[-1]}))


def test_a_kolkata_day_is_quarters_at_its_fringes_and_hours_inside() -> None:
    days = bucket_starts(utc(2026, 11, 1, 12), utc(2026, 11, 3, 12), 1440, ZoneInfo("Asia/Kolkata"))
    tiles = tile(days)
    assert [(s.tier, s.start, s.end) for s in tiles] == [
        (QUARTER, utc(2026, 10, 31, 18, 30), utc(2026, 10, 31, 19)),
        (HOUR, utc(2026, 10, 31, 19), utc(2026, 11, 1, 18)),
        (QUARTER, utc(2026, 11, 1, 18), utc(2026, 11, 1, 19)),
        (HOUR, utc(2026, 11, 1, 19), utc(2026, 11, 2, 18)),
        (QUARTER, utc(2026, 11, 2, 18), utc(2026, 11, 2, 19)),
        (HOUR, utc(2026, 11, 2, 19), utc(2026, 11, 3, 18)),
        (QUARTER, utc(2026, 11, 3, 18), utc(2026, 11, 3, 18, 30)),
    ]
    plan = ReadPlan.of(days)
    # The hours are one read across the one-hour fringes; the quarters one per fringe.
    assert [(r.tier, r.start, r.end) for r in plan.reads] == [
        (HOUR, utc(2026, 10, 31, 19), utc(2026, 11, 3, 18)),
        *((QUARTER, t.start, t.end) for t in tiles if t.tier == QUARTER),
    ]
    assert plan.covers("h", utc(2026, 11, 1, 17)) and not plan.covers("h", utc(2026, 11, 1, 18))
    assert plan.covers("q", utc(2026, 11, 1, 18, 45)) and not plan.covers("q", utc(2026, 11, 2))
    assert not plan.covers("d", utc(2026, 11, 1)) and not plan.covers("m", utc(2026, 11, 1, 18))
    # Naive datetimes (a client without tz_aware) are UTC.
    assert plan.covers("h", datetime(2026, 11, 1, 17))


def test_utc_days_are_one_daily_read() -> None:
    plan = ReadPlan.of(bucket_starts(utc(2026, 11, 1), utc(2026, 11, 30), 1440, ZoneInfo("UTC")))
    assert [(r.tier, r.start, r.end) for r in plan.reads] == [
        (DAY, utc(2026, 11, 1), utc(2026, 11, 30))
    ]


@pytest.mark.parametrize("tz", ZONES)
def test_reads_fetch_every_tile_and_only_nearby_gaps(tz: str) -> None:
    rng = random.Random(tz)
    for _ in range(20):
        start = utc(2026, 10, 20) + timedelta(seconds=rng.randrange(20 * 86400))
        boundaries = bucket_starts(
            start, start + timedelta(days=rng.randrange(1, 31)), 1440, ZoneInfo(tz)
        )
        plan = ReadPlan.of(boundaries)
        for name, at, _ in _buckets(list(plan.tiles)):
            assert plan.covers(name, at)
            assert any(r.tier.name == name and r.start <= at < r.end for r in plan.reads)
        read = _buckets(list(plan.reads))
        # What a read fetches beyond the tiles is gaps of at most MERGE_GAP_BUCKETS
        # buckets of its tier, each between two of its tiles.
        for r in plan.reads:
            mine = [plan.covers(name, at) for name, at, _ in _buckets([r])]
            assert mine[0] and mine[-1]
            gaps = [len(list(g)) for covered, g in itertools.groupby(mine) if not covered]
            assert all(g <= MERGE_GAP_BUCKETS for g in gaps)
        assert sum(plan.covers(n, at) for n, at, _ in read) == len(_buckets(list(plan.tiles)))


def test_breakpoints_must_be_whole_minutes_and_ascend() -> None:
    with pytest.raises(ValueError, match="whole minute"):
        tile([utc(2026, 1, 1), utc(2026, 1, 1, 0, 0, 30)])
    with pytest.raises(ValueError, match="ascend"):
        tile([utc(2026, 1, 2), utc(2026, 1, 1)])


def test_overlapping_segments_are_read_once() -> None:
    day = utc(2026, 11, 3)
    hours = [
        Segment(HOUR, day + timedelta(hours=19), day + timedelta(hours=24)),
        Segment(HOUR, day + timedelta(hours=20), day + timedelta(hours=22)),  # inside the first
        Segment(HOUR, day + timedelta(hours=18), day + timedelta(hours=21)),
    ]
    reads = merge_reads([*hours, Segment(DAY, day, day + timedelta(days=1))])
    assert reads == [
        Segment(DAY, day, day + timedelta(days=1)),  # coarsest first
        Segment(HOUR, day + timedelta(hours=18), day + timedelta(hours=24)),
    ]
