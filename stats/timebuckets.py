"""Time arithmetic for the stats: rollup tiers, display buckets in a time zone, and
the decomposition of a range into the fewest rollup documents (all pure).

Rollups are kept in UTC at four tiers (1 min, 15 min, 1 h, 1 day). A display
bucket (for example a local day in America/New_York) is answered from the
coarsest tier whose boundaries all fall on bucket boundaries: local days of a
whole-hour zone come from hourly rollups, Asia/Kolkata's (+05:30) from the
15-minute tier, UTC days from the daily tier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    seconds: int


MINUTE = Tier("m", 60)
QUARTER = Tier("q", 900)
HOUR = Tier("h", 3600)
DAY = Tier("d", 86400)
TIERS: tuple[Tier, ...] = (MINUTE, QUARTER, HOUR, DAY)
COARSEST_FIRST: tuple[Tier, ...] = tuple(reversed(TIERS))

# Display bucket sizes (minutes) the API serves. Sizes up to an hour divide an
# hour; larger ones divide a day and are aligned to local midnight.
BUCKET_MINUTES: tuple[int, ...] = (1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)
MAX_BUCKETS = 10_000


class TimeError(ValueError):
    """A parameter the stats cannot work with (message names it)."""


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeError(f"tz: unknown IANA time zone {name!r}") from None


def aware(value: datetime) -> datetime:
    """A datetime read from BSON without tz_aware (naive, in UTC) as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def epoch(value: datetime) -> int:
    if value.tzinfo is None:  # BSON datetimes read without tz_aware are UTC
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def floor_to(value: datetime, tier: Tier) -> datetime:
    seconds = epoch(value)
    return datetime.fromtimestamp(seconds - seconds % tier.seconds, UTC)


def ceil_to(value: datetime, tier: Tier) -> datetime:
    floored = floor_to(value, tier)
    return floored if floored == value else floored + timedelta(seconds=tier.seconds)


def tier_start(value: datetime, tier: Tier) -> datetime:
    """The start of the rollup bucket a request at `value` counts into."""
    return floor_to(value, tier)


def aligned(instant: datetime, tier: Tier) -> bool:
    return instant.microsecond == 0 and epoch(instant) % tier.seconds == 0


def finest_common_tier(boundaries: list[datetime]) -> Tier:
    """The coarsest tier every boundary falls on (always at least minutes: no
    zone is offset by seconds since 1972)."""
    for tier in COARSEST_FIRST:
        if all(aligned(b, tier) for b in boundaries):
            return tier
    return MINUTE


def bucket_starts(start: datetime, end: datetime, minutes: int, tz: ZoneInfo) -> list[datetime]:
    """UTC boundaries of the display buckets covering [start, end): the first is
    at or before `start`, the last (exclusive end of the last bucket) at or after
    `end`. Buckets of up to an hour step in absolute time (an hour that repeats
    when clocks go back is two buckets); longer ones follow local midnight."""
    if minutes not in BUCKET_MINUTES:
        raise TimeError(f"bucket: must be one of {', '.join(map(str, BUCKET_MINUTES))} (minutes)")
    if end <= start:
        raise TimeError("end: must be after start")
    if minutes <= 60:
        return _absolute_steps(start, end, minutes, tz)
    return _local_steps(start, end, minutes, tz)


def _check_count(start: datetime, end: datetime, minutes: int) -> None:
    if (end - start).total_seconds() / 60 / minutes > MAX_BUCKETS:
        raise TimeError(
            f"range: more than {MAX_BUCKETS} buckets of {minutes} min; "
            "use a larger bucket or a shorter range"
        )


def _absolute_steps(start: datetime, end: datetime, minutes: int, tz: ZoneInfo) -> list[datetime]:
    _check_count(start, end, minutes)
    step = minutes * 60
    # Align to the local clock at `start`: local = utc + offset; a zone's offset
    # changes by whole half-hours, so an alignment that holds once holds across.
    offset = int((start.astimezone(tz).utcoffset() or timedelta()).total_seconds())
    # Floor, not epoch()'s truncation toward zero: the first boundary must not pass
    # `start` (a sub-second start before 1970 would otherwise round up past it).
    second = math.floor(start.timestamp())
    first = second - (second + offset) % step
    # A range inside one second on a boundary leaves range() empty: one bucket.
    bounds = list(range(first, epoch(end), step)) or [first]
    bounds.append(bounds[-1] + step)
    return [datetime.fromtimestamp(b, UTC) for b in bounds]


def _local_steps(start: datetime, end: datetime, minutes: int, tz: ZoneInfo) -> list[datetime]:
    _check_count(start, end, minutes)
    per_day = 1440 // minutes
    day = start.astimezone(tz).date()
    last_day = end.astimezone(tz).date()
    bounds: list[datetime] = []
    while day <= last_day + timedelta(days=1):
        for k in range(per_day):
            bounds.append(_local_instant(day, k * minutes, tz))
        day += timedelta(days=1)
    bounds = sorted(set(bounds))
    first = max(i for i, b in enumerate(bounds) if b <= start)
    last = min(i for i, b in enumerate(bounds) if b >= end)
    return bounds[first : last + 1]


def _local_instant(day: date, minute_of_day: int, tz: ZoneInfo) -> datetime:
    wall = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(minutes=minute_of_day)
    # Wall times inside a spring-forward gap resolve after it (as a clock would).
    utc = wall.astimezone(UTC)
    return datetime.fromtimestamp(epoch(utc), UTC)


def local_midnight(instant: datetime, tz: ZoneInfo) -> datetime:
    day = instant.astimezone(tz).date()
    return _local_instant(day, 0, tz)


def local_hour(instant: datetime, tz: ZoneInfo) -> datetime:
    """The start of the local hour `instant` falls in, in UTC (an hour that
    repeats when clocks go back is two hours, as on a wall clock)."""
    local = instant.astimezone(tz).replace(minute=0, second=0, microsecond=0)
    return datetime.fromtimestamp(epoch(local.astimezone(UTC)), UTC)


def zone_day_tier(zone: str) -> str:
    """The rollup tier of local days in `zone` (an IANA name, `STATS_ZONES`)."""
    return f"d@{zone}"


def zone_hour_tier(zone: str) -> str:
    """The rollup tier of local hours in `zone`: its hours are UTC hours shifted
    by the zone's minutes (a +05:30 hour is the second half of one UTC hour and
    the first half of the next)."""
    return f"h@{zone}"


def zone_tiers(zone: str) -> tuple[str, str]:
    """The local-day and local-hour tiers of a zone of `STATS_ZONES`."""
    return zone_day_tier(zone), zone_hour_tier(zone)


@dataclass(frozen=True, slots=True)
class Segment:
    tier: Tier
    start: datetime
    end: datetime


def decompose(start: datetime, end: datetime) -> list[Segment]:
    """[start, end) as the fewest whole rollup buckets: whole days in the middle,
    hours, quarters and minutes towards the edges. Resolution is one minute: the
    start is rounded down and the end up."""
    start, end = floor_to(start, MINUTE), ceil_to(end, MINUTE)
    return _decompose(start, end, COARSEST_FIRST)


def _decompose(start: datetime, end: datetime, tiers: tuple[Tier, ...]) -> list[Segment]:
    if start >= end:
        return []
    for i, tier in enumerate(tiers):
        inner_start, inner_end = ceil_to(start, tier), floor_to(end, tier)
        if inner_start < inner_end:
            finer = tiers[i + 1 :]
            return [
                *_decompose(start, inner_start, finer),
                Segment(tier, inner_start, inner_end),
                *_decompose(inner_end, end, finer),
            ]
    raise AssertionError("minute-aligned ranges always decompose")
