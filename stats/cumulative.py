"""Display buckets as differences of cumulative sums: fewer rollup documents for
zones whose days do not start on a UTC hour (pure).

With C(x) the sums over [origin, x), an interval [x, y) between two breakpoints
is C(y) - C(x). C(x) for an unaligned x can be taken from an *anchor* a on a
UTC day boundary: C(a) minus the fringe [x, a), or C(a) plus the fringe [a, x).
An interval then reads the whole rollup buckets between the anchors of its ends
plus its start's fringe minus its end's fringe. A local day in Asia/Kolkata
(+05:30, midnight at 18:30 UTC) becomes one UTC day document plus the fringe
[18:30, 24:00) (two quarters and five hours) instead of two quarters, 23 hours and
two quarters; each fringe adds to one interval and subtracts from its neighbour,
and is read once.

Anchors are chosen per breakpoint by a shortest path over the candidates (the
breakpoint itself, its UTC day and hour boundaries), counting what costs on the
development database: documents read and queries sent. The result is used only
when the whole plan (its reads merged as `stats.tiling` merges them) costs less
than the plain tiling, which is the path whose anchors are the breakpoints: so a
UTC page, hourly buckets or a short range keep their plain plan.

Signed terms are only sound for additive fields (counters, sums, histogram
counts): a minimum, a maximum or a newest snapshot cannot be subtracted, so
rate-limit state is never read through these plans (see `stats.tiling.ReadPlan`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from stats.tiling import MERGE_GAP_BUCKETS, merge_reads
from stats.timebuckets import COARSEST_FIRST, DAY, HOUR, MINUTE, Segment, Tier, aligned, epoch

# On the development database a range query costs about as much as reading eight
# rollup documents (~0.6 ms against ~75 µs each, measured on the benchmark copies).
QUERY_DOCUMENTS = 8.0

# Anchor tiers: UTC days (a Kolkata day as one day document and a fringe) and hours
# (sub-day buckets of a half-hour zone).
_ANCHOR_TIERS: tuple[Tier, ...] = (DAY, HOUR)

# A rollup bucket: (tier name, start in epoch seconds).
BucketKey = tuple[str, int]
# Its contributions: (interval index, +1 or -1), intervals [breakpoints[i], breakpoints[i + 1]).
Weights = tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Term:
    """Every rollup bucket of `segment`, counted `sign` times into `interval`."""

    segment: Segment
    interval: int
    sign: int


def _ceil(value: int, step: int) -> int:
    return -(-value // step) * step


def _pieces(start: int, end: int) -> list[tuple[Tier, int, int]]:
    """`timebuckets.decompose` on whole-minute epoch seconds, without recursion:
    the coarsest tier with a whole bucket inside, then ever finer tiers towards
    each edge (every tier divides the next coarser one)."""
    if start >= end:
        return []
    for i, tier in enumerate(COARSEST_FIRST):
        low, high = _ceil(start, tier.seconds), end // tier.seconds * tier.seconds
        if low < high:
            left: list[tuple[Tier, int, int]] = []
            right: list[tuple[Tier, int, int]] = []
            inner_low, inner_high = low, high
            for finer in COARSEST_FIRST[i + 1 :]:
                edge = _ceil(start, finer.seconds)
                if edge < inner_low:
                    left.append((finer, edge, inner_low))
                    inner_low = edge
                edge = end // finer.seconds * finer.seconds
                if inner_high < edge:
                    right.append((finer, inner_high, edge))
                    inner_high = edge
            return [*reversed(left), (tier, low, high), *right]
    raise ValueError("breakpoints must be whole minutes")


@lru_cache(maxsize=4096)
def _shape(offset: int, length: int) -> tuple[int, int]:
    """(rollup buckets, ranges) of the tiling of [t, t + length) for any t at
    `offset` seconds into a UTC day: every tier divides a day."""
    pieces = _pieces(offset, offset + length)
    return sum((b - a) // t.seconds for t, a, b in pieces), len(pieces)


def _cost(start: int, end: int, query: float) -> float:
    if start == end:
        return 0.0
    low, high = min(start, end), max(start, end)
    buckets, ranges = _shape(low % DAY.seconds, high - low)
    return buckets + query * ranges


def _candidates(points: list[int], i: int) -> list[int]:
    """The breakpoint itself and its UTC day and hour boundaries, up to the
    breakpoints two away: a fringe across several breakpoints only moves
    documents between intervals without saving any (and would make dense buckets
    slow to plan); across one it can share its documents with the neighbour's
    fringe (a range's edge a few minutes after a local midnight)."""
    x = points[i]
    low = points[i - 2] if i > 1 else -math.inf
    high = points[i + 2] if i + 2 < len(points) else math.inf
    out = {x}
    for tier in _ANCHOR_TIERS:
        for anchor in (x // tier.seconds * tier.seconds, _ceil(x, tier.seconds)):
            if low <= anchor <= high:
                out.add(anchor)
    return sorted(out)


def _anchors(points: list[int], query: float) -> list[int]:
    """The anchor of each breakpoint that makes the cheapest sum of fringes and
    of the tilings between consecutive anchors (anchors never descend)."""
    options = [_candidates(points, i) for i in range(len(points))]
    if all(len(o) == 1 for o in options):
        return points
    # best[j]: the cheapest cost so far with the current breakpoint at options[i][j].
    best = [_cost(points[0], a, query) for a in options[0]]
    back: list[list[int]] = []
    for i in range(1, len(points)):
        previous = options[i - 1]
        row: list[float] = []
        pointers: list[int] = []
        for a in options[i]:
            cost, j = min(
                ((best[k] + _cost(p, a, query), k) for k, p in enumerate(previous) if p <= a),
                default=(math.inf, -1),
            )
            row.append(cost + _cost(points[i], a, query))
            pointers.append(j)
        back.append(pointers)
        best = row
    index = min(range(len(best)), key=best.__getitem__)
    chosen = [options[-1][index]]
    for i in range(len(points) - 1, 0, -1):
        index = back[i - 1][index]
        chosen.append(options[i - 1][index])
    return chosen[::-1]


def _segment(tier: Tier, start: int, end: int) -> Segment:
    return Segment(tier, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))


# A term on epoch seconds: (tier, start, end, interval, sign).
_Term = tuple[Tier, int, int, int, int]


def _terms(points: list[int], anchors: list[int]) -> list[_Term]:
    last = len(points) - 1
    terms: list[_Term] = []
    for i, (x, a) in enumerate(zip(points, anchors, strict=True)):
        # C(x) = C(a) - [x, a) or C(a) + [a, x): the fringe counts into the interval
        # it lies in and out of the neighbour the anchors' tiling gave it to.
        inside, outside = (i, i - 1) if a > x else (i - 1, i)
        for tier, start, end in _pieces(min(x, a), max(x, a)):
            if 0 <= inside < last:
                terms.append((tier, start, end, inside, 1))
            if 0 <= outside < last:
                terms.append((tier, start, end, outside, -1))
        if i < last:
            core = _pieces(a, anchors[i + 1])
            terms.extend((tier, start, end, i, 1) for tier, start, end in core)
    return terms


def _runs(terms: list[_Term]) -> list[Segment]:
    """The terms' ranges per tier with overlapping and touching ones joined."""
    runs: list[Segment] = []
    for tier in COARSEST_FIRST:
        spans = sorted((start, end) for t, start, end, _, _ in terms if t == tier)
        joined: list[list[int]] = []
        for start, end in spans:
            if joined and start <= joined[-1][1]:
                joined[-1][1] = max(joined[-1][1], end)
            else:
                joined.append([start, end])
        runs.extend(_segment(tier, start, end) for start, end in joined)
    return runs


@dataclass(frozen=True, slots=True)
class SignedPlan:
    """Which rollup buckets make up each interval between breakpoints (with a sign)
    and the range reads that fetch them."""

    breakpoints: tuple[datetime, ...]
    reads: tuple[Segment, ...]
    _terms: tuple[_Term, ...] = field(repr=False, compare=False)
    _weights: dict[BucketKey, Weights] = field(repr=False, compare=False)

    @classmethod
    def of(
        cls,
        breakpoints: Sequence[datetime],
        query_cost: float = QUERY_DOCUMENTS,
        gap: int = MERGE_GAP_BUCKETS,
    ) -> SignedPlan:
        """The cheaper of the plain tiling and the best signed one. `query_cost`:
        what a query costs in rollup buckets (documents per query over documents
        per bucket: fewer for a read of several models)."""
        points = _points(breakpoints)
        # Costs compare the reads alone: only the chosen plan's weights are built.
        plain = _terms(points, points)
        signed = _terms(points, _anchors(points, query_cost))
        cheaper = _cost_of(merge_reads(_runs(signed), gap), query_cost) < _cost_of(
            merge_reads(_runs(plain), gap), query_cost
        )
        return cls._of_terms(breakpoints, signed if cheaper else plain, gap)

    @classmethod
    def cumulative(
        cls,
        breakpoints: Sequence[datetime],
        query_cost: float = QUERY_DOCUMENTS,
        gap: int = MERGE_GAP_BUCKETS,
    ) -> SignedPlan:
        """The signed plan of the cheapest anchors (the plain one when no anchor
        but the breakpoints themselves pays), whatever its reads cost."""
        points = _points(breakpoints)
        return cls._build(breakpoints, points, _anchors(points, query_cost), gap)

    @classmethod
    def anchored(
        cls,
        breakpoints: Sequence[datetime],
        anchors: Sequence[datetime],
        gap: int = MERGE_GAP_BUCKETS,
    ) -> SignedPlan:
        """The plan of given anchors (whole minutes, not descending), one per
        breakpoint: C(breakpoint) from C(anchor) and the fringe between them."""
        points = _points(breakpoints)
        marks = [epoch(a) for a in anchors]
        if len(marks) != len(points) or any(b < a for a, b in itertools.pairwise(marks)):
            raise ValueError("one anchor per breakpoint, never descending")
        if not all(aligned(a, MINUTE) for a in anchors):
            raise ValueError("anchors must be whole minutes")
        return cls._build(breakpoints, points, marks, gap)

    @classmethod
    def plain(cls, breakpoints: Sequence[datetime], gap: int = MERGE_GAP_BUCKETS) -> SignedPlan:
        """Every interval tiled by its own rollup buckets (`stats.tiling.tile`)."""
        points = _points(breakpoints)
        return cls._build(breakpoints, points, points, gap)

    @classmethod
    def _build(
        cls, breakpoints: Sequence[datetime], points: list[int], anchors: list[int], gap: int
    ) -> SignedPlan:
        return cls._of_terms(breakpoints, _terms(points, anchors), gap)

    @classmethod
    def _of_terms(cls, breakpoints: Sequence[datetime], terms: list[_Term], gap: int) -> SignedPlan:
        sums: dict[BucketKey, dict[int, int]] = {}
        for tier, start, end, interval, sign in terms:
            for bucket in range(start, end, tier.seconds):
                into = sums.setdefault((tier.name, bucket), {})
                into[interval] = into.get(interval, 0) + sign
        weights = {
            key: tuple((i, s) for i, s in sorted(by.items()) if s) for key, by in sums.items()
        }
        reads = merge_reads(_runs(terms), gap)
        return cls(tuple(breakpoints), tuple(reads), tuple(terms), weights)

    @property
    def terms(self) -> list[Term]:
        return [Term(_segment(t, a, b), i, s) for t, a, b, i, s in self._terms]

    @property
    def signed(self) -> bool:
        return any(sign < 0 for *_, sign in self._terms)

    def weights(self, tier: str, start: datetime) -> Weights:
        """The (interval, sign) contributions of the rollup bucket of `tier`
        starting at `start`: empty for buckets a merged read returns beyond the
        terms (or whose contributions cancel out)."""
        return self._weights.get((tier, epoch(start)), ())

    def cost(self, query_cost: float) -> float:
        """Buckets the reads span (gaps included) plus `query_cost` per read."""
        return _cost_of(self.reads, query_cost)


def _cost_of(reads: Sequence[Segment], query_cost: float) -> float:
    spanned = sum((epoch(r.end) - epoch(r.start)) // r.tier.seconds for r in reads)
    return spanned + query_cost * len(reads)


def _points(breakpoints: Sequence[datetime]) -> list[int]:
    for instant in breakpoints:
        if not aligned(instant, MINUTE):
            raise ValueError(f"breakpoint {instant.isoformat()} is not a whole minute")
    points = [epoch(b) for b in breakpoints]
    if len(points) < 2 or any(b <= a for a, b in itertools.pairwise(points)):
        raise ValueError("breakpoints must ascend (at least two)")
    return points
