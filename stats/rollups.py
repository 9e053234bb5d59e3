"""Rollups: request documents folded into per-bucket counters (pure).

One rollup document per (tier, bucket start, cuboid, model, organization). The
cuboids are the groupings the stats serve, so an unfiltered 30-day hourly chart
reads 720 small documents however many requests were logged:

- `""`   everything           (time series, totals)
- `"m"`  per model            (model tables, model filter, latency)
- `"o"`  per organization     (org filter, rate limits, the organization list)
- `"mo"` per model and org    (model tables and latency under an org filter)

Counters are `$inc`'d, rate-limit headroom `$min`'d and utilization `$max`'d, so
applying the deltas of a batch is one unordered bulk of upserts, and applying
them in any order or grouping gives the same rollups. Status classes are
counters inside a document (`status.2xx` ...), not a dimension: that keeps the
documents per bucket few.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import UpdateOne

from stats.timebuckets import (
    TIERS,
    Tier,
    aware,
    epoch,
    local_hour,
    local_midnight,
    tier_start,
    zone_day_tier,
    zone_hour_tier,
    zone_tiers,
)

ROLLUPS = "rollups"
CUBOIDS: tuple[str, ...] = ("", "m", "o", "mo")
UNKNOWN_MODEL = "unknown"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)

# Latency histograms: bucket i holds values in [BASE**i, BASE**(i+1)) ms, bucket 0
# also everything below 1 ms. BASE = 2**(1/4): ~19 % wide buckets, 84 of them
# reach past 1800 s. Percentiles interpolate inside a bucket.
HIST_BASE = 2**0.25
HIST_BUCKETS = 85

# Rate-limit fields: (request-document field, rollup field, how buckets combine).
RATE_LIMIT_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("requestsRemaining", "requestsRemainingMin", "$min"),
    ("tokensRemaining", "tokensRemainingMin", "$min"),
    ("inputTokensRemaining", "inputTokensRemainingMin", "$min"),
    ("outputTokensRemaining", "outputTokensRemainingMin", "$min"),
    ("unifiedUtilization5h", "unifiedUtilization5hMax", "$max"),
    ("unifiedUtilization7d", "unifiedUtilization7dMax", "$max"),
)

# The newest rate-limit state per organization, kept whole (`rl.last`).
LATEST_FIELDS: tuple[str, ...] = (
    "requestsLimit",
    "requestsRemaining",
    "tokensLimit",
    "tokensRemaining",
    "inputTokensRemaining",
    "outputTokensRemaining",
    "unifiedStatus",
    "unifiedUtilization5h",
    "unifiedUtilization7d",
)

COUNTERS: tuple[str, ...] = (
    "requests",
    "errors",
    "input",
    "output",
    "cacheWrite",
    "cacheWrite5m",
    "cacheWrite1h",
    "cacheRead",
    "thinking",
    "tokens",
    "costUsd",
    "unpriced",
    "costIncomplete",
    "failovers",
    "rtSum",
    "rtCount",
    "ttfbSum",
    "ttfbCount",
)


def hist_index(ms: float) -> int:
    if ms < 1:
        return 0
    return min(HIST_BUCKETS - 1, int(math.log(ms, HIST_BASE)))


def hist_bounds(index: int) -> tuple[float, float]:
    low = 0.0 if index == 0 else HIST_BASE**index
    return low, HIST_BASE ** (index + 1)


def percentile(histogram: dict[int, int], q: float) -> float | None:
    """The q-quantile (0..1) of a histogram, interpolated within its bucket."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index in sorted(histogram):
        count = histogram[index]
        if count and seen + count >= rank:
            low, high = hist_bounds(index)
            return low + (high - low) * max(0.0, rank - seen) / count
        seen += count
    return hist_bounds(max(histogram))[1]


@dataclass(slots=True)
class Delta:
    """What one rollup document gains from some request documents."""

    key: dict[str, Any]
    inc: dict[str, float] = field(default_factory=dict)
    low: dict[str, Any] = field(default_factory=dict)
    high: dict[str, Any] = field(default_factory=dict)

    def merge(self, other: Delta) -> None:
        for name, value in other.inc.items():
            self.inc[name] = self.inc.get(name, 0) + value
        for name, value in other.low.items():
            self.low[name] = min(self.low.get(name, value), value)
        for name, value in other.high.items():
            old = self.high.get(name)
            self.high[name] = value if old is None else _greater(old, value)

    @property
    def id(self) -> str:
        return rollup_id(self.key)

    def change(self) -> dict[str, Any]:
        """The update operators adding this delta (the writer guards them per
        batch: stats.derived_writer)."""
        change: dict[str, Any] = {"$inc": dict(self.inc), "$setOnInsert": dict(self.key)}
        if self.low:
            change["$min"] = dict(self.low)
        if self.high:
            change["$max"] = dict(self.high)
        return change

    def update(self) -> UpdateOne:
        """The unguarded upsert: counts again each time it is written."""
        return UpdateOne({"_id": self.id}, self.change(), upsert=True)


def _greater(a: Any, b: Any) -> Any:
    """`$max` as MongoDB applies it: numbers by value, the `rl.last` snapshots
    (documents whose first field is `at`) field by field, `at` as BSON holds it
    (whole milliseconds). So a batch folded here and the same requests counted
    across many batches keep the same snapshot."""
    if isinstance(a, dict):
        try:
            return b if _snapshot_rank(b) >= _snapshot_rank(a) else a
        except TypeError:  # same millisecond, fields of different types
            return b
    return max(a, b)


def _snapshot_rank(snapshot: dict[str, Any]) -> tuple[int, list[tuple[str, Any]]]:
    return bson_ms(snapshot["at"]), [(k, v) for k, v in snapshot.items() if k != "at"]


def bson_ms(value: datetime) -> int:
    """A datetime as BSON stores and MongoDB compares it: whole milliseconds
    since the epoch (naive datetimes are UTC)."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return (aware - _EPOCH) // _MILLISECOND


def rollup_id(key: dict[str, Any]) -> str:
    return json.dumps(
        [key["tier"], epoch(key["t"]), key["cuboid"], key["model"], key["org"]],
        separators=(",", ":"),
    )


def status_class(status: object) -> str:
    return f"{status // 100}xx" if isinstance(status, int) and 100 <= status < 600 else "none"


def is_error(document: dict[str, Any]) -> bool:
    status = document.get("statusCode")
    return not isinstance(status, int) or status >= 400 or document.get("outcome") != "completed"


_MAX_COUNT = 2**63 - 1


def _count(value: object) -> int:
    # Documents store non-negative int counters BSON can hold; anything else (an
    # older or a hand-edited document) must not break an `$inc`.
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_COUNT:
        return value
    return 0


def thinking_tokens(usage: dict[str, Any]) -> int:
    """`output_tokens_details.thinking_tokens`: a part of `output`, never added to
    `tokens`."""
    details = usage.get("output_tokens_details")
    return _count(details.get("thinking_tokens")) if isinstance(details, dict) else 0


def _counters(document: dict[str, Any]) -> dict[str, float]:
    usage = document.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    creation = usage.get("cache_creation")
    creation = creation if isinstance(creation, dict) else {}
    cost = (document.get("cost") or {}).get("usd")
    inc: dict[str, float] = {
        "requests": 1,
        "errors": int(is_error(document)),
        "input": _count(usage.get("input_tokens")),
        "output": _count(usage.get("output_tokens")),
        "cacheWrite": _count(usage.get("cache_creation_input_tokens")),
        "cacheWrite5m": _count(creation.get("ephemeral_5m_input_tokens")),
        "cacheWrite1h": _count(creation.get("ephemeral_1h_input_tokens")),
        "cacheRead": _count(usage.get("cache_read_input_tokens")),
        "thinking": thinking_tokens(usage),
        "tokens": _count(document.get("tokens")),
        "costUsd": cost if isinstance(cost, int | float) and not isinstance(cost, bool) else 0.0,
        "unpriced": int(bool(document.get("unpriced"))),
        "costIncomplete": int(bool(document.get("costIncomplete"))),
        # Providers left for the next in the chain (one per hop, `recording.document`).
        "failovers": _count(document.get("failovers")),
        f"status.{status_class(document.get('statusCode'))}": 1,
    }
    for name, value in (
        ("rt", document.get("responseTime")),
        ("ttfb", document.get("timeToFirstByte")),
    ):
        if isinstance(value, int | float):
            inc[f"{name}Sum"] = value
            inc[f"{name}Count"] = 1
    return {k: v for k, v in inc.items() if v}


def _histograms(document: dict[str, Any]) -> dict[str, float]:
    inc: dict[str, float] = {}
    for name, value in (
        ("rtH", document.get("responseTime")),
        ("ttfbH", document.get("timeToFirstByte")),
    ):
        if isinstance(value, int | float):
            inc[f"{name}.{hist_index(value)}"] = 1
    return inc


def _rate_limits(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    info = (document.get("response") or {}).get("rateLimit") or {}
    low: dict[str, Any] = {}
    high: dict[str, Any] = {}
    for source, target, op in RATE_LIMIT_FIELDS:
        value = info.get(source)
        if isinstance(value, int | float) and not isinstance(value, bool):
            (low if op == "$min" else high)[f"rl.{target}"] = value
    snapshot = {name: info[name] for name in LATEST_FIELDS if info.get(name) is not None}
    if snapshot:
        # `at` first: MongoDB's $max compares documents field by field, so the
        # newest snapshot wins in updates and in `$group`.
        high["rl.last"] = {"at": document["timestamp"], **snapshot}
    return low, high


def _finest(document: dict[str, Any]) -> Delta:
    """The document as a minute-tier, per-model-and-organization delta."""
    low, high = _rate_limits(document)
    inc = _counters(document)
    inc.update(_histograms(document))
    key = {
        "tier": TIERS[0].name,
        "t": tier_start(document["timestamp"], TIERS[0]),
        "cuboid": "mo",
        "model": document.get("model") or UNKNOWN_MODEL,
        "org": document.get("organizationId"),
    }
    return Delta(key, inc, low, high)


def _coarsen(finest: Delta, tier: Tier, cuboid: str) -> Delta:
    return _bucket(finest, tier.name, tier_start(finest.key["t"], tier), cuboid)


def _bucket(finest: Delta, tier: str, start: datetime, cuboid: str) -> Delta:
    key = {
        "tier": tier,
        "t": start,
        "cuboid": cuboid,
        "model": finest.key["model"] if "m" in cuboid else None,
        "org": finest.key["org"] if "o" in cuboid else None,
    }
    if "m" in cuboid:  # latency is read per model only
        inc = dict(finest.inc)
    else:
        inc = {k: v for k, v in finest.inc.items() if not k.startswith(("rtH.", "ttfbH."))}
    if "o" in cuboid:  # headroom is per organization
        return Delta(key, inc, dict(finest.low), dict(finest.high))
    return Delta(key, inc)


def fold(documents: Iterable[dict[str, Any]], zones: Sequence[str] = ()) -> list[Delta]:
    """The merged deltas of many request documents, one per rollup document they
    count into. Requests are merged at the finest grain first, so a batch costs
    one small dict per request plus one per rollup document touched. `zones`
    (`STATS_ZONES`) add the local-day and local-hour tiers of each zone, every
    cuboid."""
    finest: dict[str, Delta] = {}
    for document in documents:
        merge_into(finest, [_finest(document)])
    merged: dict[str, Delta] = {}
    local = [(zone_day_tier(z), zone_hour_tier(z), ZoneInfo(z)) for z in zones]
    for delta in finest.values():
        merge_into(merged, [_coarsen(delta, tier, cuboid) for tier in TIERS for cuboid in CUBOIDS])
        for day, hour, tz in local:
            at = aware(delta.key["t"])
            start, hour_start = local_midnight(at, tz), local_hour(at, tz)
            merge_into(merged, [_bucket(delta, day, start, cuboid) for cuboid in CUBOIDS])
            merge_into(merged, [_bucket(delta, hour, hour_start, cuboid) for cuboid in CUBOIDS])
    return list(merged.values())


def fold_zones(documents: Iterable[dict[str, Any]], zones: Sequence[str]) -> list[Delta]:
    """Only the local-day and local-hour deltas of `zones` (a backfill of a newly
    listed zone)."""
    local = {tier for z in zones for tier in zone_tiers(z)}
    return [d for d in fold(documents, zones) if d.key["tier"] in local]


def merge_into(pending: dict[str, Delta], deltas: Iterable[Delta]) -> None:
    for delta in deltas:
        key = rollup_id(delta.key)
        if key in pending:
            pending[key].merge(delta)
        else:
            pending[key] = delta
