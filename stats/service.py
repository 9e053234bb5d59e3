"""The stats the dashboard and Grafana read: pipelines on the rollups, shaped rows."""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pymongo.asynchronous.database import AsyncDatabase

from stats import pipelines as p
from stats import shapes as shape
from stats import zone_days
from stats.cumulative import QUERY_DOCUMENTS, SignedPlan
from stats.overview_fold import Overview, fold_buckets, fold_overview
from stats.rollups import RATE_LIMIT_FIELDS, ROLLUPS
from stats.tiling import ReadPlan
from stats.timebuckets import (
    MINUTE,
    Segment,
    bucket_starts,
    ceil_to,
    decompose,
    finest_common_tier,
    floor_to,
    local_midnight,
)

logger = logging.getLogger("proxy.stats")

# /api/stats without a start date: everything (the daily tier makes it cheap).
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)

# What a query costs in rollup buckets when a bucket is one document per model:
# the benchmark's log, like most, has a few models (three).
PER_MODEL_QUERY_COST = QUERY_DOCUMENTS / 3


class StatsService:
    def __init__(
        self, db: AsyncDatabase[Any], *, signed: bool = True, zones: Sequence[str] = ()
    ) -> None:
        """`signed=False` reads every display bucket from its own rollups only
        (the plain tiling), never as a difference of cumulative sums. `zones`
        (`STATS_ZONES`): zones whose local days and hours have rollups of their own."""
        self._rollups = db[ROLLUPS]
        self._signed = signed
        self._zones = tuple(zones)

    def _plan(self, breakpoints: list[datetime], query_cost: float) -> SignedPlan:
        if self._signed:
            return SignedPlan.of(breakpoints, query_cost)
        return SignedPlan.plain(breakpoints)

    async def _run(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return await (await self._rollups.aggregate(pipeline)).to_list(None)

    async def _over(
        self,
        build: Callable[[Segment], list[dict[str, Any]]],
        start: datetime,
        end: datetime,
    ) -> list[dict[str, Any]]:
        """One pipeline per rollup tier the range spans, run together, merged."""
        results = await asyncio.gather(*(self._run(build(s)) for s in decompose(start, end)))
        return shape.merge_rows(list(results))

    async def _find(
        self, query: dict[str, Any], projection: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return await self._rollups.find(query, projection).to_list(None)

    async def _read(
        self, reads: Sequence[Segment], by_model: bool, model: str | None, org: str | None
    ) -> list[dict[str, Any]]:
        """The rollups of a plan's reads (its terms and the gaps its reads
        span), run together."""
        results = await asyncio.gather(
            *(
                self._find(
                    p.rollup_filter(r.tier, r.start, r.end, by_model=by_model, model=model, org=org)
                )
                for r in reads
            )
        )
        return [d for rows in results for d in rows]

    async def _series(
        self,
        start: datetime,
        end: datetime,
        minutes: int,
        tz: ZoneInfo,
        model: str | None,
        org: str | None,
    ) -> tuple[list[datetime], list[dict[str, float]]]:
        boundaries = bucket_starts(start, end, minutes, tz)
        local = zone_days.local_tier(self._zones, tz, minutes, boundaries)
        if local is not None:
            buckets = await self._zone_series(local, boundaries, model, org)
            if buckets is not None:
                return boundaries, buckets
        # Each display bucket from the coarsest rollups that tile it, or as a
        # difference of cumulative sums where that reads less: a Kolkata day is
        # a UTC day document and a fringe, not quarters and 23 hours.
        plan = self._plan(boundaries, QUERY_DOCUMENTS)
        documents = await self._read(plan.reads, False, model, org)
        return boundaries, fold_buckets(documents, plan)

    async def _zone_series(
        self, local: str, boundaries: list[datetime], model: str | None, org: str | None
    ) -> list[dict[str, float]] | None:
        """A daily (hourly) series in a zone of `STATS_ZONES` from its local rollups
        (`stats.zone_days`); None when they miss requests the UTC tiers count over
        the same span (their day documents and the fringes at the two ends)."""
        span = self._plan([boundaries[0], boundaries[-1]], QUERY_DOCUMENTS)
        days, counted = await asyncio.gather(
            self._find(
                zone_days.day_filter(local, boundaries, by_model=False, model=model, org=org)
            ),
            self._read(span.reads, False, model, org),
        )
        buckets = fold_buckets(days, zone_days.ZoneDayPlan.of(local, boundaries))
        shown = sum(bucket["requests"] for bucket in buckets)
        if not zone_days.complete(shown, fold_buckets(counted, span)[0]["requests"]):
            logger.info(
                "%s rollups miss requests of %s..%s: read from UTC",
                local,
                boundaries[0],
                boundaries[-1],
            )
            return None
        return buckets

    async def overview(
        self, start: datetime, end: datetime, minutes: int, tz: ZoneInfo
    ) -> Overview:
        """What the dashboard's Overview shows for [start, end) in buckets of
        `minutes` in `tz`: one read of the per-model rollups (series, totals and
        latency of every model) and one of the per-organization rollups of the
        range (the newest rate-limit state), each a few range queries run
        together, folded in Python (stats/overview_fold.py)."""
        boundaries = bucket_starts(start, end, minutes, tz)
        totals = (floor_to(start, MINUTE), ceil_to(end, MINUTE))
        # Headroom is the newest state in the range, which no zone changes and
        # no difference can give (it is a maximum): the range alone, plainly
        # tiled at the coarsest tiers (UTC days inside).
        limits = ReadPlan.of(totals)
        snapshots: list[dict[str, Any]] | None = None
        local = zone_days.local_tier(self._zones, tz, minutes, boundaries)
        if local is not None:
            view, snapshots = await self._zone_overview(local, boundaries, totals, limits)
            if view is not None:
                return view
        plan = self._plan(sorted({*boundaries, *totals}), PER_MODEL_QUERY_COST)
        if snapshots is None:
            documents, snapshots = await asyncio.gather(
                self._read(plan.reads, True, None, None), self._snapshots(limits)
            )
        else:
            documents = await self._read(plan.reads, True, None, None)
        return fold_overview(documents, plan, boundaries, totals, snapshots, limits)

    async def _zone_overview(
        self,
        day: str,
        boundaries: list[datetime],
        totals: tuple[datetime, datetime],
        limits: ReadPlan,
    ) -> tuple[Overview | None, list[dict[str, Any]]]:
        """The Overview's series from the local-day (-hour) rollups (`stats.zone_days`),
        its totals and latency from the UTC tiers; None when the local days miss
        requests the UTC tiers count over them. The snapshots either way."""
        edges = zone_days.utc_breakpoints(boundaries, totals)
        plan = self._plan(edges, PER_MODEL_QUERY_COST)
        days, documents, snapshots = await asyncio.gather(
            self._find(zone_days.day_filter(day, boundaries)),
            self._read(plan.reads, True, None, None),
            self._snapshots(limits),
        )
        # One bucket over all the days: the UTC count to hold the days against.
        utc = fold_overview(
            documents, plan, [boundaries[0], boundaries[-1]], totals, snapshots, limits
        )
        local = fold_overview(
            days, zone_days.ZoneDayPlan.of(day, boundaries), boundaries, totals, (), limits
        )
        shown = sum(bucket["requests"] for bucket in local.total)
        if not zone_days.complete(shown, utc.total[0]["requests"]):
            logger.info("%s rollups miss requests of %s..%s: read from UTC", day, *totals)
            return None, snapshots
        view = Overview(
            boundaries, utc.models, utc.latency, local.total, local.per_model, utc.rate_limits
        )
        return view, snapshots

    async def _snapshots(self, plan: ReadPlan) -> list[dict[str, Any]]:
        results = await asyncio.gather(
            *(self._find(p.snapshots(r), p.SNAPSHOT_PROJECTION) for r in plan.reads)
        )
        return [d for rows in results for d in rows]

    async def _totals(
        self, start: datetime, end: datetime, model: str | None, org: str | None
    ) -> dict[str, Any]:
        rows = await self._over(lambda s: p.totals(s, model=model, org=org), start, end)
        return shape.split(rows[0] if rows else {})

    # ---- the seed's routes ------------------------------------------------------
    async def usage(
        self, start: datetime | None, end: datetime | None, model: str | None, org: str | None
    ) -> dict[str, Any]:
        start = start or BEGINNING
        end = end or datetime.now(UTC)
        rows = await self._over(lambda s: p.totals_by_model(s, model=model, org=org), start, end)
        rows.sort(key=lambda r: (-r["tokens"], r["_id"]))
        total = shape.empty_sums()
        for row in rows:
            shape.add(total, row)
        by_model = {row["_id"]: shape.seed_model_entry(row) for row in rows}
        return {
            **shape.usage_totals(total),
            "requests_by_model": by_model,
            "models": [{"model": name, **entry} for name, entry in by_model.items()],
            "start_date": shape.iso(start),
            "end_date": shape.iso(end),
        }

    async def daily(
        self,
        start: datetime | None,
        end: datetime | None,
        tz: ZoneInfo,
        model: str | None,
        org: str | None,
    ) -> dict[str, Any]:
        end = end or datetime.now(UTC)
        start = start or local_midnight(end - timedelta(days=29), tz)
        boundaries, buckets = await self._series(start, end, 1440, tz, model, org)
        return {"dailyStats": shape.daily_rows(buckets, boundaries, tz)}

    async def hourly(
        self,
        start: datetime,
        end: datetime,
        minutes: int,
        tz: ZoneInfo,
        model: str | None,
        org: str | None,
    ) -> dict[str, Any]:
        boundaries, buckets = await self._series(start, end, minutes, tz, model, org)
        now = datetime.now(UTC)
        today = await self._totals(local_midnight(now, tz), now, model, org)
        rt_sum = sum(b["rtSum"] for b in buckets)
        rt_count = sum(b["rtCount"] for b in buckets)
        return {
            "hourlyStats": shape.hourly_rows(buckets, boundaries, tz),
            "bucket": minutes,
            "todayTokens": today["tokens"],
            "todayRequests": today["requests"],
            "avgResponseTime": round(rt_sum / rt_count) if rt_count else 0,
        }

    async def models(
        self, start: datetime, end: datetime, model: str | None, org: str | None
    ) -> dict[str, Any]:
        rows = await self._over(lambda s: p.totals_by_model(s, model=model, org=org), start, end)
        stats = [shape.model_row(row) for row in rows]
        stats.sort(key=lambda r: (-r["tokens"], r["model"]))
        return {"modelStats": stats}

    async def organizations(self) -> dict[str, Any]:
        rows = await self._run(p.organizations())
        return {"organizations": [row["_id"] for row in rows]}

    # ---- beyond the seed ----------------------------------------------------------
    async def latency(
        self, start: datetime, end: datetime, model: str | None, org: str | None
    ) -> dict[str, Any]:
        rows = await self._over(lambda s: p.latency_by_model(s, model=model, org=org), start, end)
        rows.sort(key=lambda r: r["_id"])
        return {"latency": [shape.latency_row(row) for row in rows if row.get("requests")]}

    async def rate_limits(
        self, start: datetime, end: datetime, minutes: int, tz: ZoneInfo, org: str | None
    ) -> dict[str, Any]:
        boundaries = bucket_starts(start, end, minutes, tz)
        tier = finest_common_tier(boundaries)
        rows = await self._run(p.rate_limit_series(tier, boundaries[0], boundaries[-1], org=org))
        snapshots = await self._over(lambda s: p.latest_rate_limits(s, org=org), start, end)
        latest = [
            shape.latest_row(row["_id"], row["last"])
            for row in sorted(snapshots, key=lambda r: r["_id"] or "")
            if row.get("last") and row["_id"] is not None  # state is per organization
        ]
        return {"latest": latest, "buckets": _rate_limit_buckets(rows, boundaries, tz)}


def _rate_limit_buckets(
    rows: list[dict[str, Any]], boundaries: list[datetime], tz: ZoneInfo
) -> list[dict[str, Any]]:
    """Per organization and display bucket: the lowest remaining and highest
    utilization seen. Buckets without traffic are left out (there is no headroom
    to report, and zero would read as exhausted)."""
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        t = row["_id"]["t"]
        t = t if t.tzinfo else t.replace(tzinfo=UTC)
        index = bisect_right(boundaries, t) - 1
        if not 0 <= index < len(boundaries) - 1:
            continue
        if row["_id"]["org"] is None:
            continue
        key = (row["_id"]["org"], index)
        into = merged.setdefault(key, {})
        for _, target, op in RATE_LIMIT_FIELDS:
            value = row.get(target)
            if value is None:
                continue
            old = into.get(target)
            into[target] = value if old is None else (min if op == "$min" else max)(old, value)
    out = []
    for (org, index), values in sorted(merged.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if not values:
            continue
        start = boundaries[index]
        out.append(
            {
                "organizationId": org,
                "ts": shape.ts(start),
                "label": start.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                **{target: values.get(target) for _, target, _ in RATE_LIMIT_FIELDS},
            }
        )
    return out
