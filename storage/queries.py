"""Request-log queries as data: filters, projections, sorts (pure, unit-testable)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# What `/api/requests` and `/api/requests/summary` items are built from
# (storage/request_log_shape.py): never the bodies or headers. Of the rate limit,
# only the seed's RateLimitInfo keys (never `raw`).
SUMMARY_PROJECTION: dict[str, int] = {
    "_id": 0,
    "requestId": 1,
    "timestamp": 1,
    "method": 1,
    "endpoint": 1,
    "model": 1,
    "originalModel": 1,
    "routedModel": 1,
    "servedModel": 1,
    "userAgent": 1,
    "contentType": 1,
    "statusCode": 1,
    "responseTime": 1,
    "timeToFirstByte": 1,
    "usage": 1,
    "tokens": 1,
    "cost": 1,
    "unpriced": 1,
    "costIncomplete": 1,
    "conversationHash": 1,
    "sessionId": 1,
    "organizationId": 1,
    "messageCount": 1,
    "stopReason": 1,
    "isStreaming": 1,
    "outcome": 1,
    "errorReason": 1,
    "recordError": 1,
    "response.statusCode": 1,
    "response.responseTime": 1,
    "response.timeToFirstByte": 1,
    "response.isStreaming": 1,
    "response.completedAt": 1,
    "response.streamComplete": 1,
    "response.streamError": 1,
    "response.retryAfter": 1,
    "response.rateLimit.organizationId": 1,
    "response.rateLimit.requestsLimit": 1,
    "response.rateLimit.requestsRemaining": 1,
    "response.rateLimit.requestsReset": 1,
    "response.rateLimit.tokensLimit": 1,
    "response.rateLimit.tokensRemaining": 1,
    "response.rateLimit.tokensReset": 1,
    "response.rateLimit.unifiedStatus": 1,
    "response.rateLimit.unifiedUtilization5h": 1,
    "response.rateLimit.unifiedReset5h": 1,
    "response.rateLimit.unifiedUtilization7d": 1,
    "response.rateLimit.unifiedReset7d": 1,
}

SHORT_ID = re.compile(r"^[0-9a-f]{4,32}$")


def time_filter(start: datetime | None, end: datetime | None) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if start is not None:
        bounds["$gte"] = start
    if end is not None:
        bounds["$lt"] = end
    return {"timestamp": bounds} if bounds else {}


def id_filter(request_id: str) -> dict[str, Any]:
    """Full id: exact match. Short id: an index-backed prefix range on requestId."""
    if len(request_id) == 32:
        return {"requestId": request_id}
    upper = request_id[:-1] + chr(ord(request_id[-1]) + 1)
    return {"requestId": {"$gte": request_id, "$lt": upper}}


# ---- bounds -------------------------------------------------------------------------
# Every list read has a ceiling. `/api/requests` takes at most MAX_LIST_LIMIT rows a
# page; `/api/requests/summary` at most MAX_SUMMARY_LIMIT (its `limit=0` used to
# mean the whole log; it now means this maximum, the largest limit it accepts).
MAX_LIST_LIMIT = 1_000
MAX_SUMMARY_LIMIT = 10_000
# The API's offset pages may read up to MAX_SUMMARY_LIMIT rows: more time than a
# dashboard page gets before it says how far back it looked.
API_BUDGET_SECONDS = 10.0


def capped_limit(limit: int, maximum: int) -> int:
    """`limit` within 1..`maximum`; 0 (or less) is the maximum, never everything."""
    return maximum if limit <= 0 else min(limit, maximum)


# ---- the dashboard's request list ---------------------------------------------------
# Status classes a list filters by; `error` is what the stats count as one: a
# status of 400 or more, or an exchange that did not complete.
STATUS_CLASSES: dict[str, tuple[int, int]] = {
    "2xx": (200, 300),
    "3xx": (300, 400),
    "4xx": (400, 500),
    "5xx": (500, 600),
}
STATUS_CHOICES = (*STATUS_CLASSES, "error")
OUTCOMES = ("completed", "upstream_error", "client_closed", "proxy_error")
STATUS_CODE = re.compile(r"^[1-5][0-9]{2}$")

# What a list row shows: never the bodies, the headers or the conversation arrays.
LIST_PROJECTION: dict[str, int] = {
    "_id": 0,
    "requestId": 1,
    "timestamp": 1,
    "endpoint": 1,
    "model": 1,
    "statusCode": 1,
    "responseTime": 1,
    "timeToFirstByte": 1,
    "tokens": 1,
    "cost.usd": 1,
    "unpriced": 1,
    "sessionId": 1,
    "organizationId": 1,
    "isStreaming": 1,
    "outcome": 1,
    "errorReason": 1,
    "stopReason": 1,
    "response.completedAt": 1,
}


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """What the request list is narrowed to. Every field is optional; `words` are
    already normalised (conversations.text.words_of) search words."""

    model: str | None = None
    status: str | None = None  # a key of STATUS_CLASSES, "error", or a code ("429")
    outcome: str | None = None
    streaming: bool | None = None
    organization: str | None = None
    session: str | None = None
    session_prefix: str | None = None
    words: tuple[str, ...] = ()
    project: str | None = None  # conversation.projectPath, compared as a value
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in the list's order (timestamp, then request id, both descending).
    Without an id it is a time boundary: everything at or after it was covered."""

    timestamp: datetime
    request_id: str | None = None


def from_epoch_ms(digits: str) -> datetime | None:
    """A cursor's epoch-millisecond digits as a UTC time; None when out of range."""
    try:
        return datetime.fromtimestamp(int(digits) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def status_filter(status: str) -> dict[str, Any]:
    if status in STATUS_CLASSES:
        low, high = STATUS_CLASSES[status]
        return {"statusCode": {"$gte": low, "$lt": high}}
    if status == "error":
        return {"$or": [{"statusCode": {"$gte": 400}}, {"outcome": {"$ne": "completed"}}]}
    if STATUS_CODE.match(status):
        return {"statusCode": int(status)}
    raise ValueError(f"unknown status filter {status!r}")


def prefix_range(prefix: str) -> dict[str, str]:
    """Strings starting with `prefix`, as an index range."""
    return {"$gte": prefix, "$lt": prefix[:-1] + chr(ord(prefix[-1]) + 1)}


# ---- the live tail --------------------------------------------------------------------
# Documents reach the log when their exchange is finished (a long stream long after
# it started), so the tail follows `response.completedAt` (index `completed_time`),
# never the start `timestamp`.
COMPLETED = "response.completedAt"


def tail_pipeline(since: datetime, limit: int) -> list[dict[str, Any]]:
    """Requests completed at or after `since`, oldest first."""
    return [
        {"$match": {COMPLETED: {"$gte": since}}},
        {"$sort": {COMPLETED: 1}},
        {"$limit": limit},
        {"$project": LIST_PROJECTION},
    ]


def matches(row: dict[str, Any], f: RequestFilter) -> bool:
    """`row` (a LIST_PROJECTION document) passes `f`'s field filters: the same
    conditions as `plan`, for rows the tail pushes. Words are not on a row: a
    filter with words matches nothing here (the tail is off during a search), nor
    one with a project (only the conversation search narrows to one)."""
    if f.words or f.project is not None:
        return False
    status = row.get("statusCode")
    checks = (
        (f.model, row.get("model")),
        (f.organization, row.get("organizationId")),
        (f.session, row.get("sessionId")),
        (f.outcome, row.get("outcome")),
    )
    if any(wanted is not None and wanted != value for wanted, value in checks):
        return False
    if f.session_prefix and not str(row.get("sessionId") or "").startswith(f.session_prefix):
        return False
    if f.streaming is not None and row.get("isStreaming") is not f.streaming:
        return False
    if f.status:
        if f.status in STATUS_CLASSES:
            low, high = STATUS_CLASSES[f.status]
            if not (isinstance(status, int) and low <= status < high):
                return False
        elif f.status == "error":
            failed = isinstance(status, int) and status >= 400
            if not (failed or row.get("outcome") != "completed"):
                return False
        elif status != int(f.status):
            return False
    when = row.get("timestamp")
    if f.start is not None and (when is None or when < f.start):
        return False
    return not (f.end is not None and (when is None or when >= f.end))
