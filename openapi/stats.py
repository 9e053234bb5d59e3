"""Response schemas of the stats API (`/api/stats*`), named like the seed's.

Token totals and epoch-millisecond times pass 2^31 (a month of Claude Code
traffic does): they are declared `format: int64`, not sanic-ext's default int32.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sanic_ext import openapi
from sanic_ext.extensions.openapi.builders import SpecificationBuilder


@dataclass
class TokenSplit:
    tokens: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_creation_5m_tokens: int
    cache_creation_1h_tokens: int
    cache_read_tokens: int
    thinking_tokens: int  # part of output_tokens, not added to tokens
    cost_usd: float
    unpriced_requests: int
    cost_incomplete_requests: int  # priced, but the cost is a lower bound
    requests: int
    errors: int
    status_1xx: int
    status_2xx: int
    status_3xx: int
    status_4xx: int
    status_5xx: int
    status_none: int


@openapi.component
@dataclass
class ModelUsage:
    request_count: int
    input_tokens: int
    output_tokens: int
    cache_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    thinking_tokens: int
    tokens: int
    cost_usd: float
    cost_incomplete_requests: int
    errors: int


@openapi.component
@dataclass
class ModelUsageRow(ModelUsage):
    model: str


@openapi.component
@dataclass
class UsageStats:
    total_requests: int
    total_input_tokens: int
    total_output_tokens: int
    total_cache_tokens: int
    total_cache_creation_tokens: int
    total_cache_read_tokens: int
    total_thinking_tokens: int
    total_tokens: int
    total_cost_usd: float
    total_errors: int
    unpriced_requests: int
    cost_incomplete_requests: int
    requests_by_model: dict[str, ModelUsage]
    models: list[ModelUsageRow]
    start_date: str
    end_date: str


@openapi.component
@dataclass
class DailyStat(TokenSplit):
    date: str
    ts: int


@openapi.component
@dataclass
class DashboardStats:
    dailyStats: list[DailyStat]


@openapi.component
@dataclass
class HourlyStat(TokenSplit):
    hour: int
    label: str
    ts: int


@openapi.component
@dataclass
class HourlyStatsResponse:
    hourlyStats: list[HourlyStat]
    bucket: int
    todayTokens: int
    todayRequests: int
    avgResponseTime: int


@openapi.component
@dataclass
class ModelStat(TokenSplit):
    model: str


@openapi.component
@dataclass
class ModelStatsResponse:
    modelStats: list[ModelStat]


@openapi.component
@dataclass
class OrganizationsResponse:
    organizations: list[str]


@openapi.component
@dataclass
class LatencyStat:
    model: str
    requests: int
    avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    ttfb_avg_ms: float | None
    ttfb_p50_ms: float | None
    ttfb_p95_ms: float | None
    ttfb_p99_ms: float | None


@openapi.component
@dataclass
class LatencyStatsResponse:
    latency: list[LatencyStat]


@openapi.component
@dataclass
class RateLimitLatest:
    organizationId: str
    timestamp: str
    ts: int
    requestsLimit: int | None
    requestsRemaining: int | None
    tokensLimit: int | None
    tokensRemaining: int | None
    inputTokensRemaining: int | None
    outputTokensRemaining: int | None
    unifiedStatus: str | None
    unifiedUtilization5h: float | None
    unifiedUtilization7d: float | None


@openapi.component
@dataclass
class RateLimitBucket:
    organizationId: str | None
    ts: int
    label: str
    requestsRemainingMin: int | None
    tokensRemainingMin: int | None
    inputTokensRemainingMin: int | None
    outputTokensRemainingMin: int | None
    unifiedUtilization5hMax: float | None
    unifiedUtilization7dMax: float | None


@openapi.component
@dataclass
class RateLimitStatsResponse:
    latest: list[RateLimitLatest]
    buckets: list[RateLimitBucket]


# Integer fields that can pass 2^31: token totals and epoch milliseconds.
_INT64_SUFFIXES = ("tokens", "Tokens")
_INT64_NAMES = frozenset({"ts"})


def int64_fields(cls: type) -> list[str]:
    hints = {f.name: f.type for f in fields(cls)}
    return [
        name
        for name, hint in hints.items()
        if hint in ("int", int) and (name.endswith(_INT64_SUFFIXES) or name in _INT64_NAMES)
    ]


def _widen_to_int64() -> None:
    """sanic-ext types every `int` int32 and ignores a field's own `format`; the
    registered component schemas are corrected in place (the same objects every
    spec route serialises)."""
    schemas: dict[str, Any] = SpecificationBuilder()._components["schemas"]
    for cls in (
        UsageStats,
        ModelUsage,
        ModelUsageRow,
        DailyStat,
        HourlyStat,
        ModelStat,
        HourlyStatsResponse,
        RateLimitLatest,
        RateLimitBucket,
    ):
        schema = schemas.get(cls.__name__)
        if schema is None:
            continue
        properties = getattr(schema, "_fields", schema).get("properties", {})
        for name in int64_fields(cls):
            prop = properties.get(name)
            values = getattr(prop, "_fields", prop)
            if isinstance(values, dict) and values.get("type") == "integer":
                values["format"] = "int64"


_widen_to_int64()
