"""Which rollup documents answer a set of display buckets, and how to read them
in few queries (pure).

`tile` covers the span of some breakpoints (display bucket boundaries, the edges
of a totals range) with whole rollup buckets, each interval between two
breakpoints tiled coarsest first: a local day in Asia/Kolkata (+05:30) is two
quarters, 23 hours and two quarters instead of 96 quarters, and no rollup bucket
straddles a breakpoint, so every document folds into exactly one interval.

`ReadPlan` turns the tiles into index range reads: adjacent tiles of a tier are
one range, and two ranges of a tier a few buckets apart are one too (on the
development database a query costs about as much as a dozen documents, so
reading the one-hour fringe between two Kolkata days and dropping it is cheaper
than a query per day). `covers` says which documents read belong to the tiles.

The sums the stats fold (counters, histograms) read through `stats.cumulative`,
which tiles the same way or, where that reads less, takes differences of
cumulative sums; `ReadPlan` stays the plan of what cannot be subtracted (the
newest rate-limit snapshot, a maximum).
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from stats.timebuckets import MINUTE, TIERS, Segment, aligned, decompose

# Ranges of one tier at most this many of its buckets apart are read as one.
MERGE_GAP_BUCKETS = 2


def tile(breakpoints: Sequence[datetime]) -> list[Segment]:
    """[breakpoints[0], breakpoints[-1]) as whole rollup buckets, in time order:
    each interval between consecutive (ascending, whole-minute) breakpoints as
    `decompose` cuts it, adjacent tiles of one tier joined."""
    for instant in breakpoints:
        if not aligned(instant, MINUTE):
            raise ValueError(f"breakpoint {instant.isoformat()} is not a whole minute")
    tiles: list[Segment] = []
    for start, end in itertools.pairwise(breakpoints):
        if end <= start:
            raise ValueError("breakpoints must ascend")
        for segment in decompose(start, end):
            last = tiles[-1] if tiles else None
            if last is not None and last.tier == segment.tier and last.end == segment.start:
                tiles[-1] = Segment(last.tier, last.start, segment.end)
            else:
                tiles.append(segment)
    return tiles


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """The tiles of some breakpoints and the range reads that fetch them."""

    tiles: tuple[Segment, ...]
    reads: tuple[Segment, ...]
    # Per tier name: tile starts and ends in time order, for `covers`.
    _starts: dict[str, list[datetime]] = field(repr=False, compare=False)
    _ends: dict[str, list[datetime]] = field(repr=False, compare=False)

    @classmethod
    def of(cls, breakpoints: Sequence[datetime], gap: int = MERGE_GAP_BUCKETS) -> ReadPlan:
        tiles = tile(breakpoints)
        starts: dict[str, list[datetime]] = {t.name: [] for t in TIERS}
        ends: dict[str, list[datetime]] = {t.name: [] for t in TIERS}
        for tier in TIERS:
            mine = [s for s in tiles if s.tier == tier]
            starts[tier.name] = [s.start for s in mine]
            ends[tier.name] = [s.end for s in mine]
        return cls(tuple(tiles), tuple(merge_reads(tiles, gap)), starts, ends)

    def covers(self, tier: str, start: datetime) -> bool:
        """Whether the rollup bucket of `tier` starting at `start` is one of the
        tiles' (a read range may also return buckets of the gaps it spans)."""
        starts = self._starts.get(tier)
        if not starts:
            return False
        index = bisect_right(starts, _utc(start)) - 1
        return index >= 0 and _utc(start) < self._ends[tier][index]


def merge_reads(segments: Sequence[Segment], gap: int = MERGE_GAP_BUCKETS) -> list[Segment]:
    """The range reads that fetch `segments` (which may overlap), coarsest tier
    first (the biggest reads go out first): per tier, segments that overlap,
    touch or lie at most `gap` of its buckets apart are one read."""
    reads: list[Segment] = []
    for tier in reversed(TIERS):
        reach = timedelta(seconds=tier.seconds * gap)
        runs: list[Segment] = []
        for segment in sorted((s for s in segments if s.tier == tier), key=lambda s: s.start):
            last = runs[-1] if runs else None
            if last is not None and segment.start - last.end <= reach:
                runs[-1] = Segment(tier, last.start, max(last.end, segment.end))
            else:
                runs.append(segment)
        reads.extend(runs)
    return reads
