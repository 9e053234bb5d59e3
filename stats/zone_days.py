"""Day and hour charts in a zone of `STATS_ZONES` from its local rollups (pure).

With `STATS_ZONES=Asia/Kolkata` the recorder also rolls every request up into
the local day and the local hour it fell in (tiers `d@Asia/Kolkata` and
`h@Asia/Kolkata`, `stats.rollups.fold`). An Overview by day in that zone then
reads one document per day and model, where the UTC tiers need a UTC day and a
fringe of hours and quarters per local day (`stats.cumulative`): ~90 documents
in one range read for 30 days of three models, against ~880 in 68. By hour, a
+05:30 hour is a UTC hour and two quarters; its local-hour documents, one each.

A display bucket by day (hour) is a whole local day (hour)
(`timebuckets.bucket_starts`), so its local documents are its series as they
stand. The totals and latency
are the range's (`now - 30 days` starts inside the first day), read from the UTC
tiers as for any range: their day documents and the fringes at the two ends.

Zone documents can be missing records the UTC tiers have: days before the zone
was listed (until `recording.rebuild_rollups --zones` fills them in), records
stored by a recorder running without the setting (a rolling update, a pod
configured differently). So they are used only when they hold exactly as many
requests as the UTC tiers count over the same span (`complete`); otherwise the
page is read from the UTC tiers as before. Derived documents never count a
record twice (stats.derived_writer), so equal sums mean no day lacks one; while
a batch is being applied a reader may see part of it, on either path.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from stats.cumulative import Weights
from stats.pipelines import cuboid_for
from stats.timebuckets import epoch, zone_day_tier, zone_hour_tier

DAY_MINUTES = 1440
HOUR_MINUTES = 60


def local_tier(
    zones: Sequence[str], tz: ZoneInfo, minutes: int, boundaries: Sequence[datetime]
) -> str | None:
    """The local-day or local-hour tier that answers buckets of `minutes` in
    `tz`, if any: the zone's own, or that of a listed zone whose days (hours)
    are the same over the display buckets (Asia/Colombo's are Asia/Kolkata's:
    both +05:30 since 2006), so a team need not list every name its browsers
    report. Hours that are UTC hours are read from the UTC tiers directly."""
    if minutes == DAY_MINUTES:
        if tz.key in zones:
            return zone_day_tier(tz.key)
        for zone in zones:
            if same_days(boundaries, ZoneInfo(zone)):
                return zone_day_tier(zone)
        return None
    if minutes != HOUR_MINUTES or all(epoch(b) % 3600 == 0 for b in boundaries):
        return None
    if tz.key in zones:
        return zone_hour_tier(tz.key)
    for zone in zones:
        if same_hours(boundaries, tz, ZoneInfo(zone)):
            return zone_hour_tier(zone)
    return None


def same_days(boundaries: Sequence[datetime], zone: ZoneInfo) -> bool:
    """Whether the display buckets `boundaries` (consecutive local midnights of
    some zone) are consecutive local days of `zone` too."""
    dates = []
    for boundary in boundaries:
        local = boundary.astimezone(zone)
        if (local.hour, local.minute, local.second, local.microsecond) != (0, 0, 0, 0):
            return False
        dates.append(local.date())
    return all(b - a == timedelta(days=1) for a, b in pairwise(dates))


def same_hours(boundaries: Sequence[datetime], tz: ZoneInfo, zone: ZoneInfo) -> bool:
    """Whether the display buckets `boundaries` (consecutive local hours of `tz`)
    are local hours of `zone` too: the two zones' offsets agree at every
    boundary and every bucket's middle (no transition of one alone inside)."""
    instants = [*boundaries, *(a + (b - a) / 2 for a, b in pairwise(boundaries))]
    return all(i.astimezone(zone).utcoffset() == i.astimezone(tz).utcoffset() for i in instants)


def day_filter(
    tier: str,
    boundaries: Sequence[datetime],
    *,
    by_model: bool = True,
    model: str | None = None,
    org: str | None = None,
) -> dict[str, Any]:
    """The local-day documents of the display buckets at the cuboid that answers
    the filters (per model for the Overview): one range of the
    `(tier, cuboid, …, t)` indexes."""
    query: dict[str, Any] = {
        "tier": tier,
        "cuboid": cuboid_for(by_model=by_model, model=model, org=org),
        "t": {"$gte": boundaries[0], "$lt": boundaries[-1]},
    }
    if model:
        query["model"] = model
    if org:
        query["org"] = org
    return query


@dataclass(frozen=True, slots=True)
class ZoneDayPlan:
    """A plan for `stats.overview_fold.fold_overview` over local-day documents:
    each display bucket (a whole local day) is one interval, its document's."""

    tier: str
    breakpoints: tuple[datetime, ...]
    _days: tuple[int, ...]  # epoch seconds of the breakpoints

    @classmethod
    def of(cls, tier: str, boundaries: Sequence[datetime]) -> ZoneDayPlan:
        return cls(tier, tuple(boundaries), tuple(epoch(b) for b in boundaries))

    def weights(self, tier: str, start: datetime) -> Weights:
        if tier != self.tier:
            return ()
        second = epoch(start)
        index = bisect_left(self._days, second)
        if index >= len(self._days) - 1 or self._days[index] != second:
            return ()
        return ((index, 1),)


def utc_breakpoints(
    boundaries: Sequence[datetime], totals: tuple[datetime, datetime]
) -> list[datetime]:
    """What the UTC tiers are read for beside the local days: the totals range
    and the parts of the first and last day outside it (the span of all the days,
    to hold them against)."""
    return sorted({boundaries[0], *totals, boundaries[-1]})


def complete(day_requests: float, counted_requests: float) -> bool:
    """Whether the local-day documents of the display buckets hold every request
    the UTC tiers count over the same span."""
    return day_requests == counted_requests
