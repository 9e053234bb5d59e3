"""Request-log queries as data: filters, projections, sorts (pure, unit-testable)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

# What a list view needs: never the bodies or headers.
SUMMARY_PROJECTION: dict[str, int] = {
    "_id": 0,
    "requestId": 1,
    "timestamp": 1,
    "method": 1,
    "endpoint": 1,
    "model": 1,
    "originalModel": 1,
    "routedModel": 1,
    "statusCode": 1,
    "responseTime": 1,
    "timeToFirstByte": 1,
    "usage": 1,
    "tokens": 1,
    "cost": 1,
    "unpriced": 1,
    "conversationHash": 1,
    "sessionId": 1,
    "organizationId": 1,
    "messageCount": 1,
    "stopReason": 1,
    "isStreaming": 1,
    "outcome": 1,
}

SHORT_ID = re.compile(r"^[0-9a-f]{4,32}$")


def model_filter(model: str | None) -> dict[str, Any]:
    """`all` or nothing: every request; else a case-insensitive substring, escaped."""
    if not model or model == "all":
        return {}
    return {"model": {"$regex": re.escape(model), "$options": "i"}}


def time_filter(start: datetime | None, end: datetime | None) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if start is not None:
        bounds["$gte"] = start
    if end is not None:
        bounds["$lt"] = end
    return {"timestamp": bounds} if bounds else {}


def summary_filter(
    model: str | None, start: datetime | None, end: datetime | None
) -> dict[str, Any]:
    return {**model_filter(model), **time_filter(start, end)}


def id_filter(request_id: str) -> dict[str, Any]:
    """Full id: exact match. Short id: an index-backed prefix range on requestId."""
    if len(request_id) == 32:
        return {"requestId": request_id}
    upper = request_id[:-1] + chr(ord(request_id[-1]) + 1)
    return {"requestId": {"$gte": request_id, "$lt": upper}}


NEWEST_FIRST = [("timestamp", -1), ("requestId", -1)]
