"""The Overview page: totals, charts per bucket and model, latency percentiles
and rate-limit headroom for a time range, all from the stats service.

Everything comes from the rollups through `StatsService.overview` (never a scan
of request documents): one read of the per-model rollups that make up the display
buckets and the range (whole rollup buckets, or differences of cumulative sums
where they read less: stats/cumulative.py), folded into every model's series,
totals and latency, and
one of the per-organization rollups of the range for the newest rate-limit state
(stats/overview_fold.py). The work is bounded by the range's limits
(dashboard/timerange.py): at most 169 hourly or 367 daily buckets per model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import PyMongoError
from sanic import Request
from sanic.response import HTTPResponse

from dashboard import formatting as fmt
from dashboard.charts import OTHER_CLASS, PALETTE, BarChart, Gauge, Series, gauge, stacked_bars
from dashboard.render import render
from dashboard.timerange import BUCKETS, PRESETS, RangeError, TimeRange, parse_range
from stats import shapes as shape
from stats.service import StatsService

# Models drawn as their own series; the rest is summed into "other models".
TOP_MODELS = len(PALETTE) - 1
OTHER = "other models"

# (row field, chart title, value format) of the charts, in page order.
METRICS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("tokens", "Tokens", fmt.compact),
    ("cost_usd", "Cost", fmt.usd),
    ("requests", "Requests", fmt.compact),
    ("errors", "Errors", fmt.compact),
)
_SUMMED = (
    "tokens",
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_creation_5m_tokens",
    "cache_creation_1h_tokens",
    "cache_read_tokens",
    "cost_usd",
    "unpriced_requests",
    "requests",
    "errors",
    "status_4xx",
    "status_5xx",
    "status_none",
)


@dataclass(frozen=True, slots=True)
class Chart:
    key: str
    title: str
    chart: BarChart


@dataclass(frozen=True, slots=True)
class RateLimitRow:
    organization: str
    at: datetime
    status: str | None
    five_hour: Gauge | None
    seven_day: Gauge | None
    requests_remaining: int | None
    requests_limit: int | None
    tokens_remaining: int | None
    tokens_limit: int | None
    input_tokens_remaining: int | None
    output_tokens_remaining: int | None


def totals_of(rows: list[dict[str, Any]]) -> dict[str, float]:
    totals: dict[str, float] = dict.fromkeys(_SUMMED, 0)
    for row in rows:
        for name in _SUMMED:
            totals[name] += row.get(name) or 0
    return totals


def cache_hit_ratio(totals: dict[str, float]) -> float | None:
    """Share of prompt tokens read from the cache (input, cache writes and cache
    reads together make up the prompt)."""
    prompt = totals["input_tokens"] + totals["cache_creation_tokens"] + totals["cache_read_tokens"]
    return totals["cache_read_tokens"] / prompt if prompt else None


# Axis label spacing, in buckets: hours that divide a day (so midnight, shown as
# the date, always gets a label), days that make weeks or months.
_HOUR_STRIDES = (1, 2, 3, 4, 6, 12, 24)
_DAY_STRIDES = (1, 2, 7, 14, 28, 56)
MOST_X_LABELS = 8


def bucket_labels(
    rows: list[dict[str, Any]], rng: TimeRange
) -> tuple[list[str], list[str], list[int]]:
    """(tooltip labels, axis labels, indices that get an axis label) of the
    buckets, in the range's zone."""
    tz = rng.tz
    locals_ = [datetime.fromtimestamp(row["ts"] / 1000, UTC).astimezone(tz) for row in rows]
    if rng.bucket == "day":
        full = [t.strftime("%a %Y-%m-%d") for t in locals_]
        short = [t.strftime("%b %d") for t in locals_]
        stride = next((s for s in _DAY_STRIDES if len(rows) / s <= MOST_X_LABELS), 91)
        at = list(range(0, len(rows), stride))
    else:
        full = [t.strftime("%Y-%m-%d %H:%M") for t in locals_]
        short = [t.strftime("%b %d" if t.hour == 0 else "%H:%M") for t in locals_]
        stride = next((s for s in _HOUR_STRIDES if len(rows) / s <= MOST_X_LABELS), 0)
        if stride:
            at = [i for i, t in enumerate(locals_) if t.minute == 0 and t.hour % stride == 0]
        else:  # more than eight days of hours: label midnights, every n-th
            days = math.ceil(len(rows) / 24 / MOST_X_LABELS)
            midnights = [i for i, t in enumerate(locals_) if t.hour == 0 and t.minute == 0]
            at = midnights[::days]
    return full, short, at


def build_charts(
    total: list[dict[str, Any]],
    per_model: dict[str, list[dict[str, Any]]],
    rng: TimeRange,
) -> list[Chart]:
    """One stacked bar chart per metric: a segment per top model, then the rest
    (the all-models series minus the top models) as "other models"."""
    full, short, at = bucket_labels(total, rng)
    charts = []
    for key, title, format_value in METRICS:
        series = []
        shown = [0.0] * len(total)
        for index, (model, rows) in enumerate(per_model.items()):
            values = [float(r.get(key) or 0) for r in rows][: len(total)]
            values += [0.0] * (len(total) - len(values))
            shown = [a + b for a, b in zip(shown, values, strict=True)]
            series.append(Series(model, values, PALETTE[index % len(PALETTE)]))
        # Costs are rounded per row: their differences (~1e-9 $) are no "other".
        rest = [float(r.get(key) or 0) - s for r, s in zip(total, shown, strict=True)]
        rest = [v if v > 1e-6 else 0.0 for v in rest]
        series.append(Series(OTHER, rest, OTHER_CLASS))
        chart = stacked_bars(full, series, format_value, short_labels=short, label_at=at)
        charts.append(Chart(key, title, chart))
    return charts


def rate_limit_rows(latest: list[dict[str, Any]]) -> list[RateLimitRow]:
    rows = []
    for row in latest:
        rows.append(
            RateLimitRow(
                organization=row["organizationId"],
                at=datetime.fromtimestamp(row["ts"] / 1000, UTC),
                status=row.get("unifiedStatus"),
                five_hour=gauge(row.get("unifiedUtilization5h")),
                seven_day=gauge(row.get("unifiedUtilization7d")),
                requests_remaining=row.get("requestsRemaining"),
                requests_limit=row.get("requestsLimit"),
                tokens_remaining=row.get("tokensRemaining"),
                tokens_limit=row.get("tokensLimit"),
                input_tokens_remaining=row.get("inputTokensRemaining"),
                output_tokens_remaining=row.get("outputTokensRemaining"),
            )
        )
    return rows


def _rows(
    buckets: list[dict[str, float]], rng: TimeRange, boundaries: list[datetime]
) -> list[dict[str, Any]]:
    """Bucket sums as the stats API's rows (`daily`'s for days, `hourly`'s for hours)."""
    if rng.bucket == "day":
        return shape.daily_rows(buckets, boundaries, rng.tz)
    return shape.hourly_rows(buckets, boundaries, rng.tz)


async def load_overview(stats: StatsService, rng: TimeRange) -> dict[str, Any]:
    """Everything the page shows, as plain data for the template."""
    view = await stats.overview(rng.start, rng.end, rng.minutes, rng.tz)
    model_rows: list[dict[str, Any]] = view.models
    totals = totals_of(model_rows)
    ever_requests = None
    if not totals["requests"]:
        # Only for an empty range: has anything ever been logged?
        ever = await stats.usage(None, None, None, None)
        ever_requests = int(ever.get("total_requests") or 0)
    top = [row["model"] for row in model_rows[:TOP_MODELS]]
    empty = [shape.empty_sums() for _ in view.boundaries[:-1]]
    per_model = {m: _rows(view.per_model.get(m, empty), rng, view.boundaries) for m in top}
    return {
        "totals": totals,
        "cache_hit_ratio": cache_hit_ratio(totals),
        "error_rate": totals["errors"] / totals["requests"] if totals["requests"] else None,
        "models": model_rows,
        "charts": build_charts(_rows(view.total, rng, view.boundaries), per_model, rng),
        "latency": view.latency,
        "rate_limits": rate_limit_rows(view.rate_limits),
        "ever_requests": ever_requests,
    }


def _fallback_range(args: dict[str, str], now: datetime) -> TimeRange:
    """The default range (in the URL's zone when that one is valid), for the
    controls of a page whose URL could not be used."""
    try:
        return parse_range({"tz": args.get("tz", "")}, now)
    except RangeError:
        return parse_range({}, now)


async def overview_page(request: Request) -> HTTPResponse:
    now = datetime.now(UTC)
    args = {name: request.args.get(name) or "" for name in request.args}
    context: dict[str, Any] = {"presets": list(PRESETS), "buckets": list(BUCKETS), "data": None}
    try:
        rng = parse_range(args, now)
    except RangeError as exc:
        return render(
            request,
            "overview.html",
            status=400,
            rng=_fallback_range(args, now),
            problem=str(exc),
            **context,
        )
    stats: StatsService | None = getattr(request.app.ctx, "stats", None)
    if stats is None:
        problem = "The request log is disabled (REQUEST_LOG=false) or its database is not open."
        return render(request, "overview.html", status=503, rng=rng, problem=problem, **context)
    try:
        context["data"] = await load_overview(stats, rng)
    except PyMongoError as exc:
        problem = f"The database did not answer: {type(exc).__name__}"
        return render(request, "overview.html", status=503, rng=rng, problem=problem, **context)
    return render(request, "overview.html", rng=rng, problem=None, **context)
