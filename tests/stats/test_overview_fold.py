"""The Overview's fold equals what the per-query path returned on the same rollups:
the per-model totals and latency over the range's segments, the all-models series
from the `""` cuboid and each model's series from the `m` cuboid, both at the
finest tier common to the buckets, and the newest snapshot per organization."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bench.stats_data import documents
from stats import pipelines as p
from stats import shapes as shape
from stats.cumulative import SignedPlan
from stats.overview_fold import fold_overview, newest_snapshots
from stats.tiling import ReadPlan
from stats.timebuckets import (
    HOUR,
    MINUTE,
    bucket_starts,
    ceil_to,
    decompose,
    finest_common_tier,
    floor_to,
)
from tests.stats.rollup_memory import find, rollup_documents

# Three days around New York's and St. John's end of DST (2026-11-01).
START = datetime(2026, 10, 30, 21, 7, tzinfo=UTC)
SPAN = timedelta(days=3, hours=2)
ZONES = (
    "UTC",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/St_Johns",
    "America/New_York",
    "Australia/Lord_Howe",
)
FLOATS = ("cost_usd",)


@pytest.fixture(scope="module")
def rollups() -> list[dict[str, Any]]:
    requests = list(documents(900, START, SPAN, seed=11))
    requests[5].update(model=None, organizationId=None)
    return rollup_documents(requests)


def _old_series(
    rollups: list[dict[str, Any]], boundaries: list[datetime], model: str | None
) -> list[dict[str, float]]:
    tier = finest_common_tier(boundaries)
    match = p.series(tier, boundaries[0], boundaries[-1], model=model)[0]["$match"]
    rows = [shape.series_row(d) for d in find(rollups, match)]
    return shape.fold_series(rows, boundaries)


def _old_by_model(rollups: list[dict[str, Any]], low: datetime, high: datetime) -> dict[str, Any]:
    """`totals_by_model` and `latency_by_model` over `decompose`'s segments."""
    rows: dict[str, dict[str, Any]] = {}
    for segment in decompose(low, high):
        match = p.segment_match(segment, "m", None, None)["$match"]
        for d in find(rollups, match):
            row = rows.setdefault(d["model"], {"_id": d["model"]})
            for name, value in shape.series_row(d).items():
                if name != "_id":
                    row[name] = row.get(name, 0) + (value or 0)
            for hist in ("rtH", "ttfbH"):
                for i, n in (d.get(hist) or {}).items():
                    row[f"{hist}_{i}"] = row.get(f"{hist}_{i}", 0) + n
    return rows


def _old_latest(rollups: list[dict[str, Any]], low: datetime, high: datetime) -> list[Any]:
    snaps = []
    for segment in decompose(low, high):
        for d in find(rollups, p.segment_match(segment, "o", None, None)["$match"]):
            last = (d.get("rl") or {}).get("last")
            if last and d["org"] is not None:
                snaps.append((d["org"], last))
    newest: dict[str, dict[str, Any]] = {}
    for org, last in snaps:
        if org not in newest or last["at"] > newest[org]["at"]:
            newest[org] = last
    return [shape.latest_row(org, newest[org]) for org in sorted(newest)]


def _same(new: dict[str, Any], old: dict[str, Any]) -> None:
    assert new.keys() == old.keys()
    for name, value in old.items():
        if name in FLOATS or name == "costUsd" or name.endswith("Sum"):
            assert new[name] == pytest.approx(value, abs=1e-6), name
        else:
            assert new[name] == value, name


def _read(
    rollups: list[dict[str, Any]], plan: ReadPlan | SignedPlan, query: Any
) -> list[dict[str, Any]]:
    return [d for r in plan.reads for d in find(rollups, query(r))]


PLANS = {
    "plain": SignedPlan.plain,
    "cumulative": lambda breakpoints: SignedPlan.cumulative(breakpoints, 3.0),
}


@pytest.mark.parametrize("kind", PLANS)
@pytest.mark.parametrize("tz", ZONES)
def test_the_fold_equals_the_per_query_path(
    rollups: list[dict[str, Any]], tz: str, kind: str
) -> None:
    rng = random.Random(tz)
    zone = ZoneInfo(tz)
    for _ in range(12):
        start = START + timedelta(seconds=rng.randrange(int(SPAN.total_seconds()) - 3600))
        end = start + timedelta(seconds=rng.randrange(60, 3 * 86400))
        minutes = rng.choice((60, 1440))
        boundaries = bucket_starts(start, end, minutes, zone)
        low, high = floor_to(start, MINUTE), ceil_to(end, MINUTE)
        plan = PLANS[kind](sorted({*boundaries, low, high}))
        limits = ReadPlan.of([low, high])
        got = fold_overview(
            _read(rollups, plan, lambda r: p.rollup_filter(r.tier, r.start, r.end, by_model=True)),
            plan,
            boundaries,
            (low, high),
            _read(rollups, limits, p.snapshots),
            limits,
        )
        old = _old_by_model(rollups, low, high)
        models = sorted(
            (shape.model_row(r) for r in old.values()), key=lambda r: (-r["tokens"], r["model"])
        )
        assert [r["model"] for r in got.models] == [r["model"] for r in models]
        for new_row, old_row in zip(got.models, models, strict=True):
            _same(new_row, old_row)
        latency = [shape.latency_row(old[m]) for m in sorted(old)]
        assert [r["model"] for r in got.latency] == [r["model"] for r in latency]
        for new_row, old_row in zip(got.latency, latency, strict=True):
            for name, value in old_row.items():
                assert new_row[name] == pytest.approx(value, abs=1e-6), name
        for new_bucket, old_bucket in zip(
            got.total, _old_series(rollups, boundaries, None), strict=True
        ):
            _same(shape.split(new_bucket), shape.split(old_bucket))
        for model in {r["model"] for r in models}:
            old_series = _old_series(rollups, boundaries, model)
            for new_bucket, old_bucket in zip(got.per_model[model], old_series, strict=True):
                _same(shape.split(new_bucket), shape.split(old_bucket))
        assert got.rate_limits == _old_latest(rollups, low, high)
        assert sum(b["requests"] for b in got.total) >= sum(r["requests"] for r in got.models)


def test_documents_beyond_the_tiles_are_left_out(rollups: list[dict[str, Any]]) -> None:
    """A read spanning a gap between two tiles of its tier returns the gap's
    buckets too: they must not count twice."""
    zone = ZoneInfo("Asia/Kolkata")
    boundaries = bucket_starts(START + timedelta(hours=4), START + SPAN, 1440, zone)
    low, high = boundaries[0], boundaries[-1]
    plan = SignedPlan.plain(boundaries)
    read = _read(rollups, plan, lambda r: p.rollup_filter(r.tier, r.start, r.end, by_model=True))
    assert any(not plan.weights(d["tier"], d["t"]) for d in read)  # the fringe hours
    got = fold_overview(read, plan, boundaries, (low, high), [], plan)
    expected = _old_by_model(rollups, low, high)
    assert sum(b["requests"] for b in got.total) == sum(r["requests"] for r in expected.values())


def test_the_newest_snapshot_wins_and_states_without_an_organization_are_skipped() -> None:
    at = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    plan = ReadPlan.of([at, at + timedelta(days=1)])

    def doc(org: str | None, minutes: int, remaining: int) -> dict[str, Any]:
        instant = at + timedelta(minutes=minutes)
        return {
            "tier": "h",  # the plan tiles its day with hours
            "t": floor_to(instant, HOUR).replace(tzinfo=None),  # as read without tz_aware
            "org": org,
            "rl": {"last": {"at": instant, "requestsRemaining": remaining}},
        }

    rows = newest_snapshots(
        [doc("b", 5, 1), doc("a", 9, 2), doc("a", 3, 3), doc(None, 20, 4), {"tier": "m"}], plan
    )
    assert [(r["organizationId"], r["requestsRemaining"]) for r in rows] == [("a", 2), ("b", 1)]
    outside = doc("c", 60 * 30, 9)  # beyond the plan's range
    assert newest_snapshots([outside], plan) == []
