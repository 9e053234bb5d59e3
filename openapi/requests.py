"""Response schemas of the request-log API (`/api/requests*`), named like the seed's
(`RequestLog`, `ResponseLog`, `RateLimitInfo`, `RequestSummary`), with the fields
the proxy records on top of the seed's."""

from __future__ import annotations

from dataclasses import dataclass
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
    """Parsed `anthropic-ratelimit-*` headers; every such header is also kept in `raw`.
    Reset times are ISO 8601 strings; a value that did not parse stays a string."""

    organizationId: str | None = None
    requestsLimit: int | None = None
    requestsRemaining: int | None = None
    requestsReset: str | None = None
    tokensLimit: int | None = None
    tokensRemaining: int | None = None
    tokensReset: str | None = None
    inputTokensLimit: int | None = None
    inputTokensRemaining: int | None = None
    inputTokensReset: str | None = None
    outputTokensLimit: int | None = None
    outputTokensRemaining: int | None = None
    outputTokensReset: str | None = None
    unifiedStatus: str | None = None
    unifiedReset: str | None = None
    unifiedUtilization5h: float | None = None
    unifiedReset5h: str | None = None
    unifiedUtilization7d: float | None = None
    unifiedReset7d: str | None = None
    retryAfter: int | None = None
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
    statusCode: int | None
    headers: list[list[str]]
    body: Any
    bodyEncoding: str | None
    isStreaming: bool | None
    responseTime: int | None  # ms
    timeToFirstByte: int | None  # ms
    completedAt: str | None
    streamComplete: bool | None = None
    streamError: str | None = None
    streamErrorBody: dict[str, Any] | None = None
    rateLimit: RateLimitInfo | None = None
    retryAfter: int | None = None
    observerError: str | None = None


@openapi.component
@dataclass
class RequestSummary:
    """A logged request without bodies or headers (list views)."""

    requestId: str
    timestamp: str
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
    """One logged exchange, complete."""

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
    request: RequestPart | None = None
    response: ResponseLog | None = None
    conversation: dict[str, Any] | None = None
    batch: dict[str, Any] | None = None  # a Message Batches results download, priced per line


@openapi.component
@dataclass
class RequestList:
    requests: list[RequestSummary]
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
    latestDate: str | None


@openapi.component
@dataclass
class RequestsCleared:
    message: str
    deleted: int
