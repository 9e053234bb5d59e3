"""Rollup sums → the rows the stats API returns (pure).

Every row carries the token split, cost, requests and errors; time rows also
carry `ts` (bucket start, epoch ms) for Grafana's Infinity data source.
`thinking_tokens` is the part of `output_tokens` spent thinking
(`usage.output_tokens_details.thinking_tokens`), never added to `tokens`.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from stats.pipelines import STATUS_CLASSES
from stats.rollups import COUNTERS, HIST_BUCKETS, LATEST_FIELDS, percentile


def empty_sums() -> dict[str, float]:
    sums = dict.fromkeys(COUNTERS, 0)
    sums.update({f"status_{s}": 0 for s in STATUS_CLASSES})
    return sums


def add(into: dict[str, float], row: dict[str, Any]) -> None:
    for name in into:
        into[name] += row.get(name) or 0


def split(sums: dict[str, Any]) -> dict[str, Any]:
    return {
        "tokens": int(sums.get("tokens") or 0),
        "input_tokens": int(sums.get("input") or 0),
        "output_tokens": int(sums.get("output") or 0),
        "cache_creation_tokens": int(sums.get("cacheWrite") or 0),
        "cache_creation_5m_tokens": int(sums.get("cacheWrite5m") or 0),
        "cache_creation_1h_tokens": int(sums.get("cacheWrite1h") or 0),
        "cache_read_tokens": int(sums.get("cacheRead") or 0),
        "thinking_tokens": int(sums.get("thinking") or 0),
        "cost_usd": round(float(sums.get("costUsd") or 0), 9),
        "unpriced_requests": int(sums.get("unpriced") or 0),
        "cost_incomplete_requests": int(sums.get("costIncomplete") or 0),
        "failovers": int(sums.get("failovers") or 0),
        "requests": int(sums.get("requests") or 0),
        "errors": int(sums.get("errors") or 0),
        **{f"status_{s}": int(sums.get(f"status_{s}") or 0) for s in STATUS_CLASSES},
    }


def ts(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def series_row(document: dict[str, Any]) -> dict[str, Any]:
    """A rollup document as a row of sums keyed like the `$group` outputs."""
    row: dict[str, Any] = {name: document.get(name) for name in COUNTERS}
    status = document.get("status") or {}
    row.update({f"status_{s}": status.get(s) for s in STATUS_CLASSES})
    row["_id"] = document["t"]
    return row


def fold_series(rows: list[dict[str, Any]], boundaries: list[datetime]) -> list[dict[str, float]]:
    """Rollup rows (`_id` = rollup bucket start) summed into the display buckets
    [boundaries[i], boundaries[i+1]); buckets without data are zeros."""
    buckets = [empty_sums() for _ in boundaries[:-1]]
    for row in rows:
        index = bisect_right(boundaries, _aware(row["_id"])) - 1
        if 0 <= index < len(buckets):
            add(buckets[index], row)
    return buckets


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def daily_rows(
    buckets: list[dict[str, float]], boundaries: list[datetime], tz: ZoneInfo
) -> list[dict[str, Any]]:
    return [
        {"date": start.astimezone(tz).date().isoformat(), "ts": ts(start), **split(sums)}
        for start, sums in zip(boundaries, buckets, strict=False)
    ]


def hourly_rows(
    buckets: list[dict[str, float]], boundaries: list[datetime], tz: ZoneInfo
) -> list[dict[str, Any]]:
    rows = []
    for start, sums in zip(boundaries, buckets, strict=False):
        local = start.astimezone(tz)
        rows.append(
            {
                "hour": local.hour,
                "label": local.strftime("%Y-%m-%d %H:%M"),
                "ts": ts(start),
                **split(sums),
            }
        )
    return rows


def model_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"model": row["_id"], **split(row)}


def seed_model_entry(row: dict[str, Any]) -> dict[str, Any]:
    """The seed's `requests_by_model` value, plus the split and cost."""
    fields = split(row)
    return {
        "request_count": fields["requests"],
        "input_tokens": fields["input_tokens"],
        "output_tokens": fields["output_tokens"],
        "cache_tokens": fields["cache_creation_tokens"] + fields["cache_read_tokens"],
        "cache_creation_tokens": fields["cache_creation_tokens"],
        "cache_read_tokens": fields["cache_read_tokens"],
        "thinking_tokens": fields["thinking_tokens"],
        "tokens": fields["tokens"],
        "cost_usd": fields["cost_usd"],
        "cost_incomplete_requests": fields["cost_incomplete_requests"],
        "errors": fields["errors"],
        "failovers": fields["failovers"],
    }


# Request counts beside the cost, named as in every other row (not `total_…`).
_REQUEST_COUNTS = ("unpriced_requests", "cost_incomplete_requests")


def usage_totals(sums: dict[str, Any]) -> dict[str, Any]:
    """The seed's `UsageStats` totals: each per-model token and cost field as
    `total_<field>`, and the unpriced and incomplete-cost request counts."""
    entry = seed_model_entry(sums)
    totals = {
        f"total_{k}": v
        for k, v in entry.items()
        if k != "request_count" and k not in _REQUEST_COUNTS
    }
    fields = split(sums)
    return {
        "total_requests": entry["request_count"],
        **totals,
        **{name: fields[name] for name in _REQUEST_COUNTS},
    }


def _histogram(row: dict[str, Any], name: str) -> dict[int, int]:
    return {
        i: int(row.get(f"{name}_{i}") or 0) for i in range(HIST_BUCKETS) if row.get(f"{name}_{i}")
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def latency_row(row: dict[str, Any]) -> dict[str, Any]:
    rt, ttfb = _histogram(row, "rtH"), _histogram(row, "ttfbH")
    rt_n, ttfb_n = row.get("rtCount") or 0, row.get("ttfbCount") or 0
    return {
        "model": row["_id"],
        "requests": int(row.get("requests") or 0),
        "avg_ms": _ms(row["rtSum"] / rt_n) if rt_n else None,
        "p50_ms": _ms(percentile(rt, 0.50)),
        "p95_ms": _ms(percentile(rt, 0.95)),
        "p99_ms": _ms(percentile(rt, 0.99)),
        "ttfb_avg_ms": _ms(row["ttfbSum"] / ttfb_n) if ttfb_n else None,
        "ttfb_p50_ms": _ms(percentile(ttfb, 0.50)),
        "ttfb_p95_ms": _ms(percentile(ttfb, 0.95)),
        "ttfb_p99_ms": _ms(percentile(ttfb, 0.99)),
    }


def latest_row(org: str | None, snapshot: dict[str, Any]) -> dict[str, Any]:
    """An organization's newest rate-limit snapshot (`rl.last`) as the API shows it."""
    at = _aware(snapshot["at"])
    row: dict[str, Any] = {"organizationId": org, "timestamp": iso(at), "ts": ts(at)}
    row.update({name: snapshot.get(name) for name in LATEST_FIELDS})
    return row


def merge_rows(results: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows of several segment pipelines, grouped by `_id`: numbers summed,
    rate-limit snapshots (`last`) the newest."""
    merged: dict[Any, dict[str, Any]] = {}
    for rows in results:
        for row in rows:
            into = merged.setdefault(row["_id"], {"_id": row["_id"]})
            for name, value in row.items():
                if name == "_id" or value is None:
                    continue
                old = into.get(name)
                if isinstance(value, dict):
                    newer = old is None or _aware(value["at"]) >= _aware(old["at"])
                    into[name] = value if newer else old
                else:
                    into[name] = value if old is None else old + value
    return list(merged.values())
