"""Aggregation pipelines for the stats, as data built by pure functions.

Every standard stat reads the `rollups` collection (stats/rollups.py) through
the `(tier, cuboid, t)` index; only the latest rate-limit state per organization
reads request documents, one index-backed `find` per organization.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stats.rollups import COUNTERS, HIST_BUCKETS, RATE_LIMIT_FIELDS
from stats.timebuckets import Segment, Tier

STATUS_CLASSES: tuple[str, ...] = ("1xx", "2xx", "3xx", "4xx", "5xx", "none")


def cuboid_for(*, by_model: bool, model: str | None, org: str | None) -> str:
    """The smallest set of rollup documents that can answer a query."""
    return ("m" if by_model or model else "") + ("o" if org else "")


def _filters(cuboid: str, model: str | None, org: str | None) -> dict[str, Any]:
    match: dict[str, Any] = {"cuboid": cuboid}
    if model:
        match["model"] = model
    if org:
        match["org"] = org
    return match


def _range(tier: Tier, start: datetime, end: datetime) -> dict[str, Any]:
    return {"tier": tier.name, "t": {"$gte": start, "$lt": end}}


def segment_match(
    segment: Segment, cuboid: str, model: str | None, org: str | None
) -> dict[str, Any]:
    """One tier's range: the index `(tier, cuboid, t)` serves it. A range spanning
    tiers is one pipeline per segment (an `$or` of ranges is not index-backed on
    the development database), merged by `stats_shapes.merge_rows`."""
    return {
        "$match": {
            **_range(segment.tier, segment.start, segment.end),
            **_filters(cuboid, model, org),
        }
    }


def counter_sums() -> dict[str, Any]:
    sums: dict[str, Any] = {name: {"$sum": f"${name}"} for name in COUNTERS}
    for status in STATUS_CLASSES:
        sums[f"status_{status}"] = {"$sum": f"$status.{status}"}
    return sums


def rollup_filter(
    tier: Tier,
    start: datetime,
    end: datetime,
    *,
    by_model: bool = False,
    model: str | None = None,
    org: str | None = None,
) -> dict[str, Any]:
    """The rollup documents of one tier in [start, end) at the cuboid that answers
    the filters: equality on `(tier, cuboid[, model][, org])` and a range on `t`,
    which the `(tier, cuboid, …, t)` indexes serve (an `$in` of bucket starts is
    slower per document on the development database, and an `$or` of ranges, or a
    `$unionWith` per range, is a collection scan there)."""
    cuboid = cuboid_for(by_model=by_model, model=model, org=org)
    return {**_range(tier, start, end), **_filters(cuboid, model, org)}


def series(
    tier: Tier,
    start: datetime,
    end: datetime,
    *,
    model: str | None = None,
    org: str | None = None,
) -> list[dict[str, Any]]:
    """The rollup documents of [start, end), one per rollup bucket (the cuboid and
    the filters pin model and organization), for the caller to fold into display
    buckets (`stats_shapes.series_row`). A bare index-backed `$match`: the
    documents are already sums, and on the development database `$group`,
    `$bucket`, `$project` and `$sort` each cost more than the fold (a `$project`
    nearly doubles a 30-day quarter-hour read)."""
    return [{"$match": rollup_filter(tier, start, end, model=model, org=org)}]


# What the newest rate-limit state per organization needs of an `o` rollup (tier
# and bucket start: a merged read may return buckets its plan does not cover).
SNAPSHOT_PROJECTION: dict[str, Any] = {"_id": 0, "tier": 1, "t": 1, "org": 1, "rl.last": 1}


def snapshots(segment: Segment) -> dict[str, Any]:
    """Every organization's rollups of a segment, to find the newest `rl.last`
    per organization in Python (read with `SNAPSHOT_PROJECTION`)."""
    return {**_range(segment.tier, segment.start, segment.end), **_filters("o", None, None)}


def totals_by_model(
    segment: Segment, *, model: str | None = None, org: str | None = None
) -> list[dict[str, Any]]:
    cuboid = cuboid_for(by_model=True, model=model, org=org)
    return [
        segment_match(segment, cuboid, model, org),
        {"$group": {"_id": "$model", **counter_sums()}},
        {"$sort": {"tokens": -1, "_id": 1}},
    ]


def latency_by_model(
    segment: Segment, *, model: str | None = None, org: str | None = None
) -> list[dict[str, Any]]:
    cuboid = cuboid_for(by_model=True, model=model, org=org)
    histograms: dict[str, Any] = {}
    for name in ("rtH", "ttfbH"):
        for index in range(HIST_BUCKETS):
            histograms[f"{name}_{index}"] = {"$sum": f"${name}.{index}"}
    return [
        segment_match(segment, cuboid, model, org),
        {
            "$group": {
                "_id": "$model",
                "requests": {"$sum": "$requests"},
                "rtSum": {"$sum": "$rtSum"},
                "rtCount": {"$sum": "$rtCount"},
                "ttfbSum": {"$sum": "$ttfbSum"},
                "ttfbCount": {"$sum": "$ttfbCount"},
                **histograms,
            }
        },
        {"$sort": {"_id": 1}},
    ]


def rate_limit_series(
    tier: Tier, start: datetime, end: datetime, *, org: str | None = None
) -> list[dict[str, Any]]:
    accumulators: dict[str, Any] = {
        target: {op: f"$rl.{target}"} for _, target, op in RATE_LIMIT_FIELDS
    }
    return [
        {"$match": {**_range(tier, start, end), **_filters("o", None, org)}},
        {"$group": {"_id": {"org": "$org", "t": "$t"}, **accumulators}},
        {"$sort": {"_id.t": 1}},
    ]


def organizations() -> list[dict[str, Any]]:
    """Distinct organizations, from the daily per-organization rollups (a few
    documents per day, however many requests)."""
    return [
        {"$match": {"tier": "d", "cuboid": "o", "org": {"$type": "string"}}},
        {"$group": {"_id": "$org"}},
        {"$sort": {"_id": 1}},
    ]


def latest_rate_limits(segment: Segment, *, org: str | None = None) -> list[dict[str, Any]]:
    """The newest rate-limit snapshot per organization in a segment: `$max` of
    `rl.last` (snapshots compare by their first field, `at`)."""
    return [
        segment_match(segment, "o", None, org),
        {"$group": {"_id": "$org", "last": {"$max": "$rl.last"}}},
    ]


def totals(
    segment: Segment, *, model: str | None = None, org: str | None = None
) -> list[dict[str, Any]]:
    cuboid = cuboid_for(by_model=False, model=model, org=org)
    return [
        segment_match(segment, cuboid, model, org),
        {"$group": {"_id": None, **counter_sums()}},
    ]
