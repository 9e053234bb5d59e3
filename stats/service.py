"""The stats the dashboard and Grafana read: pipelines on the rollups, shaped rows."""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pymongo.asynchronous.database import AsyncDatabase

from stats import pipelines as p
from stats import shapes as shape
from stats.rollups import LATEST_FIELDS, RATE_LIMIT_FIELDS, ROLLUPS
from stats.timebuckets import (
    Segment,
    bucket_starts,
    decompose,
    finest_common_tier,
    local_midnight,
)

# /api/stats without a start date: everything (the daily tier makes it cheap).
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)


class StatsService:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self._rollups = db[ROLLUPS]

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
        tier = finest_common_tier(boundaries)
        documents = await self._run(
            p.series(tier, boundaries[0], boundaries[-1], model=model, org=org)
        )
        rows = [shape.series_row(d) for d in documents]
        return boundaries, shape.fold_series(rows, boundaries)

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
            _latest_row(row["_id"], row["last"])
            for row in sorted(snapshots, key=lambda r: r["_id"] or "")
            if row.get("last") and row["_id"] is not None  # state is per organization
        ]
        return {"latest": latest, "buckets": _rate_limit_buckets(rows, boundaries, tz)}


def _latest_row(org: str | None, snapshot: dict[str, Any]) -> dict[str, Any]:
    at = snapshot["at"]
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    row: dict[str, Any] = {"organizationId": org, "timestamp": shape.iso(at), "ts": shape.ts(at)}
    row.update({name: snapshot.get(name) for name in LATEST_FIELDS})
    return row


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
