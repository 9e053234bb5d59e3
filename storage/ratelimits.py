"""Rate-limit state from Anthropic's response headers, in the seed's RateLimitInfo names.

API-key traffic carries `anthropic-ratelimit-{requests,tokens,input-tokens,
output-tokens}-{limit,remaining,reset}`; subscription traffic the `unified`
family (status, 5h/7d utilization as a 0..1 fraction, reset as epoch seconds).
Every `anthropic-ratelimit-*` header is also kept raw, so new ones are not lost:
the first `MAX_RAW` of them, names and values clipped, since a provider other than
Anthropic (or anything in between) decides how many and how long they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

PREFIX = "anthropic-ratelimit-"
MAX_RAW = 64  # rate-limit headers kept, besides retry-after (Anthropic sends ~20)
MAX_NAME_CHARS = 128  # of a header name after the prefix
MAX_VALUE_CHARS = 256  # of a value (Anthropic's are timestamps and small numbers)

_KINDS = {
    "requests": "requests",
    "tokens": "tokens",
    "input-tokens": "inputTokens",
    "output-tokens": "outputTokens",
}
_FIELDS = {"limit": "Limit", "remaining": "Remaining", "reset": "Reset"}
_UNIFIED_WINDOWS = {
    "5h": "5h",
    "7d": "7d",
    "7d_opus": "7dOpus",
    "7d-opus": "7dOpus",
    "7d_sonnet": "7dSonnet",
    "7d-sonnet": "7dSonnet",
}


def _int(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def _float(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def _epoch(value: str) -> str:
    """Unified resets are epoch seconds; store them as ISO 8601 like the others."""
    try:
        return datetime.fromtimestamp(int(value), UTC).isoformat().replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):
        return value


def parse_rate_limits(
    headers: Iterable[tuple[str, str]], organization_id: str | None = None
) -> dict[str, Any] | None:
    raw: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower.startswith(PREFIX):
            key = lower[len(PREFIX) :][:MAX_NAME_CHARS]
        elif lower == "retry-after":
            key = "retry-after"
        else:
            continue
        if key == "retry-after" or key in raw or len(raw) - ("retry-after" in raw) < MAX_RAW:
            raw[key] = value[:MAX_VALUE_CHARS]
    if not raw:
        return None
    info: dict[str, Any] = {}
    if organization_id:
        info["organizationId"] = organization_id
    for key, value in raw.items():
        if key.startswith("unified-"):
            _unified(key[len("unified-") :], value, info)
            continue
        kind, _, field = key.rpartition("-")
        if kind in _KINDS and field in _FIELDS:
            name = _KINDS[kind] + _FIELDS[field]
            info[name] = value if field == "reset" else _int(value)
    if "retry-after" in raw:
        info["retryAfter"] = _int(raw["retry-after"])
    info["raw"] = {k: v for k, v in raw.items() if k != "retry-after"}
    return info


def _unified(key: str, value: str, info: dict[str, Any]) -> None:
    if key == "status":
        info["unifiedStatus"] = value
    elif key == "reset":
        info["unifiedReset"] = _epoch(value)
    elif key == "representative-claim":
        info["unifiedRepresentativeClaim"] = value
    elif key == "fallback":
        info["unifiedFallback"] = value
    elif key.startswith("overage-"):
        info.setdefault("unifiedOverage", {})[key[len("overage-") :]] = value
    else:
        window, _, field = key.rpartition("-")
        suffix = _UNIFIED_WINDOWS.get(window)
        if suffix is None:
            return  # still kept under raw
        if field == "utilization":
            info[f"unifiedUtilization{suffix}"] = _float(value)
        elif field == "reset":
            info[f"unifiedReset{suffix}"] = _epoch(value)
        elif field == "status":
            info[f"unifiedStatus{suffix}"] = value
