"""The Overview's numbers from one read of per-model rollups and one of
per-organization rollups, and the series of the stats routes (pure).

The per-model (`m`) rollups of a `SignedPlan` whose breakpoints are the display
bucket boundaries plus the edges of the totals range answer everything the page
shows: the plan says into which interval between breakpoints each document
counts (once, or, for a fringe of a cumulative difference, plus once into one
interval and minus once into its neighbour), and every interval lies wholly
inside one display bucket and wholly inside or outside the totals range. So the
same documents give the series of every model (and their sum, the all-models
series), the per-model totals and the latency histograms. Only additive fields
are folded with signs; the per-organization (`o`) rollups of the totals range,
read by a plain `ReadPlan`, give the newest rate-limit snapshot per organization.

The rows are those the stats service's routes return for the same range
(`models`, `latency`, `rate_limits` "latest"); the series are bucket sums for
`stats.shapes.hourly_rows`/`daily_rows`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from stats import shapes as shape
from stats.cumulative import Weights
from stats.pipelines import STATUS_CLASSES
from stats.rollups import COUNTERS, bson_ms
from stats.tiling import ReadPlan

# The order of a sums vector: the `$group` output names of `counter_sums`.
KEYS: tuple[str, ...] = (*COUNTERS, *(f"status_{s}" for s in STATUS_CLASSES))
_WIDTH = len(KEYS)
_REQUESTS = KEYS.index("requests")
# Signed sums of float costs end a few ulps off zero: below this they are zero
# (the rows round costs to 9 decimals, and must never show -0.0).
_FLOAT_ZERO = 1e-9


class Weighed(Protocol):
    """What a fold needs of a plan: the intervals between its breakpoints and
    into which of them (with what sign) a rollup document counts
    (`stats.cumulative.SignedPlan`, `stats.zone_days.ZoneDayPlan`)."""

    @property
    def breakpoints(self) -> tuple[datetime, ...]: ...

    def weights(self, tier: str, start: datetime) -> Weights: ...


@dataclass(frozen=True, slots=True)
class Overview:
    boundaries: list[datetime]  # display buckets [boundaries[i], boundaries[i + 1])
    models: list[dict[str, Any]]  # as StatsService.models()["modelStats"]
    latency: list[dict[str, Any]]  # as StatsService.latency()["latency"]
    total: list[dict[str, float]]  # bucket sums over all models
    per_model: dict[str, list[dict[str, float]]]  # bucket sums, every model seen
    rate_limits: list[dict[str, Any]]  # as StatsService.rate_limits()["latest"]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _vector(document: dict[str, Any]) -> list[float]:
    status = document.get("status") or {}
    return [document.get(name) or 0 for name in COUNTERS] + [
        status.get(s) or 0 for s in STATUS_CLASSES
    ]


def _add(into: list[float], values: list[float], sign: int = 1) -> None:
    if sign == 1:
        into[:] = [a + b for a, b in zip(into, values, strict=True)]
    elif sign == -1:
        into[:] = [a - b for a, b in zip(into, values, strict=True)]
    else:
        into[:] = [a + sign * b for a, b in zip(into, values, strict=True)]


def _clean(value: float) -> float:
    """A sum as its row shows it. Exact rollups never sum below zero; a signed sum
    can only while a writer's bulk has reached some tiers and not others yet, and
    a count or a cost below zero is never right to show."""
    if isinstance(value, float):
        return value if value >= _FLOAT_ZERO else 0.0
    return value if value > 0 else 0


@dataclass(slots=True)
class _ModelTotals:
    sums: list[float]
    # Histogram bins keyed as stored (decimal strings), made numbers once in `row`.
    rt: dict[str, int]
    ttfb: dict[str, int]

    def add(self, values: list[float], document: dict[str, Any], sign: int) -> None:
        _add(self.sums, values, sign)
        for name, into in (("rtH", self.rt), ("ttfbH", self.ttfb)):
            for index, count in (document.get(name) or {}).items():
                into[index] = into.get(index, 0) + sign * count

    def row(self, model: str) -> dict[str, Any]:
        """Keyed like the `$group` outputs of `totals_by_model` and `latency_by_model`."""
        row: dict[str, Any] = {"_id": model, **_sums(self.sums)}
        for name, bins in (("rtH", self.rt), ("ttfbH", self.ttfb)):
            row.update({f"{name}_{i}": n for i, n in sorted(_numbered(bins)) if n > 0})
        return row


def _numbered(bins: dict[str, int]) -> list[tuple[int, int]]:
    merged: dict[int, int] = {}
    for index, count in bins.items():  # "7" and "07" would be one bin
        merged[int(index)] = merged.get(int(index), 0) + count
    return list(merged.items())


def fold_overview(
    documents: Iterable[dict[str, Any]],
    plan: Weighed,
    boundaries: list[datetime],
    totals: tuple[datetime, datetime],
    snapshots: Iterable[dict[str, Any]],
    snapshot_plan: ReadPlan,
) -> Overview:
    """`documents`: per-model rollups read by `plan` (its breakpoints include
    `boundaries` and the edges of `totals`, [low, high)); `snapshots`:
    per-organization rollups read by `snapshot_plan`. Documents a plan's reads
    returned beyond its terms are left out."""
    low, high = totals
    buckets = len(boundaries) - 1
    # Per interval of the plan: its display bucket (-1: none) and whether it is
    # inside the totals range.
    bucket_of = [bisect_right(boundaries, x) - 1 for x in plan.breakpoints[:-1]]
    bucket_of = [i if 0 <= i < buckets else -1 for i in bucket_of]
    in_totals = [low <= x < high for x in plan.breakpoints[:-1]]
    series: dict[str, list[list[float]]] = {}
    by_model: dict[str, _ModelTotals] = {}
    for document in documents:
        weights = plan.weights(document["tier"], document["t"])
        if not weights:
            continue
        model = document["model"]
        values = _vector(document)
        # A fringe added to one interval and taken from its neighbour, both in
        # the totals range, leaves the totals as they were: fold it there once, net.
        net = 0
        for interval, sign in weights:
            index = bucket_of[interval]
            if index >= 0:
                rows = series.get(model)
                if rows is None:
                    rows = series[model] = [[0] * _WIDTH for _ in range(buckets)]
                _add(rows[index], values, sign)
            if in_totals[interval]:
                net += sign
        if net:
            if model not in by_model:
                by_model[model] = _ModelTotals([0] * _WIDTH, {}, {})
            by_model[model].add(values, document, net)
    total = [[0] * _WIDTH for _ in range(buckets)]
    for rows in series.values():
        for into, values in zip(total, rows, strict=True):
            _add(into, values)
    # A model whose signed documents cancel out has no request in the range: as
    # with plain tiles, where none of its documents would have been read.
    present = {m: acc for m, acc in by_model.items() if acc.sums[_REQUESTS] > 0}
    model_rows = [shape.model_row(acc.row(m)) for m, acc in present.items()]
    model_rows.sort(key=lambda r: (-r["tokens"], r["model"]))
    latency = [shape.latency_row(acc.row(m)) for m, acc in sorted(present.items())]
    return Overview(
        boundaries=boundaries,
        models=model_rows,
        latency=latency,
        total=[_sums(v) for v in total],
        per_model={
            m: [_sums(v) for v in rows]
            for m, rows in series.items()
            if any(v[_REQUESTS] > 0 for v in rows)
        },
        rate_limits=newest_snapshots(snapshots, snapshot_plan),
    )


def fold_buckets(documents: Iterable[dict[str, Any]], plan: Weighed) -> list[dict[str, float]]:
    """Rollups read by `plan` summed into the intervals between its breakpoints
    (the display buckets of a series), keyed like `stats.shapes.empty_sums`."""
    sums = [[0] * _WIDTH for _ in plan.breakpoints[:-1]]
    for document in documents:
        weights = plan.weights(document["tier"], document["t"])
        if weights:
            values = _vector(document)
            for interval, sign in weights:
                _add(sums[interval], values, sign)
    return [_sums(v) for v in sums]


def _sums(values: list[float]) -> dict[str, float]:
    return {key: _clean(value) for key, value in zip(KEYS, values, strict=True)}


def newest_snapshots(documents: Iterable[dict[str, Any]], plan: ReadPlan) -> list[dict[str, Any]]:
    """The newest `rl.last` per organization among the per-organization rollups
    `plan` covers, as `shape.latest_row`s by organization (rollups without an
    organization hold no state: headroom is per organization)."""
    newest: dict[str, dict[str, Any]] = {}
    for document in documents:
        org = document.get("org")
        last = (document.get("rl") or {}).get("last")
        if org is None or not last or not plan.covers(document["tier"], document["t"]):
            continue
        old = newest.get(org)
        # Whole milliseconds, as BSON holds and `$max` compares them.
        if old is None or bson_ms(last["at"]) >= bson_ms(old["at"]):
            newest[org] = last
    return [shape.latest_row(org, newest[org]) for org in sorted(newest)]
