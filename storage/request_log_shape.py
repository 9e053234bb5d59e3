"""A logged request as the dashboard API answers it (pure): the seed's `RequestLog`
for `GET /api/requests` items and `GET /api/requests/{id}`, its `RequestSummary`
for `GET /api/requests/summary` items.

The stored document (recording/document.py) keeps `statusCode`, `responseTime`,
`timeToFirstByte` and `isStreaming` both at the top level and, as relayed, under
`response`. Every field sits in an answer where it sits in the document, so a list
item is the detail without the bodies, the headers, `rateLimit.raw` and the
conversation. Every field the seed names is always there, null when unknown: a
record written before the field existed, or a minimal one (`recordError`) built
when the full document could not be.

Input rows are JSON-ready (storage/requests_repo.py `_public`).
"""

from __future__ import annotations

from typing import Any

# The seed's `RequestLog` without `response`, in the seed's order.
SEED_REQUEST_FIELDS: tuple[str, ...] = (
    "requestId",
    "timestamp",
    "method",
    "endpoint",
    "model",
    "originalModel",
    "routedModel",
    "userAgent",
    "contentType",
    "conversationHash",
    "messageCount",
    "organizationId",
)
# The seed's `ResponseLog`.
SEED_RESPONSE_FIELDS: tuple[str, ...] = (
    "statusCode",
    "responseTime",
    "isStreaming",
    "completedAt",
    "streamError",
    "rateLimit",
)
# The seed's `RateLimitInfo`: what a list item's `response.rateLimit` carries (the
# detail has every parsed key and the raw headers).
SEED_RATE_LIMIT_FIELDS: tuple[str, ...] = (
    "organizationId",
    "requestsLimit",
    "requestsRemaining",
    "requestsReset",
    "tokensLimit",
    "tokensRemaining",
    "tokensReset",
    "unifiedStatus",
    "unifiedUtilization5h",
    "unifiedReset5h",
    "unifiedUtilization7d",
    "unifiedReset7d",
)
# The seed's `RequestSummary`.
SEED_SUMMARY_FIELDS: tuple[str, ...] = (
    "requestId",
    "timestamp",
    "method",
    "endpoint",
    "model",
    "originalModel",
    "routedModel",
    "statusCode",
    "responseTime",
    "usage",
    "conversationHash",
    "messageCount",
    "stopReason",
)
# Ours beside the seed's in a summary item (openapi/requests.py `RequestSummary`).
SUMMARY_EXTRAS: tuple[str, ...] = (
    "servedModel",
    "timeToFirstByte",
    "tokens",
    "cost",
    "unpriced",
    "costIncomplete",
    "sessionId",
    "organizationId",
    "isStreaming",
    "outcome",
)
# Ours beside the seed's at the top of a list item: the summary's, and why a
# record is incomplete or failed.
LIST_EXTRAS: tuple[str, ...] = (
    *(f for f in SEED_SUMMARY_FIELDS + SUMMARY_EXTRAS if f not in SEED_REQUEST_FIELDS),
    "errorReason",
    "recordError",
)
# Ours beside the seed's in a list item's `response`.
RESPONSE_EXTRAS: tuple[str, ...] = ("timeToFirstByte", "streamComplete", "retryAfter")
# Written at both levels with the same value: an old or minimal record missing one
# takes the other.
_MIRRORED = ("statusCode", "responseTime", "timeToFirstByte")


def list_item(document: dict[str, Any]) -> dict[str, Any]:
    """One `GET /api/requests` item: the seed's `RequestLog` with a nested `response`
    (the seed's `ResponseLog`), plus LIST_EXTRAS; no bodies or headers."""
    response = _response(document)
    item = _pick(document, SEED_REQUEST_FIELDS + LIST_EXTRAS)
    _mirror(item, response)
    shaped = _pick(response, SEED_RESPONSE_FIELDS + RESPONSE_EXTRAS)
    shaped["rateLimit"] = _rate_limit(response.get("rateLimit"))
    item["response"] = shaped
    return item


def summary_item(document: dict[str, Any]) -> dict[str, Any]:
    """One `GET /api/requests/summary` item: the seed's flat `RequestSummary`, plus
    SUMMARY_EXTRAS."""
    item = _pick(document, SEED_SUMMARY_FIELDS + SUMMARY_EXTRAS)
    _mirror(item, _response(document))
    return item


def detail(document: dict[str, Any]) -> dict[str, Any]:
    """`GET /api/requests/{id}`: the whole document, with every field a list item
    has there too (null when unknown), the seed's among them."""
    out = dict(document)
    response = _response(document)
    _mirror(out, response)
    for name in SEED_REQUEST_FIELDS + LIST_EXTRAS:
        out.setdefault(name, None)
    for name in SEED_RESPONSE_FIELDS + RESPONSE_EXTRAS:
        response.setdefault(name, None)
    if isinstance(response["rateLimit"], dict) and response["rateLimit"]:
        response["rateLimit"] = {
            **dict.fromkeys(SEED_RATE_LIMIT_FIELDS),
            **response["rateLimit"],
        }
    out["response"] = response
    return out


def _pick(source: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: source.get(name) for name in names}


def _response(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of the document's `response` (empty if it has none): shaping fills
    it in, and the caller's document stays as it was."""
    response = document.get("response")
    return dict(response) if isinstance(response, dict) else {}


def _mirror(top: dict[str, Any], response: dict[str, Any]) -> None:
    """Fill a mirrored field missing at one level from the other (both in place)."""
    for name in _MIRRORED:
        if top.get(name) is None and response.get(name) is not None:
            top[name] = response[name]
        elif response.get(name) is None and top.get(name) is not None:
            response[name] = top[name]


def _rate_limit(value: Any) -> dict[str, Any] | None:
    """The seed's keys of a parsed rate limit; null when none of them has a value,
    whether the read projected the other keys away or not (a response with only
    `retry-after`, or only keys the seed does not name)."""
    if not isinstance(value, dict) or all(value.get(k) is None for k in SEED_RATE_LIMIT_FIELDS):
        return None
    return _pick(value, SEED_RATE_LIMIT_FIELDS)
