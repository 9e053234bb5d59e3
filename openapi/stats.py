"""Response schemas of the stats API (`/api/stats*`), named like the seed's.

Token totals and epoch-millisecond times pass 2^31 (a month of Claude Code
traffic does): every integer is `format: int64` unless openapi/integers.py lists
it as bounded (finish.py applies the rule to every component).
"""

from __future__ import annotations

from dataclasses import dataclass

from sanic_ext import openapi


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
    failovers: int  # hops from a failing provider to its fallback
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
    failovers: int


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
    total_failovers: int
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
    """The newest rate-limit state of an organization, as recorded (RateLimitInfo):
    a header value that did not parse as a number stays a string."""

    organizationId: str
    timestamp: str
    ts: int
    requestsLimit: int | str | None
    requestsRemaining: int | str | None
    tokensLimit: int | str | None
    tokensRemaining: int | str | None
    inputTokensRemaining: int | str | None
    outputTokensRemaining: int | str | None
    unifiedStatus: str | None
    unifiedUtilization5h: float | str | None
    unifiedUtilization7d: float | str | None


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
