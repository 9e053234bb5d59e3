"""Display buckets as differences of cumulative sums: every signed plan counts
each minute exactly once into the interval holding it, and folds to what the
plain tiling folds to (counters exactly, costs within their rounding)."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bench.stats_data import documents
from stats import pipelines as p
from stats import shapes as shape
from stats.cumulative import SignedPlan, _pieces
from stats.overview_fold import fold_buckets, fold_overview
from stats.tiling import ReadPlan
from stats.timebuckets import (
    DAY,
    HOUR,
    MINUTE,
    bucket_starts,
    ceil_to,
    decompose,
    epoch,
    floor_to,
)
from tests.stats.odd_zones import ODD_ZONES, SPAN, START
from tests.stats.rollup_memory import (
    assert_same_overview,
    assert_same_rows,
    find,
    rollup_documents,
)

ZONES = ("UTC", *ODD_ZONES)
TIERS_BY_NAME = {t.name: t for t in (MINUTE, HOUR, DAY)}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _breakpoints(rng: random.Random, zone: ZoneInfo, around: datetime) -> list[datetime]:
    start = around + timedelta(minutes=rng.randrange(-3 * 1440, 3 * 1440))
    end = start + timedelta(minutes=rng.randrange(1, 4 * 1440))
    minutes = rng.choice((15, 30, 60, 180, 720, 1440, 1440))
    boundaries = bucket_starts(start, end, minutes, zone)
    # The totals range's edges are breakpoints too (the Overview's).
    return sorted({*boundaries, floor_to(start, MINUTE), ceil_to(end, MINUTE)})


def _random_anchors(rng: random.Random, breakpoints: list[datetime]) -> list[datetime]:
    """Any whole-minute anchors that never descend: the algebra must hold for all."""
    options = []
    for x in breakpoints:
        tier = rng.choice((MINUTE, HOUR, DAY))
        options.append(rng.choice((x, floor_to(x, tier), ceil_to(x, tier))))
    return list(itertools.accumulate(options, max))


def _coverage(plan: SignedPlan) -> dict[int, dict[int, int]]:
    """Per interval: how many times each minute counts into it (zeros left out)."""
    out: dict[int, dict[int, int]] = {}
    for (tier, start), weights in plan._weights.items():
        seconds = {"m": 60, "q": 900, "h": 3600, "d": 86400}[tier]
        for interval, sign in weights:
            into = out.setdefault(interval, {})
            for minute in range(start, start + seconds, 60):
                into[minute] = into.get(minute, 0) + sign
    return {i: {m: n for m, n in c.items() if n} for i, c in out.items()}


def _check_exact(plan: SignedPlan) -> None:
    coverage = _coverage(plan)
    for i, (a, b) in enumerate(itertools.pairwise(plan.breakpoints)):
        assert coverage.get(i, {}) == dict.fromkeys(range(epoch(a), epoch(b), 60), 1), i
    # Every bucket with a weight is fetched by a read of its tier.
    for tier, start in plan._weights:
        at = datetime.fromtimestamp(start, UTC)
        assert any(r.tier.name == tier and r.start <= at < r.end for r in plan.reads)


def test_pieces_are_the_decomposition() -> None:
    rng = random.Random(5)
    for _ in range(400):
        start = utc(2026, 3, 1) + timedelta(minutes=rng.randrange(60 * 24 * 40))
        end = start + timedelta(minutes=rng.choice((1, 14, 61, 1500, rng.randrange(1, 90000))))
        got = [(t.name, a, b) for t, a, b in _pieces(epoch(start), epoch(end))]
        assert got == [(s.tier.name, epoch(s.start), epoch(s.end)) for s in decompose(start, end)]


@pytest.mark.parametrize("tz", ZONES)
def test_any_anchors_count_every_minute_once_into_its_interval(tz: str) -> None:
    zone = ZoneInfo(tz)
    rng = random.Random(tz)
    for _ in range(25):
        breakpoints = _breakpoints(rng, zone, START)
        _check_exact(SignedPlan.anchored(breakpoints, _random_anchors(rng, breakpoints)))
        _check_exact(SignedPlan.cumulative(breakpoints, rng.choice((1.0, 3.0, 8.0))))


@pytest.mark.parametrize("tz", ZONES)
def test_the_chosen_plan_never_costs_more_than_the_plain_tiling(tz: str) -> None:
    zone = ZoneInfo(tz)
    rng = random.Random(f"cost {tz}")
    for _ in range(40):
        breakpoints = _breakpoints(rng, zone, START + timedelta(days=rng.randrange(-200, 200)))
        query = rng.choice((1.0, 8.0 / 3, 8.0))
        plan, plain = SignedPlan.of(breakpoints, query), SignedPlan.plain(breakpoints)
        assert plan.cost(query) <= plain.cost(query)
        _check_exact(plan)


def test_the_plain_plan_reads_what_the_tiling_reads() -> None:
    rng = random.Random(7)
    for tz in ZONES:
        breakpoints = _breakpoints(rng, ZoneInfo(tz), START)
        plain = SignedPlan.plain(breakpoints)
        assert plain.reads == ReadPlan.of(breakpoints).reads and not plain.signed


@pytest.mark.parametrize(
    ("tz", "minutes", "signed"),
    [
        ("UTC", 1440, False),  # days from day documents already
        ("UTC", 60, False),
        ("America/New_York", 60, False),  # one hour document per bucket
        ("Asia/Kolkata", 60, False),  # four quarters in one read beat two reads
        ("Asia/Kolkata", 1440, True),
        ("Asia/Kathmandu", 1440, True),
        ("America/St_Johns", 1440, True),
        ("America/New_York", 1440, True),  # a day document and five hours, not 24
    ],
)
def test_differences_are_taken_only_where_they_read_less(
    tz: str, minutes: int, signed: bool
) -> None:
    # Whole local days or hours, no partial edges: only the zone decides.
    zone = ZoneInfo(tz)
    start = datetime(2026, 11, 3, tzinfo=zone).astimezone(UTC)
    boundaries = bucket_starts(start, start + timedelta(days=30), minutes, zone)
    plan = SignedPlan.of(boundaries)
    assert plan.signed == signed
    if signed:
        plain = SignedPlan.plain(boundaries)
        assert plan.cost(8.0) < plain.cost(8.0) * 0.8


def test_a_kolkata_day_is_one_day_document_and_a_fringe() -> None:
    zone = ZoneInfo("Asia/Kolkata")
    start = datetime(2026, 11, 3, tzinfo=zone).astimezone(UTC)
    boundaries = bucket_starts(start, start + timedelta(days=30), 1440, zone)
    plan = SignedPlan.of(boundaries)
    buckets = {tier: 0 for tier in "mqhd"}
    for tier, _ in plan._weights:
        buckets[tier] += 1
    # Per day a day document, per boundary two quarters and five hours (its
    # fringe, 18:30 to 24:00 UTC): 8 documents a day instead of 27.
    days = len(boundaries) - 1
    assert days == 30
    assert buckets == {"m": 0, "q": 2 * (days + 1), "h": 5 * (days + 1), "d": days}


# ---- folds -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rollups() -> list[dict[str, Any]]:
    requests = list(documents(1500, START, SPAN, seed=21))
    requests[7].update(model=None, organizationId=None)
    return rollup_documents(requests)


def _read(
    rollups: list[dict[str, Any]], plan: SignedPlan | ReadPlan, query: Callable[..., Any]
) -> list[dict[str, Any]]:
    # Grouped by tier and cuboid first: a scan of every rollup per read is slow.
    groups = _GROUPS.get(id(rollups))
    if groups is None:
        groups = _GROUPS[id(rollups)] = {}
        for d in rollups:
            groups.setdefault((d["tier"], d["cuboid"]), []).append(d)
    out = []
    for r in plan.reads:
        match = query(r)
        out.extend(find(groups.get((match["tier"], match["cuboid"]), []), match))
    return out


_GROUPS: dict[int, dict[tuple[str, str], list[dict[str, Any]]]] = {}


def _by_model(r: Any) -> dict[str, Any]:
    return p.rollup_filter(r.tier, r.start, r.end, by_model=True)


@pytest.mark.parametrize("tz", ZONES)
def test_signed_series_fold_to_the_plain_series(rollups: list[dict[str, Any]], tz: str) -> None:
    zone = ZoneInfo(tz)
    rng = random.Random(f"series {tz}")
    signed_seen = 0
    for _ in range(20):
        start = START + timedelta(minutes=rng.randrange(-600, int(SPAN.total_seconds() / 60)))
        end = start + timedelta(minutes=rng.randrange(60, 4 * 1440))
        minutes = rng.choice((30, 60, 180, 1440, 1440))
        model = rng.choice((None, None, "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805"))
        org = rng.choice((None, None, "org-beta"))
        boundaries = bucket_starts(start, end, minutes, zone)

        def query(r: Any, model: str | None = model, org: str | None = org) -> dict[str, Any]:
            return p.rollup_filter(r.tier, r.start, r.end, model=model, org=org)

        plain = SignedPlan.plain(boundaries)
        want = fold_buckets(_read(rollups, plain, query), plain)
        for plan in (
            SignedPlan.cumulative(boundaries, 1.0),
            SignedPlan.anchored(boundaries, _random_anchors(rng, boundaries)),
        ):
            signed_seen += plan.signed
            got = fold_buckets(_read(rollups, plan, query), plan)
            assert_same_rows([shape.split(b) for b in got], [shape.split(b) for b in want])
        assert sum(b["requests"] for b in want) > 0 or model or org
    assert signed_seen >= 10  # of 40 plans: the algebra is exercised in every zone


@pytest.mark.parametrize("tz", ZONES)
def test_the_signed_overview_folds_to_the_plain_one(rollups: list[dict[str, Any]], tz: str) -> None:
    zone = ZoneInfo(tz)
    rng = random.Random(f"overview {tz}")
    for _ in range(10):
        start = START + timedelta(minutes=rng.randrange(0, int(SPAN.total_seconds() / 60) - 60))
        end = start + timedelta(minutes=rng.randrange(60, 4 * 1440))
        minutes = rng.choice((60, 1440))
        boundaries = bucket_starts(start, end, minutes, zone)
        totals = (floor_to(start, MINUTE), ceil_to(end, MINUTE))
        breakpoints = sorted({*boundaries, *totals})
        limits = ReadPlan.of(totals)
        snapshots = _read(rollups, limits, p.snapshots)

        def overview(plan: SignedPlan, shown: list[datetime], edges: Any, snaps: Any) -> Any:
            read = _read(rollups, plan, _by_model)
            return fold_overview(read, plan, shown, edges, snaps, ReadPlan.of(edges))

        want = overview(SignedPlan.plain(breakpoints), boundaries, totals, snapshots)
        for plan in (
            SignedPlan.cumulative(breakpoints, 1.0),
            SignedPlan.anchored(breakpoints, _random_anchors(rng, breakpoints)),
        ):
            got = overview(plan, boundaries, totals, snapshots)
            assert_same_overview(got, want)


def test_float_noise_and_torn_writes_never_show_below_zero() -> None:
    """A Kolkata day whose UTC day document holds only requests of the next
    local day: its sum is that document minus the next day's fringe, a few ulps
    off zero."""
    zone = ZoneInfo("Asia/Kolkata")
    day = datetime(2026, 11, 3, tzinfo=zone).astimezone(UTC)  # 2026-11-02 18:30 UTC
    breakpoints = [day, day + timedelta(days=1)]
    plan = SignedPlan.anchored(breakpoints, [ceil_to(b, DAY) for b in breakpoints])
    utc_day = ceil_to(day, DAY)  # 2026-11-03, whose 19:00 on is the next local day

    def doc(tier: str, t: datetime, cost: float, requests: int) -> dict[str, Any]:
        return {"tier": tier, "t": t, "model": "x", "costUsd": cost, "requests": requests}

    documents = [
        doc("d", utc_day, 0.1 + 0.2, 2),
        doc("h", utc_day + timedelta(hours=19), 0.1, 1),
        doc("h", utc_day + timedelta(hours=20), 0.2, 1),
    ]
    assert (0.1 + 0.2) - 0.1 - 0.2 != 0  # the noise is there to clean
    [bucket] = fold_buckets(documents, plan)
    assert bucket["requests"] == 0
    assert bucket["costUsd"] == 0.0 and math.copysign(1, bucket["costUsd"]) == 1
    # Nor is the model of those requests in the day's Overview (no plain tile
    # of the day would have read one of its documents).
    view = fold_overview(
        documents, plan, breakpoints, (day, breakpoints[1]), [], ReadPlan.of(breakpoints)
    )
    assert (view.models, view.latency, view.per_model) == ([], [], {})
    assert view.total[0]["requests"] == 0
    # A fringe document written before its day document (a bulk in flight).
    [bucket] = fold_buckets([doc("h", utc_day + timedelta(hours=19), 0.5, 3)], plan)
    assert bucket["requests"] == 0 and bucket["costUsd"] == 0.0
    assert shape.split(bucket)["cost_usd"] == 0.0
