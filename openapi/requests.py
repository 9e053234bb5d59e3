"""Response schemas of the request-log API (`/api/requests*`), named like the seed's
(`RequestLog`, `ResponseLog`, `RateLimitInfo`, `RequestSummary`), with the fields
the proxy records on top of the seed's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sanic_ext import openapi

from openapi.components import AnthropicUsage


@openapi.component
@dataclass
class RequestCost:
    """USD at list price with the modifiers applied (batch, fast mode, US-only
    inference; a server-side fallback's attempts each at the model that served it).
    `incomplete`: a lower bound, `notes` say what could not be priced."""

    usd: float | None
    breakdown: dict[str, float] | None = None  # input, output, cacheWrite5m/1h, cacheRead
    pricedAs: str | None = None  # the price-table id used
    tier: str | None = None  # a prompt-size tier, e.g. "prompt<=100000"
    modifiers: dict[str, float] | None = None  # e.g. {"batch": 0.5, "inferenceGeo": 1.1}
    incomplete: bool | None = None
    notes: list[str] | None = None
    iterations: list[dict[str, Any]] | None = None  # per attempt: type, model, usd, ...


@openapi.component
@dataclass
class RateLimitInfo:
    """Parsed `anthropic-ratelimit-*` headers (storage/ratelimits.py emits exactly
    these keys); every such header is also kept in `raw`. Reset times are ISO 8601
    strings. A limit, remaining count or utilization that did not parse as a number
    stays the string the upstream sent. The `unified*` family is subscription
    traffic's: `status`, a 0..1 `utilization` and `reset` overall and per window
    (`5h`, `7d`, `7dOpus`, `7dSonnet`), the representative claim, the fallback, and
    the `overage-*` headers by their suffix."""

    organizationId: str | None = None
    requestsLimit: int | str | None = None
    requestsRemaining: int | str | None = None
    requestsReset: str | None = None
    tokensLimit: int | str | None = None
    tokensRemaining: int | str | None = None
    tokensReset: str | None = None
    inputTokensLimit: int | str | None = None
    inputTokensRemaining: int | str | None = None
    inputTokensReset: str | None = None
    outputTokensLimit: int | str | None = None
    outputTokensRemaining: int | str | None = None
    outputTokensReset: str | None = None
    unifiedStatus: str | None = None
    unifiedReset: str | None = None
    unifiedRepresentativeClaim: str | None = None
    unifiedFallback: str | None = None
    unifiedOverage: dict[str, str] | None = None
    unifiedStatus5h: str | None = None
    unifiedUtilization5h: float | str | None = None
    unifiedReset5h: str | None = None
    unifiedStatus7d: str | None = None
    unifiedUtilization7d: float | str | None = None
    unifiedReset7d: str | None = None
    unifiedStatus7dOpus: str | None = None
    unifiedUtilization7dOpus: float | str | None = None
    unifiedReset7dOpus: str | None = None
    unifiedStatus7dSonnet: str | None = None
    unifiedUtilization7dSonnet: float | str | None = None
    unifiedReset7dSonnet: str | None = None
    retryAfter: int | str | None = None  # seconds (the `retry-after` header)
    raw: dict[str, str] | None = None


@openapi.component
@dataclass
class RequestPart:
    """The request as received: headers as [name, value] pairs (secrets replaced by
    fingerprints), the body as JSON when it parses, else text or base64."""

    headers: list[list[str]]
    body: Any
    bodyEncoding: str | None
    bodyBytes: int


@openapi.component
@dataclass
class ResponseLog:
    """The response as relayed. Every field the seed names is there (null when
    unknown): a record the recorder could not build whole (see `recordError`) has
    little more than `statusCode`. In a `GET /api/requests` item: no `headers`,
    `body*` or `streamErrorBody`, and `rateLimit` holds only the seed's keys (null
    when none of them was sent)."""

    statusCode: int | None
    headers: list[list[str]] | None = None  # absent from list items
    body: Any = None
    bodyEncoding: str | None = None
    bodyBytes: int | None = None
    bodyClipped: bool | None = None
    isStreaming: bool | None = None
    responseTime: int | None = None  # ms
    timeToFirstByte: int | None = None  # ms
    completedAt: datetime | None = None
    streamComplete: bool | None = None
    streamError: str | None = None
    streamErrorBody: dict[str, Any] | None = None
    rateLimit: RateLimitInfo | None = None
    retryAfter: int | str | None = None  # rateLimit.retryAfter, repeated
    observerError: str | None = None


@openapi.component
@dataclass
class RequestSummary:
    """A `GET /api/requests/summary` item: the seed's flat `RequestSummary` (each of
    its fields there, null when unknown) and ours beside them; no bodies or headers."""

    requestId: str
    timestamp: datetime
    method: str
    endpoint: str
    model: str | None = None
    originalModel: str | None = None
    routedModel: str | None = None
    servedModel: str | None = None  # the response's `model` (after a server-side fallback)
    statusCode: int | None = None
    responseTime: int | None = None  # ms
    timeToFirstByte: int | None = None  # ms
    usage: AnthropicUsage | None = None
    tokens: int | None = None
    cost: RequestCost | None = None
    unpriced: bool | None = None
    costIncomplete: bool | None = None
    conversationHash: str | None = None
    sessionId: str | None = None
    organizationId: str | None = None
    messageCount: int | None = None
    stopReason: str | None = None
    isStreaming: bool | None = None
    outcome: str | None = None  # completed | upstream_error | client_closed | proxy_error


@openapi.component
@dataclass
class RequestLog(RequestSummary):
    """One logged exchange: the seed's `RequestLog` (each of its fields there, null
    when unknown) with the seed's `ResponseLog` nested as `response`, and ours
    beside them. `statusCode`, `responseTime`, `timeToFirstByte` and `isStreaming`
    are at both levels, as recorded: at the top what was asked and answered, under
    `response` what was relayed (`isStreaming`: an SSE answer). `GET /api/requests/{id}`
    answers it whole; a `GET /api/requests` item has no `request`, `conversation`,
    `batch` or `attempts`, and its `response` no headers or body."""

    schemaVersion: int | None = None
    query: str | None = None
    provider: str | None = None
    routeRule: str | None = None
    userAgent: str | None = None
    contentType: str | None = None
    demoted: bool | None = None
    clientKeyFingerprint: str | None = None
    upstreamRequestId: str | None = None
    errorReason: str | None = None
    recordError: str | None = None  # why only a minimal record was stored
    request: RequestPart | None = None
    response: ResponseLog | None = None
    conversation: dict[str, Any] | None = None
    batch: dict[str, Any] | None = None  # a Message Batches results download, priced per line
    providerFormat: str | None = None  # anthropic | openai: the provider that answered
    # Every upstream attempt: {provider, format, model, status, outcome, error, ms}.
    attempts: list[dict[str, Any]] | None = None
    failovers: int | None = None  # attempts that failed over to a fallback provider


@openapi.component
@dataclass
class RequestList:
    requests: list[RequestLog]  # without bodies and headers (see RequestLog)
    total: int
    page: int
    limit: int


@openapi.component
@dataclass
class RequestSummaryList:
    requests: list[RequestSummary]
    total: int
    offset: int
    limit: int


@openapi.component
@dataclass
class RequestDetail:
    request: RequestLog
    fullId: str


@openapi.component
@dataclass
class LatestDate:
    latestDate: datetime | None  # null while the log is empty


@openapi.component
@dataclass
class RequestsCleared:
    message: str
    deleted: int
