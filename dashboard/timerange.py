"""The time range a dashboard page shows, read from its URL (pure).

`?range=24h` (a preset, relative to now: the link keeps meaning "the last day"),
or `?from=&to=` (ISO 8601 date-times, dates, or `datetime-local` values read in
`tz`; a date as `to` includes that whole day; epoch milliseconds), `tz` (an IANA
zone; day and hour boundaries and labels follow it) and `bucket` (`hour` or
`day`; by default hours up to three days, days beyond).

The range is bounded so a page's work is: at most MAX_SPAN, and hourly buckets at
most MAX_HOURLY_SPAN (both refused with a message naming the parameter).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from stats.timebuckets import TimeError, local_midnight, zone

PRESETS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
DEFAULT_PRESET = "24h"
BUCKETS: dict[str, int] = {"hour": 60, "day": 1440}
MAX_SPAN = timedelta(days=366)
# 168 bars: what a laptop-wide chart still shows one by one, and what a page reads
# within its 100 ms (30 days of hours, 720 buckets, took 260 ms at 1M requests).
MAX_HOURLY_SPAN = timedelta(days=7)
# Up to this span hours are the default bucket, days beyond.
HOURLY_DEFAULT_SPAN = timedelta(days=3)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EPOCH_MS = re.compile(r"-?\d{1,15}")


class RangeError(ValueError):
    """A URL parameter the page cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    tz_name: str
    bucket: str  # a key of BUCKETS
    preset: str | None  # the preset the range came from, None for from/to
    zone_given: bool  # whether the URL named the zone

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.tz_name)

    @property
    def minutes(self) -> int:
        return BUCKETS[self.bucket]

    @property
    def hourly_allowed(self) -> bool:
        return self.end - self.start <= MAX_HOURLY_SPAN

    @property
    def max_hourly_days(self) -> int:
        return MAX_HOURLY_SPAN.days

    def local_input(self, instant: datetime) -> str:
        """The value of a `datetime-local` input showing `instant` in the range's zone."""
        return instant.astimezone(self.tz).strftime("%Y-%m-%dT%H:%M")


def _instant(name: str, raw: str, tz: ZoneInfo, *, end: bool) -> datetime:
    raw = raw.strip()
    try:
        if _EPOCH_MS.fullmatch(raw):
            return datetime.fromtimestamp(int(raw) / 1000, UTC)
        if _DATE.fullmatch(raw):
            day = date.fromisoformat(raw)
            if end:  # `to=2026-12-06` means through the end of that day
                day += timedelta(days=1)
            return local_midnight(datetime(day.year, day.month, day.day, 12, tzinfo=tz), tz)
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except (ValueError, OverflowError, OSError):
        raise RangeError(
            f"{name}: not a date, a date-time or epoch milliseconds: {raw[:40]!r}"
        ) from None
    # A naive value is what a datetime-local input sends: wall time in the zone.
    value = value if value.tzinfo else value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def parse_range(args: Mapping[str, str], now: datetime) -> TimeRange:
    """The range `args` (a page's query parameters, first value each) describe."""
    tz_raw = (args.get("tz") or "").strip()
    tz_name = tz_raw or "UTC"
    try:
        tz = zone(tz_name)
    except TimeError as exc:
        raise RangeError(str(exc)) from None
    raw_from, raw_to = (args.get("from") or "").strip(), (args.get("to") or "").strip()
    preset: str | None = None
    if raw_from or raw_to:
        end = _instant("to", raw_to, tz, end=True) if raw_to else now
        start = _instant("from", raw_from, tz, end=False) if raw_from else end - PRESETS["24h"]
    else:
        preset = (args.get("range") or DEFAULT_PRESET).strip()
        if preset not in PRESETS:
            raise RangeError(f"range: must be one of {', '.join(PRESETS)}, got {preset[:20]!r}")
        end, start = now, now - PRESETS[preset]
    if end <= start:
        raise RangeError("to: must be after from")
    span = end - start
    if span > MAX_SPAN:
        raise RangeError(f"from/to: at most {MAX_SPAN.days} days at a time")
    bucket = (args.get("bucket") or "").strip() or (
        "hour" if span <= HOURLY_DEFAULT_SPAN else "day"
    )
    if bucket not in BUCKETS:
        raise RangeError(f"bucket: must be hour or day, got {bucket[:20]!r}")
    if bucket == "hour" and span > MAX_HOURLY_SPAN:
        raise RangeError(
            f"bucket: hourly buckets cover at most {MAX_HOURLY_SPAN.days} days; use bucket=day"
        )
    return TimeRange(start, end, tz_name, bucket, preset, bool(tz_raw))
